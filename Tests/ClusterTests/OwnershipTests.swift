import Cluster
import Logging
import Testing

/// The ownership rules and `ClusterMember` against the in-memory store: one owner per VM, a claim refused while
/// another live host holds it, a VM freed when its owner's lease expires, and a host name held by a live daemon.
struct OwnershipTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func member(_ host: String, _ store: FakeClusterStore) -> ClusterMember {
        ClusterMember(host: host, store: store, record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0),
                      renewEvery: .seconds(3600), logger: quiet)
    }

    @Test func oneOwnerPerVMAndTheOtherHostIsToldWho() async throws {
        let store = FakeClusterStore()
        let a = Self.member("host-a", store), b = Self.member("host-b", store)
        try await a.join()
        try await b.join()
        #expect(try await a.claim("web") == .claimed)
        #expect(try await b.claim("web") == .ownedBy("host-a"))
        #expect(try await a.claim("web") == .claimed, "claiming again what it owns is fine")
        #expect(try await b.owner(of: "web") == "host-a")
        // b releasing a VM it does not own changes nothing.
        try await b.release("web")
        #expect(try await a.owner(of: "web") == "host-a")
        try await a.release("web")
        #expect(try await b.claim("web") == .claimed)
        await a.leave()
        await b.leave()
    }

    @Test func aVMIsFreeOnceItsOwnersLeaseExpires() async throws {
        let store = FakeClusterStore()
        let a = Self.member("host-a", store), b = Self.member("host-b", store)
        try await a.join()
        try await b.join()
        #expect(try await a.claim("db") == .claimed)
        let lease = try #require(await a.lease)
        store.expire(lease)
        #expect(try await b.claim("db") == .claimed, "the owner key lived on host-a's lease")
        // host-a, whose key is gone, may not claim anything until it has joined again.
        #expect(try await a.claim("other") == .hostNotAlive)
        await a.leave()
        await b.leave()
    }

    @Test func aRestartedDaemonMovesItsVMsOntoItsNewLease() async throws {
        let store = FakeClusterStore()
        let first = Self.member("host-a", store)
        try await first.join()
        #expect(try await first.claim("web") == .claimed)
        let oldLease = try #require(await first.lease)
        // The daemon dies without revoking; its host key is taken over once the old lease is gone... here the host
        // key is removed as a restart after the TTL would find it, but the owner key (another key on the same lease)
        // is left, as if the new daemon came before the keys expired.
        try await store.delete(ClusterKeys.host("host-a"))
        let second = Self.member("host-a", store)
        try await second.join()
        #expect(try await second.claim("web") == .claimed)
        let entry = try #require(try await store.get(ClusterKeys.owner("web")))
        #expect(entry.lease == (await second.lease) && entry.lease != oldLease, "moved onto the new lease")
        await second.leave()
    }

    @Test func aSecondDaemonWithTheSameHostNameIsRefused() async throws {
        let store = FakeClusterStore()
        let first = Self.member("host-a", store)
        try await first.join()
        let second = Self.member("host-a", store)
        await #expect(throws: ClusterError.self) { try await second.join() }
        do { try await second.join() } catch {
            #expect(error.description.contains("host name host-a is already in the cluster"), "\(error)")
        }
        await first.leave()
    }

    /// A migration commit moves the key to the destination; when the guest then does not resume there (the source
    /// resumes it), the key goes back to the source on the source's lease, so the source is not left running a
    /// VM the cluster says is the destination's (HA adoption there would start a second copy).
    @Test func aFailedCommitHandsTheOwnershipBackToTheSource() async throws {
        let store = FakeClusterStore()
        let a = Self.member("host-a", store), b = Self.member("host-b", store), c = Self.member("host-c", store)
        try await a.join()
        try await b.join()
        try await c.join()
        #expect(try await a.claim("web") == .claimed)
        let taken = try await b.takeOver("web")
        #expect(taken.outcome == .claimed && taken.previous == "host-a")
        #expect(try await a.owner(of: "web") == "host-b")
        try await b.handBack("web", to: taken.previous)
        #expect(try await a.owner(of: "web") == "host-a")
        let aLease = try #require(await a.lease)
        #expect(try await store.get(ClusterKeys.owner("web"))?.lease == aLease, "back on the source's lease")
        // Handing back what another host has taken since changes nothing.
        _ = try await c.takeOver("web")
        try await b.handBack("web", to: "host-a")
        #expect(try await a.owner(of: "web") == "host-c")
        // The source gone: the key is released rather than left naming the destination.
        let first = try await b.takeOver("db")
        #expect(first.previous == nil)
        try await b.handBack("db", to: "host-gone")
        #expect(try await a.owner(of: "db") == nil)
        for member in [a, b, c] { await member.leave() }
    }

    @Test func theTransactionsAreTheRulesNotTheMember() {
        let claim = Ownership.claim(vm: "web", host: "a", lease: 7)
        #expect(claim.compares == [.absent("corral/vms/web/owner"), .present("corral/hosts/a")])
        #expect(claim.success == [.put("corral/vms/web/owner", "a", lease: 7)])
        let entry = { (value: String) in ClusterEntry(key: "k", value: value, createRevision: 1, modRevision: 1, lease: 1) }
        #expect(Ownership.refusal(afterFailed: .init(succeeded: false, reads: [entry("b"), entry("x")]), host: "a") == .ownedBy("b"))
        #expect(Ownership.refusal(afterFailed: .init(succeeded: false, reads: [entry("a"), entry("x")]), host: "a") == nil)
        #expect(Ownership.refusal(afterFailed: .init(succeeded: false, reads: [entry("b"), nil]), host: "a") == .hostNotAlive)
    }
}

