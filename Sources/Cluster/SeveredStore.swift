import Synchronization

/// A store whose link to etcd can be cut and restored: every call fails as unreachable while it is cut. The
/// fault injection for the HA tests and the failover benchmark (a host cut off from etcd, the others not).
public final class SeveredStore: ClusterStore {
    public let inner: any ClusterStore
    private let cut = Mutex(false)

    public init(_ inner: any ClusterStore) { self.inner = inner }

    public var isCut: Bool {
        get { cut.withLock { $0 } }
        set { cut.withLock { $0 = newValue } }
    }

    private func check() throws(ClusterError) {
        if isCut { throw .unreachable("the link to etcd is cut") }
    }

    public func grantLease(ttl: Int) async throws(ClusterError) -> Int64 {
        try check()
        return try await inner.grantLease(ttl: ttl)
    }

    public func keepAlive(_ lease: Int64) async throws(ClusterError) -> Int {
        try check()
        return try await inner.keepAlive(lease)
    }

    public func revoke(_ lease: Int64) async throws(ClusterError) {
        try check()
        try await inner.revoke(lease)
    }

    public func get(_ key: String) async throws(ClusterError) -> ClusterEntry? {
        try check()
        return try await inner.get(key)
    }

    public func list(prefix: String) async throws(ClusterError) -> [ClusterEntry] {
        try check()
        return try await inner.list(prefix: prefix)
    }

    public func put(_ key: String, _ value: String, lease: Int64?) async throws(ClusterError) {
        try check()
        try await inner.put(key, value, lease: lease)
    }

    public func delete(_ key: String) async throws(ClusterError) {
        try check()
        try await inner.delete(key)
    }

    public func transaction(_ compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
        async throws(ClusterError) -> ClusterTransactionResult
    {
        try check()
        return try await inner.transaction(compares, success: success, failure: failure)
    }
}
