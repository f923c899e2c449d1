import CorralModel
import CorralWire
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DiskFormat: ExpressibleByArgument {}
extension DiskBus: ExpressibleByArgument {}
extension NICMode: ExpressibleByArgument {}
extension NICModel: ExpressibleByArgument {}
extension MacvtapMode: ExpressibleByArgument {}

/// Checks a size argument (`512M`, `1G`) the way profiles spell sizes.
enum SizeArgument {
    static func check(_ text: String, _ flag: String) throws {
        do { _ = try ByteSize(parsing: text) } catch { throw ValidationError("\(flag): \(error.description)") }
    }
}

extension DeviceID {
    /// An id argument of an unplug command (`ID`, `--remove`): the syntax every device id has.
    static func check(_ id: String, _ flag: String) throws {
        if let problem = problem(id, flag: flag) { throw ValidationError(problem) }
    }
}

struct CPUCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu",
        abstract: "Set the number of online vCPUs: plugs into free slots or unplugs the highest (1…cpu.max).")

    @Argument(help: "VM name.") var name: String
    @Argument(help: "vCPUs to have online.") var count: Int
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        do { try CPUCountRequest(count: count).validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.setCPUs(name, count: count) }
        if json { return try JSONOutput.print(status) }
        let plural = status.cpus.online == 1 ? "" : "s"
        Terminal.out("\(status.name): \(status.cpus.online) vCPU\(plural) online (max \(status.cpus.max))")
    }
}

struct DiskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk", abstract: "Plug a disk into a running VM or unplug one.",
        subcommands: [DiskAddCommand.self, DiskRemoveCommand.self])
}

struct DiskAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Attach an existing image (--file), or create one first (--file with --size).",
        discussion: "A relative --file is resolved against the current directory: the daemon needs an absolute "
            + "path. With --size the image must not exist yet; it is created (qcow2 unless --format raw) and "
            + "removed again when the plug fails.")

    @Argument(help: "VM name.") var name: String
    @Option(help: "Disk id (unique in the VM).") var id: String
    @Option(help: "Image file (without it, --size makes a volume corral keeps in the VM's folder).") var file: String?
    @Option(help: "Image format: qcow2 or raw (default: from the file, qcow2 for a new one).") var format: DiskFormat?
    @Option(help: "Create the image with this size (e.g. 16M, 10G).") var size: String?
    @Flag(help: "Attach read-only.") var readonly = false
    @Option(help: "Bus: virtio-blk, virtio-scsi or nvme (default virtio-blk).") var bus: DiskBus?
    @Option(help: "A base image to make the disk a new qcow2 overlay on (QEMU only reads the base).") var backing: String?
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    /// With `--file` and `--backing` made absolute: the daemon has its own working folder.
    var request: DiskAddRequest {
        DiskAddRequest(id: id, file: file.map(ClientPath.absolute), format: format, size: size, readonly: readonly,
                       bus: bus, backing: backing.map(ClientPath.absolute))
    }

    func validate() throws {
        if file?.isEmpty == true { throw ValidationError("--file must not be empty") }
        if backing?.isEmpty == true { throw ValidationError("--backing must not be empty") }
        do { try request.validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let request = self.request
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.addDisk(name, request) }
        if json { return try JSONOutput.print(status) }
        guard let disk = status.disks.first(where: { $0.id == id }) else {
            return Terminal.out("\(status.name): disk \(id) added")
        }
        let flags = [disk.format, disk.bus] + (disk.readonly ? ["read-only"] : [])
        Terminal.out("\(status.name): disk \(id) added: \(disk.file) (\(flags.joined(separator: ", ")))")
    }
}

struct DiskRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Unplug a hotplugged disk; --delete-image also deletes its image file.")

    @Argument(help: "VM name.") var name: String
    @Argument(help: "Disk id.") var id: String
    @Flag(help: "Delete the image file once the guest released the disk.") var deleteImage = false
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws { try DeviceID.check(id, "ID") }

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) {
            try await $0.removeDisk(name, id: id, deleteImage: deleteImage)
        }
        if json { return try JSONOutput.print(status) }
        Terminal.out(HotplugText.removed(status, kind: "disk", id: id))
    }
}