struct FencingAndPlacementTests {
    @Test func anOwnerPausesBeforeItsLeaseCanExpire() {
        #expect(!Fencing.mustPause(sinceRenewal: .seconds(6), ttl: 10, margin: .seconds(3)))
        #expect(Fencing.mustPause(sinceRenewal: .seconds(7), ttl: 10, margin: .seconds(3)))
        #expect(Fencing.mustPause(sinceRenewal: .seconds(60), ttl: 10, margin: .seconds(3)))
    }

    @Test func orphansGoToTheLeastLoadedLiveHostAfterTheGrace() {
        let hosts = [HAPlacement.Host(name: "b", lease: 2, vms: 1), HAPlacement.Host(name: "c", lease: 3, vms: 0)]
        let ages: [String: Duration] = ["x": .seconds(5), "y": .seconds(5), "young": .seconds(1)]
        let plan = HAPlacement.assign(orphans: ["y", "x", "young"], orphanedFor: { ages[$0] ?? .zero },
                                      grace: .seconds(2), hosts: hosts)
        // x first (sorted): c has fewest; then y: b and c tie at 1, b by name; "young" waits for the grace.
        #expect(plan.map { "\($0.vm)→\($0.host)@\($0.lease)" } == ["x→c@3", "y→b@2"])
        #expect(HAPlacement.assign(orphans: ["x"], orphanedFor: { _ in .seconds(9) }, grace: .seconds(2), hosts: []) == [])
    }
}

/// A store whose transactions run twice, as when a request timed out after etcd applied it and the gateway sent it
/// again to another member: the caller sees the second answer.
struct RetriedStore: ClusterStore {
    let inner: FakeClusterStore
    func grantLease(ttl: Int) async throws(ClusterError) -> Int64 { try await inner.grantLease(ttl: ttl) }
    func keepAlive(_ lease: Int64) async throws(ClusterError) -> Int { try await inner.keepAlive(lease) }
    func revoke(_ lease: Int64) async throws(ClusterError) { try await inner.revoke(lease) }
    func get(_ key: String) async throws(ClusterError) -> ClusterEntry? { try await inner.get(key) }
    func list(prefix: String) async throws(ClusterError) -> [ClusterEntry] { try await inner.list(prefix: prefix) }
    func put(_ key: String, _ value: String, lease: Int64?) async throws(ClusterError) {
        try await inner.put(key, value, lease: lease)
    }
    func delete(_ key: String) async throws(ClusterError) { try await inner.delete(key) }
    func transaction(_ compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
        async throws(ClusterError) -> ClusterTransactionResult
    {
        _ = try await inner.transaction(compares, success: success, failure: failure)
        return try await inner.transaction(compares, success: success, failure: failure)
    }
}

struct RetriedRequestTests {
    /// CI found it: the join's transaction applied, its answer timed out, the retry found the host key of the first
    /// attempt and the daemon refused to start ("host name … is already in the cluster").
    @Test func aJoinRetriedAfterItAppliedIsStillAJoinAndAClaimStillAClaim() async throws {
        let fake = FakeClusterStore()
        let member = ClusterMember(host: "host-a", store: RetriedStore(inner: fake),
                                   record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0),
                                   renewEvery: .seconds(3600), logger: OwnershipTests.quiet)
        try await member.join()
        let lease = try #require(await member.lease)
        #expect(try await fake.get(ClusterKeys.host("host-a"))?.lease == lease, "joined, the key on its lease")
        #expect(try await member.claim("web") == .claimed)
        // Another daemon with the same name is still refused.
        let twin = ClusterMember(host: "host-a", store: fake, record: HostRecord(address: "192.0.2.9:7070", joinedAt: 0),
                                 renewEvery: .seconds(3600), logger: OwnershipTests.quiet)
        await #expect(throws: ClusterError.self) { try await twin.join() }
        await member.leave()
    }
}
