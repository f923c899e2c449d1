import Cluster
import CorralControl
import CorralModel
import Foundation
import Logging
import Supervisor
import Synchronization
import Testing
import TestSupport

/// HA across two hosts on a real etcd with real QEMU: the owner of an `ha: true` VM is cut off from etcd; it pauses
/// the guest before its lease can expire, the other host starts the VM once the lease is gone, and when the link
/// returns the cut-off host does not resume its copy but kills and forgets it. At no moment do two copies run.
@Suite(.bootsGuests, .enabled(if: FileManager.default.isExecutableFile(atPath: "/opt/corral-etcd/usr/bin/etcd"),
                "etcd missing: run scripts/install-deps"))
struct ClusterHATests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Polls `body` every 200 ms until it is true or `limit` passes.
    static func eventually(within limit: Duration, _ body: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await body() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return await body()
    }

    @Test func aCutOffOwnerPausesItsHAVMAnotherHostStartsItAndTheOldCopyIsDropped() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("ha")
        defer { Guest.cleanUp(root) }
        let etcd = try await EtcdCluster.start(in: root + "/etcd", port: 27_000 + Int(getpid() % 40) * 100)
        defer { etcd.stop() }
        let urls = etcd.urls

        let linkA = SeveredStore(try EtcdGateway(urls: urls))
        let memberA = ClusterMember(host: "host-a", store: linkA, record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0),
                                    logger: Self.quiet)
        let memberB = ClusterMember(host: "host-b", store: try EtcdGateway(urls: urls),
                                    record: HostRecord(address: "192.0.2.2:7070", joinedAt: 0), logger: Self.quiet)
        try await memberA.join()
        try await memberB.join()
        func manager(_ host: String, _ member: ClusterMember) async throws -> VMManager {
            var options = DaemonOptions(autoBalloon: false, manageKSM: false)
            options.cluster = member
            return try await VMManager.open(stateRoot: root + "/\(host)", options: options)
        }
        let a = try await manager("host-a", memberA)
        let b = try await manager("host-b", memberB)
        let loops = [Task { await a.run() }, Task { await b.run() }]
        defer { for loop in loops { loop.cancel() } }

        let profile = try Guest.writeProfile(in: root, name: "solo", extra: "ha: true\nrestart: no\n")
        let started = try await a.up(UpRequest(profile: profile))
        #expect(started.state == .running)
        _ = try await HeartbeatWait.first(in: started.serialLog) { $0.n >= 1 }

        // Watch both hosts all along: never two running copies.
        let twoRunning = Mutex(0)
        let watcher = Task {
            while !Task.isCancelled {
                let onA = (try? await a.status("solo"))?.state
                let onB = (try? await b.status("solo"))?.state
                if onA == .running && onB == .running { twoRunning.withLock { $0 += 1 } }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { watcher.cancel() }

        // Cut host-a off: it pauses the guest before its lease (10 s) can expire.
        linkA.isCut = true
        let paused = await Self.eventually(within: .seconds(20)) { (try? await a.status("solo"))?.state == .paused }
        #expect(paused, "the cut-off owner paused its HA VM")
        // host-b is given the VM once host-a's lease has expired, and starts it.
        let adopted = await Self.eventually(within: .seconds(60)) { (try? await b.status("solo"))?.state == .running }
        try #require(adopted, "host-b started the HA VM")
        #expect(try await memberB.owner(of: "solo") == "host-b")
        let onB = try await b.status("solo")
        let beat = try await HeartbeatWait.first(in: onB.serialLog, from: 0) { $0.n >= 1 }
        #expect(beat.n >= 1)

        // The link returns: host-a rejoins, finds host-b owns the VM, kills its paused copy and forgets it.
        linkA.isCut = false
        let dropped = await Self.eventually(within: .seconds(40)) { await a.list().isEmpty }
        #expect(dropped, "host-a dropped its copy")
        #expect(try await b.status("solo").state == .running, "host-b's copy runs on")
        watcher.cancel()
        #expect(twoRunning.withLock { $0 } == 0, "never two running copies")

        try await b.remove("solo", force: true)
        await memberA.leave()
        await memberB.leave()
    }

    /// The owner's daemon is gone (its QEMU runs on, unfenced: nobody is there to pause it) until the other host has
    /// restarted the HA VM; the daemon that comes back finds the VM owned elsewhere and kills its own copy at once.
    @Test func aDaemonThatComesBackAfterItsHAVMMovedKillsItsCopy() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("ha2")
        defer { Guest.cleanUp(root) }
        let etcd = try await EtcdCluster.start(in: root + "/etcd", port: 28_000 + Int(getpid() % 40) * 100)
        defer { etcd.stop() }
        let urls = etcd.urls
        func member(_ host: String) throws -> ClusterMember {
            ClusterMember(host: host, store: try EtcdGateway(urls: urls),
                          record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0), logger: Self.quiet)
        }
        func manager(_ host: String, _ member: ClusterMember) async throws -> VMManager {
            var options = DaemonOptions(autoBalloon: false, manageKSM: false)
            options.cluster = member
            return try await VMManager.open(stateRoot: root + "/\(host)", options: options)
        }
        let memberA = try member("host-a"), memberB = try member("host-b")
        try await memberA.join()
        try await memberB.join()
        let a = try await manager("host-a", memberA)
        let b = try await manager("host-b", memberB)
        let loopB = Task { await b.run() }
        defer { loopB.cancel() }
        let profile = try Guest.writeProfile(in: root, name: "solo", extra: "ha: true\nrestart: no\n")
        let first = try await a.up(UpRequest(profile: profile))
        let oldPid = try #require(first.pid)

        // host-a's daemon goes away without a word (its lease is not revoked; its QEMU keeps running).
        await a.shutdown()
        await memberA.stopRenewingForTest()
        let adopted = await Self.eventually(within: .seconds(60)) { (try? await b.status("solo"))?.state == .running }
        try #require(adopted, "host-b started the HA VM once host-a's lease expired")

        // host-a's daemon comes back: it finds the VM owned by host-b and kills its own copy.
        let memberA2 = try member("host-a")
        try await memberA2.join()
        let a2 = try await manager("host-a", memberA2)
        #expect(await a2.list().isEmpty, "the copy that lost its ownership is forgotten")
        let gone = await Self.eventually(within: .seconds(10)) { kill(oldPid, 0) != 0 }
        #expect(gone, "and its QEMU killed")
        #expect(try await b.status("solo").state == .running)
        try await b.remove("solo", force: true)
        await memberA2.leave()
        await memberB.leave()
    }
}
