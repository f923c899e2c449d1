import CorralModel
import Foundation
import Logging

/// What a host publishes about itself under `corral/hosts/NAME`.
public struct HostRecord: Sendable, Codable, Equatable {
    /// Where its API listens (`--host-address`, else the `--listen` address).
    public var address: String
    public var joinedAt: Double
    /// What it can take and has committed (refreshed by the daemon as VMs come and go).
    public var capacity: HostCapacity?

    public init(address: String, joinedAt: Double, capacity: HostCapacity? = nil) {
        self.address = address
        self.joinedAt = joinedAt
        self.capacity = capacity
    }
}

/// This host in the cluster: it joins by putting its `HostRecord` on a lease of `ttl` seconds, renews the lease every
/// `renewEvery`, and claims and releases the VMs it runs (`Ownership`). Without a live lease it owns nothing new.
public actor ClusterMember {
    public enum State: String, Sendable {
        /// Not joined yet, or the lease was lost and not yet granted again.
        case joining
        case alive
        /// The last renewal failed (etcd unreachable); the lease may still be alive until its TTL runs out.
        case unreachable
    }

    public nonisolated let host: String
    public nonisolated let store: any ClusterStore
    public nonisolated let ttl: Int
    public nonisolated let renewEvery: Duration
    private var record: HostRecord
    private let logger: Logger
    public private(set) var lease: Int64?
    public private(set) var state: State = .joining
    /// When the lease was last renewed (monotonic), for the fencing rule.
    public private(set) var lastRenewal: ContinuousClock.Instant?
    private var renewal: Task<Void, Never>?

    public init(host: String, store: any ClusterStore, record: HostRecord, ttl: Int = 10,
                renewEvery: Duration = .seconds(2), logger: Logger) {
        self.host = host
        self.store = store
        self.record = record
        self.ttl = ttl
        self.renewEvery = renewEvery
        self.logger = logger
    }

    /// Grants a lease and puts the host key on it (refused while another live daemon holds the same host name),
    /// then keeps renewing in the background.
    public func join() async throws(ClusterError) {
        try await takeLease()
        guard renewal == nil else { return }
        renewal = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: self?.renewEvery ?? .seconds(2))
                await self?.renew()
            }
        }
    }

    private func recordText() throws(ClusterError) -> String {
        do { return String(decoding: try JSONEncoder().encode(record), as: UTF8.self) } catch {
            throw .malformed("cannot encode the host record: \(error)")
        }
    }

    /// Publishes new capacity figures in this host's key (on its lease, while the key is there); unchanged figures
    /// cost nothing.
    public func publish(capacity: HostCapacity) async throws(ClusterError) {
        guard capacity != record.capacity else { return }
        record.capacity = capacity
        guard let lease, state == .alive else { return }
        let text = try recordText()
        // A key that is gone comes back with the next rejoin, carrying these figures.
        _ = try await store.transaction([.present(ClusterKeys.host(host))],
                                        success: [.put(ClusterKeys.host(host), text, lease: lease)], failure: [])
    }

    private func takeLease() async throws(ClusterError) {
        let granted = try await store.grantLease(ttl: ttl)
        let text = try recordText()
        // Only an absent host key: a second daemon with this --host name must not take over the first one's.
        let joined = try await store.transaction([.absent(ClusterKeys.host(host))],
                                                 success: [.put(ClusterKeys.host(host), text, lease: granted)],
                                                 failure: [.get(ClusterKeys.host(host))])
        // A request retried on another member after a timeout may find the key its first attempt wrote: on our own
        // lease, that is our join.
        let ours = (joined.reads.first ?? nil)?.lease == granted
        guard joined.succeeded || ours else {
            try? await store.revoke(granted)
            let holder = (joined.reads.first ?? nil).map { ", lease \($0.lease)" } ?? ""
            throw .refused("host name \(host) is already in the cluster, held by a live daemon\(holder); "
                + "give this one another --host, or wait up to \(ttl) s after the other one stopped")
        }
        lease = granted
        state = .alive
        lastRenewal = .now
        logger.info("joined the cluster", metadata: ["host": "\(host)", "lease": "\(granted)", "ttl": "\(ttl)"])
    }

    /// One renewal; a lost lease is taken again (the host key and this host's VMs are claimed anew by the caller).
    func renew() async {
        guard let lease else {
            do { try await takeLease() } catch { logger.warning("cannot rejoin the cluster", metadata: ["error": "\(error)"]) }
            return
        }
        do {
            let left = try await store.keepAlive(lease)
            if left > 0 {
                state = .alive
                lastRenewal = .now
                return
            }
            logger.error("the cluster lease expired: this host's keys are gone", metadata: ["lease": "\(lease)"])
            self.lease = nil
            state = .joining
            do { try await takeLease() } catch { logger.warning("cannot rejoin the cluster", metadata: ["error": "\(error)"]) }
        } catch {
            if state != .unreachable { logger.warning("cannot renew the cluster lease", metadata: ["error": "\(error)"]) }
            state = .unreachable
        }
    }

    /// Makes this host the VM's owner, or says who is.
    public func claim(_ vm: String) async throws(ClusterError) -> Ownership.Outcome {
        guard let lease, state != .joining else { return .hostNotAlive }
        let first = Ownership.claim(vm: vm, host: host, lease: lease)
        let result = try await store.transaction(first.compares, success: first.success, failure: first.failure)
        if result.succeeded { return .claimed }
        if let refusal = Ownership.refusal(afterFailed: result, host: host) { return refusal }
        // Ours already (perhaps on the lease of this daemon's predecessor): moved onto the current lease.
        let again = Ownership.renew(vm: vm, host: host, lease: lease)
        let renewed = try await store.transaction(again.compares, success: again.success, failure: again.failure)
        if renewed.succeeded { return .claimed }
        return Ownership.refusal(afterFailed: renewed, host: host) ?? .ownedBy("(changed while claiming; try again)")
    }

    /// Gives the VM up (removed here, or moved away); a key another host holds is left alone.
    public func release(_ vm: String) async throws(ClusterError) {
        let plan = Ownership.release(vm: vm, host: host)
        _ = try await store.transaction(plan.compares, success: plan.success, failure: plan.failure)
    }

    /// The VM's owner, if any.
    public func owner(of vm: String) async throws(ClusterError) -> String? {
        try await store.get(ClusterKeys.owner(vm))?.value
    }

    /// Every live host, its record and its lease.
    public func hosts() async throws(ClusterError) -> [(name: String, record: HostRecord?, lease: Int64)] {
        try await store.list(prefix: ClusterKeys.hostsPrefix).map { entry in
            (String(entry.key.dropFirst(ClusterKeys.hostsPrefix.count)),
             try? JSONDecoder().decode(HostRecord.self, from: Data(entry.value.utf8)), entry.lease)
        }
    }

    /// Every VM's owner (VM → host).
    public func owners() async throws(ClusterError) -> [String: String] {
        var owners: [String: String] = [:]
        for entry in try await store.list(prefix: ClusterKeys.vmsPrefix) where entry.key.hasSuffix("/owner") {
            owners[String(entry.key.dropFirst(ClusterKeys.vmsPrefix.count).dropLast("/owner".count))] = entry.value
        }
        return owners
    }

    /// The HA VMs' configs (VM → JSON).
    public func haConfigs() async throws(ClusterError) -> [String: String] {
        var configs: [String: String] = [:]
        for entry in try await store.list(prefix: ClusterKeys.haPrefix) {
            configs[String(entry.key.dropFirst(ClusterKeys.haPrefix.count))] = entry.value
        }
        return configs
    }

    /// Publishes an HA VM's config while this host owns it.
    public func publishHA(_ vm: String, config: String) async throws(ClusterError) {
        _ = try await store.transaction([.valueEquals(ClusterKeys.owner(vm), host)],
                                        success: [.put(ClusterKeys.ha(vm), config, lease: nil)], failure: [])
    }

    /// Forgets an HA VM (removed by its owner).
    public func unpublishHA(_ vm: String) async throws(ClusterError) {
        _ = try await store.transaction([.valueEquals(ClusterKeys.owner(vm), host)],
                                        success: [.delete(ClusterKeys.ha(vm))], failure: [])
    }

    /// True when this host is (or has just become) the cluster's reconciler.
    public func electReconciler() async throws(ClusterError) -> Bool {
        guard let lease, state == .alive else { return false }
        let result = try await store.transaction([.absent(ClusterKeys.reconciler)],
                                                 success: [.put(ClusterKeys.reconciler, host, lease: lease)],
                                                 failure: [.get(ClusterKeys.reconciler)])
        return result.succeeded || (result.reads.first ?? nil)?.value == host
    }

    /// The reconciler gives an orphaned VM to `target` (on the target's lease), only while it has no owner and the
    /// target is alive.
    public func assign(_ vm: String, to target: String, lease targetLease: Int64) async throws(ClusterError) -> Bool {
        try await store.transaction([.absent(ClusterKeys.owner(vm)), .present(ClusterKeys.host(target))],
                                    success: [.put(ClusterKeys.owner(vm), target, lease: targetLease)],
                                    failure: []).succeeded
    }

    /// Stops renewing without revoking: what a daemon killed with SIGKILL leaves (tests).
    public func stopRenewingForTest() {
        renewal?.cancel()
        renewal = nil
    }

    /// Stops renewing and revokes the lease: this host's key and every VM it owns are released at once.
    public func leave() async {
        renewal?.cancel()
        renewal = nil
        // Revoking removes every key on the lease at once (the VMs are free for other hosts now, not after the
        // TTL); a failed attempt is tried again twice, and the TTL still bounds the worst case.
        if let lease {
            for attempt in 0..<3 {
                do {
                    try await store.revoke(lease)
                    break
                } catch {
                    if attempt < 2 { try? await Task.sleep(for: .milliseconds(200)) }
                }
            }
        }
        lease = nil
        state = .joining
    }
}

