import Cluster
import CorralWire
import Foundation
import Logging
import Supervisor
import Synchronization
import Testing

/// `EtcdGateway` against a real 3-member etcd on loopback (Debian's etcd, scripts/etcd-cluster): the operations and
/// transactions corral uses behave as the fake says, two members agree on one owner, and losing a member costs
/// nothing. One cluster at a time: four 3-member clusters electing at once beside the rest of the unit tests once
/// took a 2-core machine past the script's 60 s wait.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/opt/corral-etcd/usr/bin/etcd"),
                             "etcd missing: run scripts/install-deps"),
       .timeLimit(.minutes(2)))
struct EtcdGatewayTests {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    /// Each test its own cluster, on its own ports.
    static let nextPort = Mutex(24_000 + Int(getpid() % 50) * 200)

    struct Etcd {
        let folder: String
        let urls: [String]
        func kill(member: Int) async throws {
            _ = try await ProcessLauncher.run(EtcdGatewayTests.repoRoot + "/scripts/etcd-cluster", ["kill", folder, "\(member)"])
        }
    }

    static func withEtcd(tls certs: String? = nil, _ body: (Etcd) async throws -> Void) async throws {
        let port = nextPort.withLock { value in
            defer { value += 100 }
            return value
        }
        let folder = NSTemporaryDirectory() + "corral-etcd-\(port)"
        let script = repoRoot + "/scripts/etcd-cluster"
        let up = try await ProcessLauncher.run(script, ["up", folder, "--port", "auto"] + (certs.map { ["--tls", $0] } ?? []))
        defer {
            let down = Process()
            down.executableURL = URL(fileURLWithPath: script)
            down.arguments = ["down", folder]
            try? down.run()
            down.waitUntilExit()
        }
        try #require(up.status == .exited(0), "etcd-cluster up: \(up.output)")
        let urls = up.output.split(separator: "\n").last.map { $0.split(separator: ",").map(String.init) } ?? []
        try #require(urls.count == 3, "\(up.output)")
        try await body(Etcd(folder: folder, urls: urls))
    }

