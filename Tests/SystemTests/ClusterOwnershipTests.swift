import Cluster
import CorralControl
import CorralModel
import Foundation
import Logging
import Supervisor
import Testing
import TestSupport

/// Two hosts (two daemons' cores, each with its own state) in one real 3-member etcd cluster, real QEMU and the test
/// guest: the same VM `up` on both at once runs on exactly one, the other is refused naming the owner and keeps
/// nothing; once the owner removes it, the other host may run it.
@Suite(.bootsGuests, .enabled(if: FileManager.default.isExecutableFile(atPath: "/opt/corral-etcd/usr/bin/etcd"),
                "etcd missing: run scripts/install-deps"))
struct ClusterOwnershipTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test func theSameVMUpOnTwoHostsAtOnceRunsOnExactlyOne() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("own")
        defer { Guest.cleanUp(root) }
        let etcd = try await EtcdCluster.start(in: root + "/etcd", port: 26_000 + Int(getpid() % 40) * 100)
        defer { etcd.stop() }
        let urls = etcd.urls

        var managers: [String: VMManager] = [:]
        var members: [String: ClusterMember] = [:]
        for host in ["host-a", "host-b"] {
            let member = ClusterMember(host: host, store: try EtcdGateway(urls: urls),
                                       record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0), logger: Self.quiet)
            try await member.join()
            var options = DaemonOptions(autoBalloon: false, manageKSM: false)
            options.cluster = member
            members[host] = member
            managers[host] = try await VMManager.open(stateRoot: root + "/\(host)", options: options)
        }
        let a = managers["host-a"]!, b = managers["host-b"]!
        let profile = try Guest.writeProfile(in: root, name: "solo")

        async let onA = Self.outcome { try await a.up(UpRequest(profile: profile)) }
        async let onB = Self.outcome { try await b.up(UpRequest(profile: profile)) }
        let outcomes = ["host-a": await onA, "host-b": await onB]
        let winners = outcomes.filter { if case .success = $0.value { true } else { false } }
        try #require(winners.count == 1, "exactly one host runs it: \(outcomes)")
        let winner = winners.keys.first!
        let loser = winner == "host-a" ? "host-b" : "host-a"
        guard case .failure(let refusal) = outcomes[loser]! else { return }
        #expect(refusal.contains("solo is owned by host \(winner) in the cluster"), "\(refusal)")
        #expect(try await members[loser]!.owner(of: "solo") == winner)
        // The winner's guest runs; the loser keeps nothing (no VM, no folder, no QEMU).
        let running = try await managers[winner]!.status("solo")
        #expect(running.state == .running)
        _ = try await HeartbeatWait.first(in: running.serialLog) { $0.n >= 1 }
        #expect(await managers[loser]!.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root + "/\(loser)/vms/solo"))

        // Either daemon answers for the whole cluster.
        let report = await managers[loser]!.cluster()
        #expect(report.enabled && report.host == loser && report.state == "alive" && report.problem == nil)
        #expect(report.hosts.map(\.name) == ["host-a", "host-b"])
        #expect(report.hosts.first { $0.name == winner }?.vms == ["solo"])
        #expect(report.hosts.first { $0.name == loser }?.vms == [])

        // Removed on the winner: the other host may run it now.
        try await managers[winner]!.remove("solo", force: true)
        #expect(try await members[winner]!.owner(of: "solo") == nil, "rm gave the claim up")
        let moved = try await managers[loser]!.up(UpRequest(profile: profile))
        #expect(moved.state == .running)
        #expect(try await members[loser]!.owner(of: "solo") == loser)
        try await managers[loser]!.remove("solo", force: true)
        for manager in managers.values { await manager.shutdown() }
        for member in members.values { await member.leave() }
    }

    enum Outcome: Sendable {
        case success(VMStatus)
        case failure(String)
    }

    static func outcome(_ body: () async throws -> VMStatus) async -> Outcome {
        do { return .success(try await body()) } catch { return .failure("\(error)") }
    }
}
