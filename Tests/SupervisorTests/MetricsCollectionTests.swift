import CorralCore
import CorralModel
import Foundation
import JSON
import Testing
@testable import Supervisor

/// `VMManager.metricsSnapshot()` over scripted QEMUs: a VM whose monitor hangs is reported without its live figures
/// within the per-VM limit, and the others are not held up; and the taps' sysfs counters from the guest's side.
@Suite(.timeLimit(.minutes(1))) struct MetricsCollectionTests {
    static let blockstats: JSONValue = [[
        "device": "", "node-name": "fmt-data", "qdev": "/machine/peripheral/disk-data/virtio-backend",
        "stats": ["rd_bytes": 4096, "wr_bytes": 512, "rd_operations": 8, "wr_operations": 1, "flush_operations": 1,
                  "rd_total_time_ns": 2_000_000, "wr_total_time_ns": 0, "flush_total_time_ns": 0],
    ]]

    @Test func aVMWhoseMonitorHangsIsReportedIncompleteAndTheOthersInTime() async throws {
        let scene = try ManagedVMTests.Scene(extra: "cpu: { count: 2, max: 4 }\n")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let web = launcher.willStart(pid: 3001)
        let db = launcher.willStart(pid: 3002)
        var options = ManagedVMTests.options
        options.metricsTimeout = .milliseconds(300)
        let manager = try await VMManager.open(stateRoot: scene.root + "/state", launcher: launcher, options: options,
                                               peerConnector: nil, logger: ManagedVMTests.quiet)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        _ = try await manager.up(UpRequest(profile: scene.profile, name: "db"))
        web.qmp.expect("query-blockstats", nil, .ok(Self.blockstats))
        // Longer than the test's own time limit: the scrape returns only because the per-VM deadline cuts it off.
        db.qmp.expect("query-blockstats", nil, .stall(.seconds(3600)))

        let snapshot = await manager.metricsSnapshot()
        #expect(snapshot.vms.map(\.name) == ["db", "web"])
        let hung = try #require(snapshot.vms.first)
        #expect(!hung.complete && hung.disks == [] && hung.state == .running && hung.vcpusOnline == 2)
        let fine = try #require(snapshot.vms.last)
        #expect(fine.complete)
        #expect(fine.disks == [MetricsSnapshot.Disk(id: "disk-data", readBytes: 4096, writtenBytes: 512,
                                                    readOperations: 8, writeOperations: 1, flushOperations: 1,
                                                    readSeconds: 0.002)])
        #expect(fine.nics == [])
        #expect(snapshot.scrapeErrors == 1)
        #expect(snapshot.host.cpus.committed == 4, "both VMs' vCPUs count, the hung one's too")
        web.qmp.verify()
        await manager.shutdown()
    }

    @Test func outgoingMigrationsAreCountedAndTheLastDowntimeIsKept() async throws {
        let scene = try ManagedVMTests.Scene()
        defer { scene.cleanUp() }
        let manager = try await scene.open(FakeLauncher())
        #expect(await manager.metricsSnapshot().migrations == .init())
        await manager.countMigration(MigrationResult(name: "web", destination: "192.0.2.2:7070", totalMilliseconds: 900,
                                                     downtimeMilliseconds: 42, setupMilliseconds: 3, transferredBytes: 1))
        await manager.countMigration(nil)
        await manager.countMigration(MigrationResult(name: "db", destination: "192.0.2.2:7070", totalMilliseconds: 900,
                                                     downtimeMilliseconds: nil, setupMilliseconds: nil, transferredBytes: nil))
        let snapshot = await manager.metricsSnapshot()
        #expect(snapshot.migrations == .init(completed: 2, failed: 1, lastDowntimeSeconds: 0.042))
        #expect(snapshot.vms == [] && snapshot.scrapeErrors == 0)
        await manager.shutdown()
    }

    @Test func tapCountersAreSwappedToTheGuestsSideAndAMacvtapsAreNot() throws {
        let root = NSTemporaryDirectory() + "corral-sysfs-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = root + "/sys/class/net/crtap0/statistics"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, value) in ["rx_bytes": 100, "rx_packets": 1, "tx_bytes": 9000, "tx_packets": 90] {
            try "\(value)\n".write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
        }
        #expect(InterfaceStatistics.guestTraffic(ifname: "crtap0", macvtap: false, root: root)
            == .init(receivedBytes: 9000, receivedPackets: 90, transmittedBytes: 100, transmittedPackets: 1))
        #expect(InterfaceStatistics.guestTraffic(ifname: "crtap0", macvtap: true, root: root)
            == .init(receivedBytes: 100, receivedPackets: 1, transmittedBytes: 9000, transmittedPackets: 90))
        #expect(InterfaceStatistics.guestTraffic(ifname: "gone", macvtap: false, root: root) == nil)
    }
}
