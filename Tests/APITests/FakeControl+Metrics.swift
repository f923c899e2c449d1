import CorralControl
import CorralModel

extension FakeControl: MetricsControl {
    func metricsSnapshot() async -> MetricsSnapshot {
        record(.metricsSnapshot)
        return metrics
    }

    func setMetrics(_ snapshot: MetricsSnapshot) { metrics = snapshot }

    /// A running VM with every kind of figure (a disk id that needs escaping among them), a stopped one, a host.
    static var sampleMetrics: MetricsSnapshot {
        let web = MetricsSnapshot.VM(
            name: "web", state: .migrating, vcpusOnline: 2, vcpusMax: 4, memoryBytes: 1 << 30, memoryMaxBytes: 2 << 30,
            balloon: GuestStats(name: "web", balloonBytes: 768 << 20, balloonTargetBytes: 768 << 20, autoBalloon: true,
                                lastUpdate: 1_764_040_485,
                                stats: ["stat-total-memory": 700 << 20, "stat-free-memory": 300 << 20,
                                        "stat-available-memory": 500 << 20, "stat-disk-caches": 100 << 20,
                                        "stat-swap-in": 4096, "stat-swap-out": 8192, "stat-major-faults": 12,
                                        "stat-minor-faults": 3456, "stat-htlb-pgalloc": -1]),
            disks: [
                MetricsSnapshot.Disk(id: "root", readBytes: 52_428_800, writtenBytes: 1_048_576, readOperations: 1200,
                                     writeOperations: 64, flushOperations: 7, readSeconds: 0.25, writeSeconds: 0.125,
                                     flushSeconds: 0),
                MetricsSnapshot.Disk(id: #"odd "id"\with\#nnewline"#, readBytes: 1),
            ],
            nics: [
                MetricsSnapshot.NIC(id: "net0"),
                MetricsSnapshot.NIC(id: "net1", device: "cr1a2b3c4d-net1",
                                    traffic: .init(receivedBytes: 9000, receivedPackets: 90, transmittedBytes: 4000,
                                                   transmittedPackets: 40)),
            ],
            migration: MigrationProgress(status: .active, ramTransferred: 1_000_000, ramRemaining: 3_000_000,
                                         ramTotal: 4_000_000, expectedDowntimeMs: 40),
            restarts: 2, uptimeSeconds: 12.5)
        let db = MetricsSnapshot.VM(name: "db", state: .stopped, complete: false, vcpusOnline: 1, vcpusMax: 1,
                                    memoryBytes: 256 << 20, memoryMaxBytes: 256 << 20)
        return MetricsSnapshot(vms: [web, db], host: hostReport,
                               migrations: .init(completed: 3, failed: 1, lastDowntimeSeconds: 0.042), scrapeErrors: 5)
    }
}