struct NICCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nic", abstract: "Plug a network card into a running VM or unplug one.",
        subcommands: [NICAddCommand.self, NICRemoveCommand.self])
}

struct NICAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Plug a network card (user networking unless --mode says otherwise).")

    @Argument(help: "VM name.") var name: String
    @Option(help: "NIC id (unique in the VM).") var id: String
    @Option(help: "user, tap, bridge, macvtap or network (default user).") var mode: NICMode?
    @Option(help: "Managed network to join (--mode network).") var network: String?
    @Option(help: "Bridge to join (--mode bridge); corral makes the tap.") var bridge: String?
    @Option(help: "Existing tap interface (--mode tap); without it corral makes the tap.") var ifname: String?
    @Option(help: "Host interface the macvtap sits on (--mode macvtap).") var parent: String?
    @Option(help: "bridge, vepa, private or passthru (--mode macvtap; default bridge).") var macvtapMode: MacvtapMode?
    @Option(help: "MAC address (default: a stable 52:54:00 address from the VM name and id).") var mac: String?
    @Option(help: "virtio-net or e1000e (default virtio-net).") var model: NICModel?
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    var request: NICAddRequest {
        NICAddRequest(id: id, mode: mode, bridge: bridge, ifname: ifname, network: network, parent: parent,
                      macvtapMode: macvtapMode, mac: mac, model: model)
    }

    func validate() throws {
        do { try request.validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let request = self.request
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.addNIC(name, request) }
        if json { return try JSONOutput.print(status) }
        guard let nic = status.nics.first(where: { $0.id == id }) else {
            return Terminal.out("\(status.name): nic \(id) added")
        }
        Terminal.out("\(status.name): nic \(id) added: \(nic.mac) (\(nic.mode))")
    }
}

struct NICRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Unplug a hotplugged network card.")

    @Argument(help: "VM name.") var name: String
    @Argument(help: "NIC id.") var id: String
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws { try DeviceID.check(id, "ID") }

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.removeNIC(name, id: id) }
        if json { return try JSONOutput.print(status) }
        Terminal.out(HotplugText.removed(status, kind: "nic", id: id))
    }
}

struct MemoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mem",
        abstract: "Plug a memory DIMM (--add SIZE [--id ID]) or unplug one (--remove ID).",
        discussion: "The VM's profile must allow growth (memory.max above memory.size) and have free slots.")

    @Argument(help: "VM name.") var name: String
    @Option(help: "Size of the DIMM to plug (e.g. 256M, 1G).") var add: String?
    @Option(help: "Id of the new DIMM (default dimm0, dimm1, …); with --add.") var id: String?
    @Option(help: "Id of the DIMM to unplug.") var remove: String?
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        switch (add, remove) {
        case (nil, nil): throw ValidationError("give --add SIZE or --remove ID")
        case (_?, _?): throw ValidationError("--add and --remove exclude each other")
        case (let size?, nil):
            do { try MemoryAddRequest(id: id, size: size).validate() } catch { throw error.validationError }
        case (nil, let id?):
            try DeviceID.check(id, "--remove")
            if self.id != nil { throw ValidationError("--id applies to --add; give the DIMM to unplug as --remove ID") }
        }
    }

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { client in
            if let add {
                return try await client.addMemory(name, MemoryAddRequest(id: id, size: add))
            }
            return try await client.removeMemory(name, id: remove ?? "")
        }
        if json { return try JSONOutput.print(status) }
        let memory = "memory \(StatusText.bytes(status.memory.sizeBytes)) (max \(StatusText.bytes(status.memory.maxBytes)))"
        if let remove {
            Terminal.out(HotplugText.removed(status, kind: "dimm", id: remove) + ", " + memory)
        } else {
            Terminal.out("\(status.name): \(add ?? "") plugged, \(memory)")
        }
    }
}

enum HotplugText {
    /// `web: disk d1 removed`, or that the guest has yet to release it.
    static func removed(_ status: VMStatus, kind: String, id: String) -> String {
        if status.unplugPending.contains(id) {
            return "\(status.name): \(kind) \(id) unplug pending (the guest has not released it yet)"
        }
        return "\(status.name): \(kind) \(id) removed"
    }
}