extension ClusterMember {
    /// A host's drain record (`corral host evacuate`), nil when it is not draining and has nothing to bring back.
    public func drain(of target: String) async throws(ClusterError) -> DrainRecord? {
        guard let entry = try await store.get(ClusterKeys.drain(target)) else { return nil }
        do { return try JSONDecoder().decode(DrainRecord.self, from: Data(entry.value.utf8)) } catch {
            throw .malformed("\(ClusterKeys.drain(target)) is not a drain record: \(error)")
        }
    }

    /// Every host's drain record (host → record).
    public func drains() async throws(ClusterError) -> [String: DrainRecord] {
        var drains: [String: DrainRecord] = [:]
        for entry in try await store.list(prefix: ClusterKeys.drainPrefix) {
            drains[String(entry.key.dropFirst(ClusterKeys.drainPrefix.count))] =
                try? JSONDecoder().decode(DrainRecord.self, from: Data(entry.value.utf8))
        }
        return drains
    }

    /// Writes (nil: removes) this host's drain record.
    public func setDrain(_ record: DrainRecord?) async throws(ClusterError) {
        guard let record else { return try await store.delete(ClusterKeys.drain(host)) }
        let text: String
        do { text = String(decoding: try JSONEncoder().encode(record), as: UTF8.self) } catch {
            throw .malformed("cannot encode the drain record: \(error)")
        }
        try await store.put(ClusterKeys.drain(host), text, lease: nil)
    }

