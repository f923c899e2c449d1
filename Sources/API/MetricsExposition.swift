import CoreMetrics
import CorralModel
import CorralWire
import Prometheus

/// One metric family of `GET /metrics`: its name, type and help text (docs/metrics.md lists each).
public struct MetricFamily: Sendable, Hashable {
    public enum Kind: String, Sendable { case gauge, counter }
    public var name: String
    public var kind: Kind
    public var help: String

    init(_ name: String, _ kind: Kind, _ help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }
}

/// Renders a `MetricsSnapshot` in the Prometheus text exposition format (0.0.4) through swift-prometheus's
/// collector registry. Pure: a fresh registry per scrape, so a VM that is gone has no series left behind, and
/// counters carry the totals QEMU and the kernel keep (they restart at zero with the VM's QEMU).
public enum MetricsExposition {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    // MARK: Families

    static let buildInfo = MetricFamily("corral_build_info", .gauge, "Always 1; the daemon's version in the label.")
    static let scrapeDuration = MetricFamily(
        "corral_scrape_duration_seconds", .gauge, "How long this scrape took to collect its figures.")
    static let scrapeErrors = MetricFamily(
        "corral_scrape_errors_total", .counter,
        "VMs whose live figures (QMP, sysfs) missed a scrape's per-VM time limit, since the daemon started.")

    static let vmState = MetricFamily(
        "corral_vm_state", .gauge, "1 for the state the VM is in, 0 for the others (one series per state).")
    static let vmScrapeSuccess = MetricFamily(
        "corral_vm_scrape_success", .gauge,
        "1 when this scrape has the VM's live figures, 0 when its QEMU did not answer in time.")
    static let vcpus = MetricFamily("corral_vm_vcpus", .gauge, "vCPUs online (plugged in).")
    static let vcpusMax = MetricFamily("corral_vm_vcpus_max", .gauge, "vCPUs the VM can grow to.")
    static let memory = MetricFamily("corral_vm_memory_bytes", .gauge, "Guest memory: boot memory plus hotplugged DIMMs.")
    static let memoryMax = MetricFamily("corral_vm_memory_max_bytes", .gauge, "Memory the VM can grow to by hotplug.")
    static let balloonActual = MetricFamily(
        "corral_vm_balloon_actual_bytes", .gauge, "Memory the guest has now, as the balloon reports it (query-balloon).")
    static let balloonTarget = MetricFamily(
        "corral_vm_balloon_target_bytes", .gauge, "The last balloon target corral set (by hand or by the policy).")
    static let guestMemoryTotal = MetricFamily(
        "corral_vm_guest_memory_total_bytes", .gauge, "Memory the guest's kernel has (virtio-balloon stat-total-memory).")
    static let guestMemoryFree = MetricFamily(
        "corral_vm_guest_memory_free_bytes", .gauge, "Memory unused in the guest (stat-free-memory).")
    static let guestMemoryAvailable = MetricFamily(
        "corral_vm_guest_memory_available_bytes", .gauge,
        "Memory the guest can use without swapping (stat-available-memory).")
    static let guestDiskCaches = MetricFamily(
        "corral_vm_guest_memory_disk_caches_bytes", .gauge, "The guest's page cache (stat-disk-caches).")
    static let guestSwapIn = MetricFamily(
        "corral_vm_guest_swap_in_bytes_total", .counter, "Memory the guest swapped in (stat-swap-in).")
    static let guestSwapOut = MetricFamily(
        "corral_vm_guest_swap_out_bytes_total", .counter, "Memory the guest swapped out (stat-swap-out).")
    static let guestPageFaults = MetricFamily(
        "corral_vm_guest_page_faults_total", .counter,
        "Page faults in the guest, by kind (stat-major-faults, stat-minor-faults).")
    static let guestStatsTime = MetricFamily(
        "corral_vm_guest_memory_stats_timestamp_seconds", .gauge,
        "When the guest last reported its memory statistics (seconds since the epoch).")
    static let diskReadBytes = MetricFamily(
        "corral_vm_disk_read_bytes_total", .counter, "Bytes read from the disk (query-blockstats rd_bytes).")
    static let diskWrittenBytes = MetricFamily(
        "corral_vm_disk_written_bytes_total", .counter, "Bytes written to the disk (wr_bytes).")
    static let diskReads = MetricFamily(
        "corral_vm_disk_read_operations_total", .counter, "Read requests (rd_operations).")
    static let diskWrites = MetricFamily(
        "corral_vm_disk_write_operations_total", .counter, "Write requests (wr_operations).")
    static let diskFlushes = MetricFamily(
        "corral_vm_disk_flush_operations_total", .counter, "Flush requests (flush_operations).")
    static let diskReadTime = MetricFamily(
        "corral_vm_disk_read_time_seconds_total", .counter, "Time spent on read requests (rd_total_time_ns).")
    static let diskWriteTime = MetricFamily(
        "corral_vm_disk_write_time_seconds_total", .counter, "Time spent on write requests (wr_total_time_ns).")
    static let diskFlushTime = MetricFamily(
        "corral_vm_disk_flush_time_seconds_total", .counter, "Time spent on flush requests (flush_total_time_ns).")
    static let nicReceivedBytes = MetricFamily(
        "corral_vm_nic_receive_bytes_total", .counter,
        "Bytes the guest received on the NIC (its host tap's statistics; taps and macvtaps corral makes only).")
    static let nicReceivedPackets = MetricFamily(
        "corral_vm_nic_receive_packets_total", .counter, "Packets the guest received on the NIC.")
    static let nicTransmittedBytes = MetricFamily(
        "corral_vm_nic_transmit_bytes_total", .counter, "Bytes the guest sent on the NIC.")
    static let nicTransmittedPackets = MetricFamily(
        "corral_vm_nic_transmit_packets_total", .counter, "Packets the guest sent on the NIC.")
    static let migrationTransferred = MetricFamily(
        "corral_vm_migration_transferred_bytes", .gauge, "An outgoing migration's RAM sent so far (query-migrate).")
    static let migrationRemaining = MetricFamily(
        "corral_vm_migration_remaining_bytes", .gauge, "An outgoing migration's RAM still to send.")
    static let migrationTotal = MetricFamily(
        "corral_vm_migration_total_bytes", .gauge, "An outgoing migration's RAM in all.")
    static let migrationExpectedDowntime = MetricFamily(
        "corral_vm_migration_expected_downtime_seconds", .gauge,
        "An outgoing migration's downtime if it switched over now, as QEMU expects it.")
    static let migrationDowntime = MetricFamily(
        "corral_vm_migration_downtime_seconds", .gauge, "An outgoing migration's actual downtime, once QEMU knows it.")
    static let restarts = MetricFamily(
        "corral_vm_restarts_total", .counter, "Restarts done by the VM's restart policy.")
    static let uptime = MetricFamily("corral_vm_uptime_seconds", .gauge, "Seconds since the VM's QEMU started.")