    /// `https://` endpoints with mutual TLS: the client presents its certificate from the cluster's CA and checks
    /// etcd's; a client certificate from another CA is refused by etcd, and the endpoints must agree on a scheme.
    @Test func mutualTLSToEtcd() async throws {
        let certs = NSTemporaryDirectory() + "corral-etcd-tls-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: certs) }
        let made = try await ProcessLauncher.run(Self.repoRoot + "/scripts/make-test-certs", [certs, "127.0.0.1"])
        try #require(made.status == .exited(0), "make-test-certs: \(made.output)")
        try await Self.withEtcd(tls: certs) { etcd in
            #expect(etcd.urls.allSatisfy { $0.hasPrefix("https://127.0.0.1:") }, "\(etcd.urls)")
            let store = try EtcdGateway(urls: etcd.urls, tls: TLSFiles.client(in: certs))
            try await store.put("corral/tls", "sealed", lease: nil)
            #expect(try await store.get("corral/tls")?.value == "sealed")
            let stranger = try EtcdGateway(urls: etcd.urls, tls: TLSFiles.client(in: certs + "/wrong-ca"))
            await #expect(throws: ClusterError.self) { _ = try await stranger.get("corral/tls") }
            #expect(throws: ClusterError.self) { _ = try EtcdGateway(urls: etcd.urls) }
            #expect(throws: ClusterError.self) {
                _ = try EtcdGateway(urls: [etcd.urls[0], "http://127.0.0.1:1"], tls: TLSFiles.client(in: certs))
            }
        }
    }

    @Test func keysLeasesAndTransactionsBehaveAsTheFakeSays() async throws {
        try await Self.withEtcd { etcd in
            let store = try EtcdGateway(urls: etcd.urls)
            try await store.put("corral/t/a", "1", lease: nil)
            try await store.put("corral/t/b", "2 ünïcode", lease: nil)
            try await store.put("corral/u", "other", lease: nil)
            #expect(try await store.get("corral/t/b")?.value == "2 ünïcode")
            #expect(try await store.list(prefix: "corral/t/").map(\.key) == ["corral/t/a", "corral/t/b"])
            #expect(try await store.get("corral/t/none") == nil)

            let held = try await store.transaction([.absent("corral/t/c"), .valueEquals("corral/t/a", "1")],
                                                   success: [.put("corral/t/c", "3", lease: nil), .get("corral/t/a")],
                                                   failure: [])
            #expect(held.succeeded && held.reads.map { $0?.value } == ["1"])
            let failed = try await store.transaction([.absent("corral/t/c")], success: [.delete("corral/t/a")],
                                                     failure: [.get("corral/t/c"), .get("corral/t/none")])
            #expect(!failed.succeeded && failed.reads.map { $0?.value } == ["3", nil])
            #expect(try await store.get("corral/t/a") != nil, "the success branch did not run")

            let lease = try await store.grantLease(ttl: 30)
            try await store.put("corral/t/leased", "x", lease: lease)
            #expect(try await store.get("corral/t/leased")?.lease == lease)
            #expect(try await store.keepAlive(lease) > 0)
            try await store.revoke(lease)
            #expect(try await store.get("corral/t/leased") == nil, "revoking the lease removed its key")
            #expect(try await store.keepAlive(lease) == 0, "a revoked lease renews to 0")
            await #expect(throws: ClusterError.self) { try await store.put("corral/t/x", "y", lease: lease) }
            try await store.delete("corral/t/b")
            #expect(try await store.get("corral/t/b") == nil)
        }
    }

    @Test func twoHostsAgreeOnOneOwnerThroughEtcd() async throws {
        try await Self.withEtcd { etcd in
            let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            func member(_ name: String) throws -> ClusterMember {
                ClusterMember(host: name, store: try EtcdGateway(urls: etcd.urls),
                              record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0), ttl: 5, logger: quiet)
            }
            let a = try member("host-a"), b = try member("host-b")
            try await a.join()
            try await b.join()
            #expect(try await a.hosts().map(\.name) == ["host-a", "host-b"])
            // Both claim at once: exactly one wins and the other is told who.
            async let first = a.claim("web")
            async let second = b.claim("web")
            let outcomes = [try await first, try await second]
            #expect(outcomes.filter { $0 == .claimed }.count == 1, "\(outcomes)")
            let owner = try #require(try await a.owner(of: "web"))
            #expect(outcomes.contains(.ownedBy(owner)), "\(outcomes)")
            // The owner leaves (its lease revoked): the VM is free for the other.
            let (winner, loser) = owner == "host-a" ? (a, b) : (b, a)
            await winner.leave()
            // Its keys go with its lease: at once when the revoke lands, within the 5 s TTL in any case.
            var free = false
            for _ in 0..<40 where !free {
                free = try await loser.owner(of: "web") == nil
                if !free { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(free, "the owner key outlived the leaving host's lease")
            #expect(try await loser.claim("web") == .claimed)
            await loser.leave()
        }
    }

    @Test func aLeaseThatIsNotRenewedTakesItsKeysWithIt() async throws {
        try await Self.withEtcd { etcd in
            let store = try EtcdGateway(urls: etcd.urls)
            // 5 s: a 2 s lease once ran out between the grant and the put on a loaded CI machine.
            let lease = try await store.grantLease(ttl: 5)
            try await store.put(ClusterKeys.owner("web"), "host-a", lease: lease)
            #expect(try await store.get(ClusterKeys.owner("web"))?.lease == lease)
            var gone = false
            for _ in 0..<250 where !gone {
                try await Task.sleep(for: .milliseconds(100))
                gone = try await store.get(ClusterKeys.owner("web")) == nil
            }
            #expect(gone, "etcd removed the key when the lease ran out")
        }
    }

    @Test func oneMemberDownAndTheClientUsesTheOthers() async throws {
        try await Self.withEtcd { etcd in
            let store = try EtcdGateway(urls: etcd.urls)
            try await store.put("corral/t/before", "1", lease: nil)
            // `etcd-cluster up` returns once member 1 answers; on a loaded host the others may still be starting,
            // and with one of them not up yet, killing member 1 would leave no quorum to fail over to.
            for url in etcd.urls.dropFirst() {
                let alone = try EtcdGateway(urls: [url])
                var answered = false
                for _ in 0..<60 where !answered {
                    answered = (try? await alone.get("corral/t/before")) != nil
                    if !answered { try await Task.sleep(for: .seconds(1)) }
                }
                try #require(answered, "member \(url) never answered")
            }
            try await etcd.kill(member: 1)  // the endpoint the client used so far
            // When the killed member led, the other two elect a leader first; on a loaded host that takes seconds,
            // and a write meanwhile fails as unreachable. The client must get through once they have one.
            var attempts = 0
            while true {
                attempts += 1
                do {
                    try await store.put("corral/t/after", "2", lease: nil)
                    break
                } catch ClusterError.unreachable(let reason) where attempts < 30 {
                    print("EtcdGatewayTests: put after the kill, attempt \(attempts): \(reason)")
                    try await Task.sleep(for: .seconds(1))
                }
            }
            let entries = try await store.list(prefix: "corral/t/").map { "\($0.key)=\($0.value)" }
            #expect(entries == ["corral/t/after=2", "corral/t/before=1"], "\(entries)")
            // Every member down: a clear error, not a hang.
            try await etcd.kill(member: 2)
            try await etcd.kill(member: 3)
            await #expect { try await store.get("corral/t/before") } throws: { error in
                guard let error = error as? ClusterError, case .unreachable = error else { return false }
                return true
            }
        }
    }
}
