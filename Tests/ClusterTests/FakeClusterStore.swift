import Cluster
import Synchronization

/// etcd as corral uses it, in memory: revisions, leases that a test expires by hand, transactions evaluated
/// atomically, and an `unreachable` switch. Strict: a keep-alive of an unknown lease answers 0, as etcd does.
final class FakeClusterStore: ClusterStore {
    private struct State {
        var revision: Int64 = 1
        var entries: [String: ClusterEntry] = [:]
        var leases: Set<Int64> = []
        var nextLease: Int64 = 100
        var unreachable = false
        var transactions = 0
    }
    private let state = Mutex(State())

    var unreachable: Bool {
        get { state.withLock { $0.unreachable } }
        set { state.withLock { $0.unreachable = newValue } }
    }
    var transactions: Int { state.withLock { $0.transactions } }

    /// The lease runs out: it and every key on it are gone.
    func expire(_ lease: Int64) {
        state.withLock { state in
            state.leases.remove(lease)
            state.entries = state.entries.filter { $0.value.lease != lease }
            state.revision += 1
        }
    }

    private func check() throws(ClusterError) {
        if unreachable { throw .unreachable("fake: switched off") }
    }

    func grantLease(ttl: Int) async throws(ClusterError) -> Int64 {
        try check()
        return state.withLock { state in
            state.nextLease += 1
            state.leases.insert(state.nextLease)
            return state.nextLease
        }
    }

    func keepAlive(_ lease: Int64) async throws(ClusterError) -> Int {
        try check()
        return state.withLock { $0.leases.contains(lease) ? 10 : 0 }
    }

    func revoke(_ lease: Int64) async throws(ClusterError) {
        try check()
        expire(lease)
    }

    func get(_ key: String) async throws(ClusterError) -> ClusterEntry? {
        try check()
        return state.withLock { $0.entries[key] }
    }

    func list(prefix: String) async throws(ClusterError) -> [ClusterEntry] {
        try check()
        return state.withLock { state in
            state.entries.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }
        }
    }

    func put(_ key: String, _ value: String, lease: Int64?) async throws(ClusterError) {
        try check()
        try state.withLock { state throws(ClusterError) in try Self.apply(.put(key, value, lease: lease), &state) }
    }

    func delete(_ key: String) async throws(ClusterError) {
        try check()
        try state.withLock { state throws(ClusterError) in try Self.apply(.delete(key), &state) }
    }

    func transaction(_ compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
        async throws(ClusterError) -> ClusterTransactionResult
    {
        try check()
        return try state.withLock { state throws(ClusterError) in
            state.transactions += 1
            let held = compares.allSatisfy { compare in
                switch compare {
                case .absent(let key): state.entries[key] == nil
                case .present(let key): state.entries[key] != nil
                case .valueEquals(let key, let value): state.entries[key]?.value == value
                }
            }
            var reads: [ClusterEntry?] = []
            for operation in held ? success : failure {
                if case .get(let key) = operation { reads.append(state.entries[key]) } else { try Self.apply(operation, &state) }
            }
            return ClusterTransactionResult(succeeded: held, reads: reads)
        }
    }

    private static func apply(_ operation: ClusterOperation, _ state: inout State) throws(ClusterError) {
        switch operation {
        case .put(let key, let value, let lease):
            if let lease, !state.leases.contains(lease) { throw .refused("etcdserver: requested lease not found") }
            state.revision += 1
            let created = state.entries[key]?.createRevision ?? state.revision
            state.entries[key] = ClusterEntry(key: key, value: value, createRevision: created,
                                              modRevision: state.revision, lease: lease ?? 0)
        case .delete(let key):
            state.revision += 1
            state.entries[key] = nil
        case .get:
            break
        }
    }
}
