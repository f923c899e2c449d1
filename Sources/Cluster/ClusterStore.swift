/// The cluster's shared state, as corral needs it from etcd (v3): keys with values, leases that keep keys alive,
/// and transactions that compare before they write. `EtcdGateway` talks to a real etcd; tests use a fake.
public protocol ClusterStore: Sendable {
    /// A lease of `ttl` seconds; keys put with it vanish when it expires or is revoked.
    func grantLease(ttl: Int) async throws(ClusterError) -> Int64
    /// Renews the lease; its remaining TTL in seconds, 0 when it has already expired (or never existed).
    func keepAlive(_ lease: Int64) async throws(ClusterError) -> Int
    func revoke(_ lease: Int64) async throws(ClusterError)
    func get(_ key: String) async throws(ClusterError) -> ClusterEntry?
    /// Every key starting with `prefix`, in key order.
    func list(prefix: String) async throws(ClusterError) -> [ClusterEntry]
    func put(_ key: String, _ value: String, lease: Int64?) async throws(ClusterError)
    func delete(_ key: String) async throws(ClusterError)
    /// All `compares` hold → `success` runs, else `failure`; true when they held. The entries the range operations
    /// of the branch that ran read come back in order.
    func transaction(_ compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
        async throws(ClusterError) -> ClusterTransactionResult
}

public struct ClusterEntry: Sendable, Equatable {
    public var key: String
    public var value: String
    /// The revision at which the key was created; 0 never (etcd's `create_revision`).
    public var createRevision: Int64
    public var modRevision: Int64
    /// The lease the key lives on; 0 none.
    public var lease: Int64

    public init(key: String, value: String, createRevision: Int64, modRevision: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.lease = lease
    }
}

/// One condition of a transaction.
public enum ClusterCompare: Sendable, Equatable {
    /// The key does not exist.
    case absent(String)
    /// The key exists.
    case present(String)
    /// The key holds exactly this value.
    case valueEquals(String, String)
}

public enum ClusterOperation: Sendable, Equatable {
    case put(String, String, lease: Int64?)
    case delete(String)
    case get(String)
}

public struct ClusterTransactionResult: Sendable, Equatable {
    public var succeeded: Bool
    /// What each `get` of the branch that ran found (nil: the key does not exist), in order.
    public var reads: [ClusterEntry?]

    public init(succeeded: Bool, reads: [ClusterEntry?]) {
        self.succeeded = succeeded
        self.reads = reads
    }
}

public enum ClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No endpoint answered.
    case unreachable(String)
    /// An endpoint answered with an error (etcd's message).
    case refused(String)
    /// An answer that is not etcd's JSON.
    case malformed(String)

    public var description: String {
        switch self {
        case .unreachable(let why): "the cluster (etcd) is unreachable: \(why)"
        case .refused(let why): "etcd refused: \(why)"
        case .malformed(let why): "etcd answered something corral cannot read: \(why)"
        }
    }
}
