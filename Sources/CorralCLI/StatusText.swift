import Foundation
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
        let header = ["NAME", "STATE", "PID", "CPUS", "MEMORY", "UPTIME", "RESTARTS"]
        let rows = vms.map { vm in
            [vm.name, vm.state.rawValue, vm.pid.map(String.init) ?? "-", "\(vm.cpus.online)/\(vm.cpus.max)",
             bytes(vm.memory.sizeBytes), vm.uptimeSeconds.map(duration) ?? "-", "\(vm.restartCount)"]
        }
        return aligned([header] + rows)
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
            pairs.append((index == 0 ? "nics" : "", "\(nic.id) \(nic.mac) \(nic.mode)"))
        }
        if vm.nics.isEmpty { pairs.append(("nics", "-")) }
        pairs += [
            ("qmp", vm.qmpSocket),
            ("serial", vm.serialLog),
            ("restarts", "\(vm.restartCount)"),
            ("last exit", vm.lastExit ?? "-"),
        ]
        if !vm.unplugPending.isEmpty {
            pairs.append(("unplug pending", vm.unplugPending.joined(separator: ", ")))
        }
        if let migration = vm.migration {
            var text = "to \(migration["to"]?.stringValue ?? "?"), \(migration["status"]?.stringValue ?? "starting")"
            if let percent = migration["percent"]?.doubleValue { text += String(format: ", %.0f%%", percent) }
            if let mib = migration["mibPerSecond"]?.doubleValue { text += String(format: ", %.1f MiB/s", mib) }
            if let left = migration["remainingBytes"]?.intValue { text += ", \(bytes(UInt64(max(0, left)))) left" }
            pairs.append(("migration", text))
        }
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { key, value in
            let label = key.isEmpty ? "" : key + ":"
            return label.padding(toLength: width + 2, withPad: " ", startingAt: 0) + value
        }
    }

    static func event(_ event: CorralEvent) -> String {
        let date = Date(timeIntervalSince1970: event.time)
        var text = "\(timestamp(date)) \(event.vm) \(event.source.rawValue) \(event.name)"
        if let data = event.data, !data.isNull { text += " " + data.compactText }
        return text
    }

    /// Local time, to the millisecond.
    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        return formatter.string(from: date)
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
        return String(format: "%.1f", amount) + " " + units[unit]
    }

    /// 45s, 3m05s, 2h07m, 3d04h.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        let (days, hours, minutes, secs) = (total / 86400, total / 3600 % 24, total / 60 % 60, total % 60)
        if days > 0 { return "\(days)d" + String(format: "%02dh", hours) }
        if hours > 0 { return "\(hours)h" + String(format: "%02dm", minutes) }
        if minutes > 0 { return "\(minutes)m" + String(format: "%02ds", secs) }
        return "\(secs)s"
    }

    static func aligned(_ rows: [[String]]) -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
