import CorralCore
import CorralModel
import Foundation
import Profiles
import QEMUCommand
import QMP

/// One VM's part of `GET /metrics` (docs/metrics.md). Not queued behind the VM's operations: a scrape reads while
/// a hotplug or a migration runs.
extension ManagedVM {
    /// This VM's figures and its row of the host report. What corral keeps itself is always there; the live
    /// figures (QMP, the taps' sysfs counters) only when they come within `limit`, otherwise the VM is marked
    /// incomplete and the scrape goes on without waiting for them.
    func metrics(within limit: Duration, hostRoot: String) async -> (vm: MetricsSnapshot.VM, row: HostReport.Row) {
        var figures = metricsKept()
        guard let vm = running else { return (figures, hostRow(balloonBytes: nil)) }
        let reading = Task { () async -> LiveFigures? in
            do throws(QMPError) {
                return try await self.liveFigures(vm, timeout: limit, hostRoot: hostRoot)
            } catch {
                self.logger.debug("metrics: QMP failed", metadata: ["error": "\(error)"])
                return nil
            }
        }
        guard let live = await TaskDeadline.value(of: reading, within: limit, otherwise: nil) else {
            figures.complete = false
            return (figures, hostRow(balloonBytes: nil))
        }
        figures.balloon = live.balloon
        figures.disks = live.disks
        figures.nics = live.nics
        return (figures, hostRow(balloonBytes: live.balloon?.balloonBytes))
    }

    /// What QEMU and the kernel report now.
    struct LiveFigures: Sendable {
        var balloon: GuestStats?
        var disks: [MetricsSnapshot.Disk]
        var nics: [MetricsSnapshot.NIC]
    }

    /// The figures corral has without asking anyone.
    private func metricsKept() -> MetricsSnapshot.VM {
        let profile = config.profile
        let up = running != nil && (state == .running || state == .paused)
        return MetricsSnapshot.VM(
            name: name, state: state, vcpusOnline: config.hotplugged.onlineCPUs ?? profile.cpu.count,
            vcpusMax: profile.cpu.max, memoryBytes: memorySize, memoryMaxBytes: (profile.memory.max ?? profile.memory.size).bytes,
            nics: (profile.nics + config.hotplugged.nics.map(\.nic)).map { MetricsSnapshot.NIC(id: $0.id) },
            migration: outgoing?.progress, restarts: lifecycle.restartCount,
            uptimeSeconds: up ? record.startedAt.map { max(0, Date().timeIntervalSince1970 - $0) } : nil)
    }

    private func liveFigures(_ vm: RunningVM, timeout: Duration, hostRoot: String) async throws(QMPError)
        -> LiveFigures
    {
        var balloon: GuestStats?
        if config.profile.memory.balloon != nil {
            balloon = try await readGuestStats(vm, timeout: timeout)
        }
        var disks = allDisks()
        if config.profile.cloudInit != nil { disks.append(Disk(id: CloudInit.seedDiskID, file: "")) }
        let blockstats = try await vm.qmp.execute("query-blockstats", nil, timeout: timeout)
        let taps = Dictionary(TapPlan.entries(config, vhostAvailable: false).map { ($0.nicID, $0) },
                              uniquingKeysWith: { first, _ in first })
        let nics = (config.profile.nics + config.hotplugged.nics.map(\.nic)).map { nic in
            guard let tap = taps[nic.id] else { return MetricsSnapshot.NIC(id: nic.id) }
            return MetricsSnapshot.NIC(
                id: nic.id, device: tap.ifname,
                traffic: InterfaceStatistics.guestTraffic(ifname: tap.ifname, macvtap: tap.macvtap != nil, root: hostRoot))
        }
        return LiveFigures(
            balloon: balloon,
            disks: BlockStats.disks(fromQueryBlockstats: blockstats, disks: BlockStats.deviceIDs(disks)), nics: nics)
    }
}
