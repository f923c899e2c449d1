#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CorralModel
import JSON

/// Human renderings of the daemon's answers: short, aligned.
enum StatusText {
    static func line(_ status: VMStatus) -> String {
        var text = "\(status.name): \(status.state.rawValue)"
        if let pid = status.pid { text += " (pid \(pid))" }
        return text
    }

    static func table(_ vms: [VMStatus]) -> [String] {
        let header = ["NAME", "STATE", "PID", "CPUS", "MEMORY", "UPTIME", "RESTARTS", "ADDRESS"]
        let rows = vms.map { vm in
            [vm.name, vm.state.rawValue, vm.pid.map(String.init) ?? "-", "\(vm.cpus.online)/\(vm.cpus.max)",
             bytes(vm.memory.sizeBytes), vm.uptimeSeconds.map(duration) ?? "-", "\(vm.restartCount)",
             address(vm) ?? "-"]
        }
        return aligned([header] + rows)
    }

    /// `ls`'s ADDRESS: the first IPv4 address of any NIC, else the first address.
    static func address(_ vm: VMStatus) -> String? {
        let all = vm.nics.flatMap(\.addresses)
        return all.first { !$0.contains(":") } ?? all.first
    }

    static func block(_ vm: VMStatus) -> [String] {
        var pairs: [(String, String)] = [
            ("name", vm.name),
            ("state", vm.state.rawValue),
            ("pid", vm.pid.map(String.init) ?? "-"),
            ("accel", vm.accel),
            ("uptime", vm.uptimeSeconds.map(duration) ?? "-"),
            ("cpus", "\(vm.cpus.online) online, \(vm.cpus.max) max"),
        ]
        var memory = "\(bytes(vm.memory.sizeBytes)) (max \(bytes(vm.memory.maxBytes))"
        if let balloon = vm.memory.balloonBytes { memory += ", balloon \(bytes(balloon))" }
        pairs.append(("memory", memory + ")"))
        for (index, disk) in vm.disks.enumerated() {
            let flags = [disk.format, disk.bus] + (disk.readonly ? ["read-only"] : [])
            pairs.append((index == 0 ? "disks" : "", "\(disk.id) \(disk.file) (\(flags.joined(separator: ", ")))"))
        }
        if vm.disks.isEmpty { pairs.append(("disks", "-")) }
        for (index, nic) in vm.nics.enumerated() {
            var text = "\(nic.id) \(nic.mac) \(nic.mode)"
            if let network = nic.network { text += " \(network)" }
            if !nic.addresses.isEmpty {
                text += " " + nic.addresses.joined(separator: ", ")
                if let source = nic.addressSource { text += " (\(source))" }
            }
            pairs.append((index == 0 ? "nics" : "", text))
        }
        if vm.nics.isEmpty { pairs.append(("nics", "-")) }
        for (index, device) in (vm.hostdevs ?? []).enumerated() {
            var text = "\(device.id) \(device.kind) " + (device.host.isEmpty ? "-" : device.host.joined(separator: ", "))
            if let failover = device.failover { text += " (failover with \(failover))" }
            if device.source == "plugged" { text += " (plugged)" }
            pairs.append((index == 0 ? "hostdevs" : "", text))
        }
        if let agent = vm.agent { pairs.append(("agent", agent)) }
        pairs += [
            ("qmp", vm.qmpSocket),
            ("serial", vm.serialLog),
            ("restarts", "\(vm.restartCount)"),
            ("last exit", vm.lastExit ?? "-"),
        ]
        if let confinement = vm.confinement { pairs.append(("confinement", confinement)) }
        if let problem = vm.problem { pairs.append(("problem", problem)) }
        if !vm.unplugPending.isEmpty {
            pairs.append(("unplug pending", vm.unplugPending.joined(separator: ", ")))
        }
        if let migration = vm.migration {
            let progress = migration.progress
            var text = "to \(migration.to), \(progress?.rawStatus ?? "starting")"
            if let percent = progress?.percent { text += ", " + TextFormat.fixed(percent, 0) + "%" }
            if let mib = progress?.mibPerSecond { text += ", " + TextFormat.fixed(mib, 1) + " MiB/s" }
            if let left = progress?.ramRemaining { text += ", \(bytes(UInt64(max(0, left)))) left" }
            pairs.append(("migration", text))
        }
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { key, value in
            let label = key.isEmpty ? "" : key + ":"
            return TextFormat.padded(label, width + 2) + value
        }
    }

    static func event(_ event: CorralEvent) -> String {
        var text = "\(TextFormat.localTimestamp(event.time)) \(event.vm) \(event.source.rawValue) \(event.name)"
        if let data = event.data, !data.isNull { text += " " + data.compactText }
        return text
    }

    /// 1 GiB, 768 MiB, 1.5 GiB, 512 B.
    static func bytes(_ value: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        if unit == 0 || amount == amount.rounded() { return "\(Int(amount)) \(units[unit])" }
        return TextFormat.fixed(amount, 1) + " " + units[unit]
    }

    /// 45s, 3m05s, 2h07m, 3d04h.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        let (days, hours, minutes, secs) = (total / 86400, total / 3600 % 24, total / 60 % 60, total % 60)
        if days > 0 { return "\(days)d" + TextFormat.zeroPadded(hours, 2) + "h" }
        if hours > 0 { return "\(hours)h" + TextFormat.zeroPadded(minutes, 2) + "m" }
        if minutes > 0 { return "\(minutes)m" + TextFormat.zeroPadded(secs, 2) + "s" }
        return "\(secs)s"
    }

    static func aligned(_ rows: [[String]]) -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : TextFormat.padded(cell, widths[index])
            }.joined(separator: "  ")
        }
    }
}
