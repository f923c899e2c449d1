#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CorralModel

/// Human renderings of `corral stats` and `corral host`: short, aligned.
enum TuningText {
    /// The virtio-balloon statistics shown, in order: key, label, and whether the value is bytes.
    static let shownStats: [(key: String, label: String, bytes: Bool)] = [
        ("stat-total-memory", "total memory", true),
        ("stat-free-memory", "free memory", true),
        ("stat-available-memory", "available memory", true),
        ("stat-disk-caches", "disk caches", true),
        ("stat-swap-in", "swap in", true),
        ("stat-swap-out", "swap out", true),
        ("stat-major-faults", "major faults", false),
        ("stat-minor-faults", "minor faults", false),
    ]

    static func stats(_ stats: GuestStats) -> [String] {
        var balloon = stats.balloonBytes.map(StatusText.bytes) ?? "-"
        if let target = stats.balloonTargetBytes { balloon += " (target \(StatusText.bytes(target)))" }
        var pairs: [(String, String)] = [
            ("balloon", balloon),
            ("auto-balloon", stats.autoBalloon ? "on" : "off"),
        ]
        for shown in shownStats {
            // The guest reports -1 (or nothing) for a statistic it does not keep.
            guard let value = stats.stats[shown.key], value >= 0 else {
                pairs.append((shown.label, "-"))
                continue
            }
            pairs.append((shown.label, shown.bytes ? mebibytes(value) : "\(value)"))
        }
        let updated = stats.lastUpdate.map(TextFormat.localTimestamp)
        pairs.append(("updated", updated ?? "never (the guest has not reported yet)"))
        return block(pairs)
    }

    static func host(_ report: HostReport) -> [String] {
        let cpus = "\(Int(report.cpus.capacity)) host, \(Int(report.cpus.committed)) vCPUs committed, "
            + "ratio \(ratio(report.cpus.ratio)) (limit \(report.cpus.limit.map(ratio) ?? "none"))"
        let memory = "\(StatusText.bytes(UInt64(report.memory.capacity))) host, "
            + "\(StatusText.bytes(UInt64(report.memory.committed))) committed, "
            + "ratio \(ratio(report.memory.ratio)) (limit \(report.memory.limit.map(ratio) ?? "none")), "
            + "\(StatusText.bytes(report.memoryAvailableBytes)) available"
        let ksm: String
        if report.ksm.available {
            ksm = "\(report.ksm.running ? "running" : "stopped"), \(report.ksm.pagesSharing) pages sharing, "
                + "\(StatusText.bytes(report.ksm.savedBytes)) saved, "
                + (report.ksm.managed ? "managed by corral" : "not managed")
        } else {
            ksm = "not available"
        }
        var lines = block([
            ("cpus", cpus),
            ("memory", memory),
            ("ksm", ksm),
            ("balloons", "\(StatusText.bytes(report.balloonTotalBytes)) in guests"),
            ("pinned", pinned(report)),
            ("cgroups", report.cgroupVersion ?? "none"),
            ("qemu uids", report.qemuUsers.map { "\($0) (\(report.qemuUsersInUse ?? 0) in use)" } ?? "-"),
        ])
        guard !report.vms.isEmpty else { return lines + ["", "no VMs"] }
        let header = ["NAME", "STATE", "VCPUS", "MEMORY", "BALLOON", "CPU-WEIGHT", "CPU-QUOTA", "SHARES", "AUTO"]
        let rows = report.vms.map { vm in
            [vm.name, vm.state.rawValue, "\(vm.vcpus)", StatusText.bytes(vm.memoryBytes) + (vm.pinned == true ? " pinned" : ""),
             vm.balloonBytes.map(StatusText.bytes) ?? "-", "\(vm.cpuWeight)",
             vm.cpuQuotaPercent.map { "\($0)%" } ?? "-", "\(vm.memoryShares)", vm.autoBalloon ? "on" : "off"]
        }
        lines.append("")
        lines += StatusText.aligned([header] + rows)
        return lines
    }

    /// 231 MiB, 231.4 MiB.
    static func mebibytes(_ bytes: Int64) -> String {
        let value = Double(bytes) / 1_048_576
        if value == value.rounded() { return "\(Int64(value)) MiB" }
        return TextFormat.fixed(value, 1) + " MiB"
    }

    /// 0.75, 1.5, 4.
    static func ratio(_ value: Double) -> String {
        var text = TextFormat.fixed(value, 2)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// `key: value` lines with the values aligned.
    static func block(_ pairs: [(String, String)]) -> [String] {
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { key, value in TextFormat.padded(key + ":", width + 2) + value }
    }

    /// The `pinned` line: how much, which VMs, and what that means for overcommit.
    static func pinned(_ report: HostReport) -> String {
        let names = report.vms.filter { $0.pinned == true }.map(\.name)
        guard let bytes = report.pinnedMemoryBytes, bytes > 0 || !names.isEmpty else { return "none" }
        return "\(StatusText.bytes(bytes)) of running VMs (\(names.joined(separator: ", "))): host devices or "
            + "memory.lock; counted in full against the host's RAM, never ballooned or merged"
    }
}