    static let hostCPUs = MetricFamily("corral_host_cpus", .gauge, "The host's CPUs.")
    static let hostVCPUsCommitted = MetricFamily(
        "corral_host_vcpus_committed", .gauge, "Online vCPUs of the VMs that hold host resources.")
    static let hostVCPURatio = MetricFamily(
        "corral_host_vcpu_commit_ratio", .gauge, "Committed vCPUs per host CPU.")
    static let hostVCPURatioLimit = MetricFamily(
        "corral_host_vcpu_commit_ratio_limit", .gauge, "The admission limit on that ratio (--cpu-overcommit).")
    static let hostMemory = MetricFamily("corral_host_memory_bytes", .gauge, "The host's memory (MemTotal).")
    static let hostMemoryAvailable = MetricFamily(
        "corral_host_memory_available_bytes", .gauge, "The host's MemAvailable.")
    static let hostMemoryCommitted = MetricFamily(
        "corral_host_memory_committed_bytes", .gauge, "Guest memory of the VMs that hold host resources.")
    static let hostMemoryRatio = MetricFamily(
        "corral_host_memory_commit_ratio", .gauge, "Committed guest memory per byte of host memory.")
    static let hostMemoryRatioLimit = MetricFamily(
        "corral_host_memory_commit_ratio_limit", .gauge, "The admission limit on that ratio (--memory-overcommit).")
    static let hostPinnedMemory = MetricFamily(
        "corral_host_pinned_memory_bytes", .gauge,
        "Memory of running VMs pinned in host RAM (host devices, memory.lock): outside overcommit.")
    static let hostBalloonTotal = MetricFamily(
        "corral_host_balloon_bytes", .gauge, "The sum of the VMs' balloon sizes.")
    static let ksmRunning = MetricFamily("corral_host_ksm_running", .gauge, "1 while KSM merges pages.")
    static let ksmPagesShared = MetricFamily(
        "corral_host_ksm_pages_shared", .gauge, "Distinct pages KSM shares (pages_shared).")
    static let ksmPagesSharing = MetricFamily(
        "corral_host_ksm_pages_sharing", .gauge, "Pages merged into those shared ones: what KSM saves (pages_sharing).")
    static let ksmSaved = MetricFamily("corral_host_ksm_saved_bytes", .gauge, "Memory KSM saves.")
    static let migrations = MetricFamily(
        "corral_migrations_total", .counter, "Outgoing migrations this daemon ran since it started, by result.")
    static let lastMigrationDowntime = MetricFamily(
        "corral_migration_last_downtime_seconds", .gauge,
        "The guest's pause in this daemon's last completed outgoing migration, as QEMU measured it.")

