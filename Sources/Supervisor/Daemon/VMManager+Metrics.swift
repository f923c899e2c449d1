import CorralControl
import CorralModel

/// `GET /metrics` at the daemon level: every VM read at once, each within `DaemonOptions.metricsTimeout`.
extension VMManager: MetricsControl {
    public func metricsSnapshot() async -> MetricsSnapshot {
        let limit = options.metricsTimeout
        let hostRoot = options.hostRoot
        let all = Array(vms.values)
        let read = await withTaskGroup(of: (vm: MetricsSnapshot.VM, row: HostReport.Row).self) { group in
            for vm in all { group.addTask { await vm.metrics(within: limit, hostRoot: hostRoot) } }
            var out: [(vm: MetricsSnapshot.VM, row: HostReport.Row)] = []
            for await one in group { out.append(one) }
            return out.sorted { $0.vm.name < $1.vm.name }
        }
        metricsTally.scrapeErrors += UInt64(read.filter { !$0.vm.complete }.count)
        return MetricsSnapshot(vms: read.map(\.vm), host: hostReport(rows: read.map(\.row)),
                               migrations: metricsTally.migrations, scrapeErrors: metricsTally.scrapeErrors)
    }

    /// An outgoing migration ended (`completed` with QEMU's final figures, or failed or cancelled).
    func countMigration(_ result: MigrationResult?) {
        guard let result else {
            metricsTally.migrations.failed += 1
            return
        }
        metricsTally.migrations.completed += 1
        if let downtime = result.downtimeMilliseconds {
            metricsTally.migrations.lastDowntimeSeconds = Double(downtime) / 1000
        }
    }
}

/// What `GET /metrics` counts over the daemon's life.
struct MetricsTally: Sendable {
    var migrations = MetricsSnapshot.Migrations()
    var scrapeErrors: UInt64 = 0
}
