import ArgumentParser
import CorralModel

struct HostDeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostdev", abstract: "Host PCI devices: list them, plug one into a running VM, unplug it.",
        discussion: "A device is bound to vfio-pci while a VM holds it and given back to its driver afterwards "
            + "(docs/devices.md).",
        subcommands: [HostDeviceListCommand.self, HostDeviceAddCommand.self, HostDeviceRemoveCommand.self],
        defaultSubcommand: HostDeviceListCommand.self)
}

struct HostDeviceListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "The host's PCI devices by IOMMU group, its SR-IOV PFs, and which VM holds what.")

    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let report = try await DaemonCall.run(socket: socket.resolved) { try await $0.hostDevices() }
        if json { return try JSONOutput.print(report) }
        for line in HostDeviceText.lines(report) { Terminal.out(line) }
    }
}

struct HostDeviceAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Plug a host device (--pci) or a VF corral picks from a PF (--vf-of).")

    @Argument(help: "VM name.") var name: String
    @Option(help: "Device id (unique in the VM).") var id: String
    @Option(help: "The host device's PCI address (0000:65:00.0).") var pci: String?
    @Option(help: "The PF to take a free VF from: its PCI address or interface name.") var vfOf: String?
    @Option(help: "The VF's MAC (default: a stable address from the VM name and id).") var mac: String?
    @Option(help: "802.1Q VLAN the PF tags the VF's traffic with (1-4094).") var vlan: Int?
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    var request: HostDeviceAddRequest { HostDeviceAddRequest(id: id, pci: pci, vfOf: vfOf, mac: mac, vlan: vlan) }

    func validate() throws {
        do { try request.validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let request = self.request
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.addHostDevice(name, request) }
        if json { return try JSONOutput.print(status) }
        let host = status.hostdevs?.first { $0.id == id }?.host.joined(separator: ", ")
        Terminal.out("\(status.name): hostdev \(id) added" + (host.map { ": \($0)" } ?? ""))
    }
}

struct HostDeviceRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Unplug a host device added with `hostdev add`; it goes back to its driver.")

    @Argument(help: "VM name.") var name: String
    @Argument(help: "Device id.") var id: String
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws { try DeviceID.check(id, "ID") }

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.removeHostDevice(name, id: id) }
        if json { return try JSONOutput.print(status) }
        Terminal.out(HotplugText.removed(status, kind: "hostdev", id: id))
    }
}

/// `corral hostdev ls` as text.
enum HostDeviceText {
    static func lines(_ report: HostDeviceReport) -> [String] {
        var lines: [String] = []
        lines.append("IOMMU: " + (report.iommu.isEmpty
            ? "none (enable intel_iommu=on or amd_iommu=on; nothing can be assigned)"
            : report.iommu.joined(separator: ", ")))
        var rows = [["GROUP", "ADDRESS", "IDS", "CLASS", "DRIVER", "VM"]]
        for group in report.groups {
            for device in group.devices {
                rows.append([group.number.map(String.init) ?? "-", device.address, device.ids, device.kind,
                             device.driver ?? "-", device.vm ?? "-"])
            }
        }
        lines += StatusText.aligned(rows)
        let blocked = report.groups.filter { $0.number != nil && $0.devices.count > 1 && !$0.hostBound.isEmpty }
        for group in blocked {
            lines.append("group \(group.number ?? 0): \(group.hostBound.joined(separator: ", ")) on host drivers; "
                + "its other members cannot be assigned while they are")
        }
        if !report.physicalFunctions.isEmpty {
            lines.append("")
            var pfRows = [["PF", "NETDEV", "VFS", "USED", "TOTAL"]]
            for pf in report.physicalFunctions {
                pfRows.append([pf.address, pf.netdev ?? "-", "\(pf.numVFs)", "\(pf.usedVFs)", "\(pf.totalVFs)"])
            }
            lines += StatusText.aligned(pfRows)
            for pf in report.physicalFunctions {
                for vf in pf.vfs where vf.vm != nil {
                    lines.append("  \(pf.address) VF \(vf.index) \(vf.address): \(vf.vm ?? "")")
                }
            }
        }
        return lines
    }
}