    /// Every family the exposition can contain (docs/metrics.md lists each; a test holds them to it).
    public static let families: [MetricFamily] = [
        buildInfo, scrapeDuration, scrapeErrors,
        vmState, vmScrapeSuccess, vcpus, vcpusMax, memory, memoryMax, balloonActual, balloonTarget,
        guestMemoryTotal, guestMemoryFree, guestMemoryAvailable, guestDiskCaches, guestSwapIn, guestSwapOut,
        guestPageFaults, guestStatsTime,
        diskReadBytes, diskWrittenBytes, diskReads, diskWrites, diskFlushes, diskReadTime, diskWriteTime, diskFlushTime,
        nicReceivedBytes, nicReceivedPackets, nicTransmittedBytes, nicTransmittedPackets,
        migrationTransferred, migrationRemaining, migrationTotal, migrationExpectedDowntime, migrationDowntime,
        restarts, uptime,
        hostCPUs, hostVCPUsCommitted, hostVCPURatio, hostVCPURatioLimit, hostMemory, hostMemoryAvailable,
        hostMemoryCommitted, hostMemoryRatio, hostMemoryRatioLimit, hostPinnedMemory, hostBalloonTotal,
        ksmRunning, ksmPagesShared, ksmPagesSharing, ksmSaved, migrations, lastMigrationDowntime,
    ]

    // MARK: Rendering

    /// The exposition text for `snapshot`; `scrapeSeconds` is how long collecting it took.
    public static func render(_ snapshot: MetricsSnapshot, scrapeSeconds: Double,
                              version: String = CorralVersion.string) -> String {
        let out = Registry()
        out.set(buildInfo, ["version": version], 1)
        out.set(scrapeDuration, [:], scrapeSeconds)
        out.add(scrapeErrors, [:], snapshot.scrapeErrors)
        for vm in snapshot.vms { render(vm, into: out) }
        render(snapshot.host, into: out)
        let migrations = snapshot.migrations
        out.add(Self.migrations, ["result": "completed"], migrations.completed)
        out.add(Self.migrations, ["result": "failed"], migrations.failed)
        out.set(lastMigrationDowntime, [:], migrations.lastDowntimeSeconds)
        return out.registry.emitToString()
    }

    private static func render(_ vm: MetricsSnapshot.VM, into out: Registry) {
        let labels = ["vm": vm.name]
        for state in VMState.allCases {
            out.set(vmState, ["vm": vm.name, "state": state.rawValue], state == vm.state ? 1 : 0)
        }
        out.set(vmScrapeSuccess, labels, vm.complete ? 1 : 0)
        out.set(vcpus, labels, Double(vm.vcpusOnline))
        out.set(vcpusMax, labels, Double(vm.vcpusMax))
        out.set(memory, labels, Double(vm.memoryBytes))
        out.set(memoryMax, labels, Double(vm.memoryMaxBytes))
        out.add(restarts, labels, UInt64(max(0, vm.restarts)))
        out.set(uptime, labels, vm.uptimeSeconds)
        if let balloon = vm.balloon {
            out.set(balloonActual, labels, balloon.balloonBytes.map { Double($0) })
            out.set(balloonTarget, labels, balloon.balloonTargetBytes.map { Double($0) })
            // Only what the guest reported (it leaves out, as -1, what its kernel does not keep).
            if let updated = balloon.lastUpdate {
                let stats = balloon.stats.compactMapValues { $0 >= 0 ? UInt64($0) : nil }
                out.set(guestStatsTime, labels, updated)
                out.set(guestMemoryTotal, labels, stats["stat-total-memory"].map { Double($0) })
                out.set(guestMemoryFree, labels, stats["stat-free-memory"].map { Double($0) })
                out.set(guestMemoryAvailable, labels, stats["stat-available-memory"].map { Double($0) })
                out.set(guestDiskCaches, labels, stats["stat-disk-caches"].map { Double($0) })
                out.add(guestSwapIn, labels, stats["stat-swap-in"])
                out.add(guestSwapOut, labels, stats["stat-swap-out"])
                out.add(guestPageFaults, ["vm": vm.name, "kind": "major"], stats["stat-major-faults"])
                out.add(guestPageFaults, ["vm": vm.name, "kind": "minor"], stats["stat-minor-faults"])
            }
        }
        for disk in vm.disks {
            let labels = ["vm": vm.name, "disk": disk.id]
            out.add(diskReadBytes, labels, disk.readBytes)
            out.add(diskWrittenBytes, labels, disk.writtenBytes)
            out.add(diskReads, labels, disk.readOperations)
            out.add(diskWrites, labels, disk.writeOperations)
            out.add(diskFlushes, labels, disk.flushOperations)
            out.add(diskReadTime, labels, disk.readSeconds)
            out.add(diskWriteTime, labels, disk.writeSeconds)
            out.add(diskFlushTime, labels, disk.flushSeconds)
        }
        for nic in vm.nics {
            guard let traffic = nic.traffic, let device = nic.device else { continue }
            let labels = ["vm": vm.name, "nic": nic.id, "device": device]
            out.add(nicReceivedBytes, labels, traffic.receivedBytes)
            out.add(nicReceivedPackets, labels, traffic.receivedPackets)
            out.add(nicTransmittedBytes, labels, traffic.transmittedBytes)
            out.add(nicTransmittedPackets, labels, traffic.transmittedPackets)
        }
        if let migration = vm.migration {
            out.set(migrationTransferred, labels, migration.ramTransferred.map { Double($0) })
            out.set(migrationRemaining, labels, migration.ramRemaining.map { Double($0) })
            out.set(migrationTotal, labels, migration.ramTotal.map { Double($0) })
            out.set(migrationExpectedDowntime, labels, migration.expectedDowntimeMs.map { Double($0) / 1000 })
            out.set(migrationDowntime, labels, migration.downtimeMs.map { Double($0) / 1000 })
        }
    }