    /// The migration commit on the destination: ownership moves here in one transaction, whoever held it (the source
    /// has handed the guest over and is paused), as long as this host is alive. `previous`: who held it before, for
    /// `handBack` should the guest not resume here.
    public func takeOver(_ vm: String) async throws(ClusterError) -> (outcome: Ownership.Outcome, previous: String?) {
        guard let lease, state != .joining else { return (.hostNotAlive, nil) }
        let result = try await store.transaction([.present(ClusterKeys.host(host))],
                                                 success: [.get(ClusterKeys.owner(vm)),
                                                           .put(ClusterKeys.owner(vm), host, lease: lease)],
                                                 failure: [])
        guard result.succeeded else { return (.hostNotAlive, nil) }
        return (.claimed, (result.reads.first ?? nil)?.value)
    }

    /// Undoes `takeOver` when the guest did not resume here (the source resumes it): the key goes back to `previous`
    /// on that host's lease, only while it still names this host; with `previous` gone (or unknown) it is released.
    public func handBack(_ vm: String, to previous: String?) async throws(ClusterError) {
        guard let previous, previous != host, let holder = try await store.get(ClusterKeys.host(previous)) else {
            return try await release(vm)
        }
        let back = try await store.transaction([.valueEquals(ClusterKeys.owner(vm), host), .present(ClusterKeys.host(previous))],
                                               success: [.put(ClusterKeys.owner(vm), previous, lease: holder.lease)],
                                               failure: [])
        if !back.succeeded { try await release(vm) }
    }
}