    private static func render(_ host: HostReport, into out: Registry) {
        out.set(hostCPUs, [:], host.cpus.capacity)
        out.set(hostVCPUsCommitted, [:], host.cpus.committed)
        out.set(hostVCPURatio, [:], host.cpus.ratio)
        out.set(hostVCPURatioLimit, [:], host.cpus.limit)
        out.set(hostMemory, [:], host.memory.capacity)
        out.set(hostMemoryAvailable, [:], Double(host.memoryAvailableBytes))
        out.set(hostMemoryCommitted, [:], host.memory.committed)
        out.set(hostMemoryRatio, [:], host.memory.ratio)
        out.set(hostMemoryRatioLimit, [:], host.memory.limit)
        out.set(hostPinnedMemory, [:], Double(host.pinnedMemoryBytes ?? 0))
        out.set(hostBalloonTotal, [:], Double(host.balloonTotalBytes))
        // A host without KSM (CONFIG_KSM off) has none of these.
        if host.ksm.available {
            out.set(ksmRunning, [:], host.ksm.running ? 1 : 0)
            out.set(ksmPagesShared, [:], Double(host.ksm.pagesShared))
            out.set(ksmPagesSharing, [:], Double(host.ksm.pagesSharing))
            out.set(ksmSaved, [:], Double(host.ksm.savedBytes))
        }
    }

    /// One scrape's registry. Figures go in through swift-metrics' handler API; the registry is swift-prometheus'.
    /// Label pairs are sorted by name, so a series always has the same label order.
    private final class Registry {
        let registry = PrometheusCollectorRegistry()

        func set(_ family: MetricFamily, _ labels: [String: String], _ value: Double?) {
            guard let value else { return }
            precondition(family.kind == .gauge, "\(family.name) is a \(family.kind)")
            let gauge: any MeterHandler = registry.makeGauge(name: family.name, labels: Self.pairs(labels),
                                                             help: family.help)
            gauge.set(value)
        }

        func add(_ family: MetricFamily, _ labels: [String: String], _ total: UInt64?) {
            guard let total else { return }
            let counter: any CounterHandler = counter(family, labels)
            counter.increment(by: Int64(clamping: total))
        }

        func add(_ family: MetricFamily, _ labels: [String: String], _ total: Double) {
            let counter: any FloatingPointCounterHandler = counter(family, labels)
            if total > 0 { counter.increment(by: total) }
        }

        private func counter(_ family: MetricFamily, _ labels: [String: String]) -> Prometheus.Counter {
            precondition(family.kind == .counter, "\(family.name) is a \(family.kind)")
            return registry.makeCounter(name: family.name, labels: Self.pairs(labels), help: family.help)
        }

        private static func pairs(_ labels: [String: String]) -> [(String, String)] {
            labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
    }
}
