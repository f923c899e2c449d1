import CorralModel
import Profiles
import QEMUCommand

/// Pure checks for hotplug requests: first the request's own `validate()` (what the CLI checks too), then what
/// depends on the VM. Each failure is one message naming the field, the bad value and what is allowed; nothing
/// is changed when a check fails.
public enum HotplugValidation {
    /// The request's own problems, as one refusal.
    static func validated(_ validate: () throws(RequestProblems) -> Void) -> HotplugRefusal? {
        do { try validate() } catch { return HotplugRefusal(error.description) }
        return nil
    }

    /// Every disk, NIC and DIMM id in use (profile and hotplugged).
    public static func usedIDs(_ config: LiveConfig) -> Set<String> {
        let profile = config.profile
        return Set(profile.disks.map(\.id) + profile.nics.map(\.id)
            + config.hotplugged.disks.map(\.disk.id) + config.hotplugged.nics.map(\.nic.id)
            + config.hotplugged.memory.map(\.id) + profile.hostdevs.map(\.id)
            + config.hotplugged.hostdevs.map(\.device.id))
    }

    /// A syntactically valid id (`validate()`) that no device of the VM uses yet.
    static func checkNewID(_ id: String, _ config: LiveConfig) -> String? {
        guard !usedIDs(config).contains(id) else { return "--id: '\(id)' is already used by a device of \(config.profile.name)" }
        return nil
    }

    /// The first hotplug port no hotplugged disk or NIC sits on.
    public static func freePort(_ config: LiveConfig, reserved: Set<String> = []) -> Result<String, HotplugRefusal> {
        let ports = PCILayout(profile: config.profile).ports.map(\.id)
        let used = Set(config.hotplugged.disks.map(\.port) + config.hotplugged.nics.map(\.port)
            + config.hotplugged.hostdevs.map(\.port)).union(reserved)
        guard let free = ports.first(where: { !used.contains($0) }) else {
            return .failure(HotplugRefusal("no free hotplug slot: the profile reserves \(ports.count) (hotplug.slots)"))
        }
        return .success(free)
    }

    /// The host device a `hostdev add` request describes, on a q35 VM (PCI Express root ports, where vfio-pci
    /// hotplugs).
    public static func hostDevice(_ request: HostDeviceAddRequest, config: LiveConfig) -> Result<HostDevice, HotplugRefusal> {
        if let refusal = validated(request.validate) { return .failure(refusal) }
        if let problem = checkNewID(request.id, config) { return .failure(HotplugRefusal(problem)) }
        guard PCILayout(profile: config.profile).isPCIe else {
            return .failure(HotplugRefusal("host devices plug into PCI Express root ports: \(config.profile.name) "
                + "has machine \(config.profile.machine); use machine: q35"))
        }
        if let pci = request.pci.flatMap({ try? PCIAddress(parsing: $0) }) {
            return .success(HostDevice(id: request.id, pci: pci))
        }
        let source = request.vfOf ?? ""
        let pf = try? PCIAddress(parsing: source)
        return .success(HostDevice(id: request.id, vf: VirtualFunction(
            pf: pf, netdev: pf == nil ? source : nil, mac: request.mac, vlan: request.vlan)))
    }

    public static func disk(_ request: DiskAddRequest, config: LiveConfig, fileExists: Bool) -> Result<Disk, HotplugRefusal> {
        if let refusal = validated(request.validate) { return .failure(refusal) }
        if let problem = checkNewID(request.id, config) { return .failure(HotplugRefusal(problem)) }
        let size = request.size.flatMap { try? ByteSize(parsing: $0) }
        let file = request.file ?? ""
        if size != nil || request.backing != nil {
            if fileExists {
                let flag = size != nil ? "--size" : "--backing"
                return .failure(HotplugRefusal("--file: \(file) already exists; drop \(flag) to attach it as it is"))
            }
        } else if !fileExists {
            return .failure(HotplugRefusal("--file: \(file) does not exist; give --size to create it"))
        }
        let inUse = config.profile.disks.map(\.file) + config.hotplugged.disks.map(\.disk.file)
        if inUse.contains(file) {
            return .failure(HotplugRefusal("--file: \(file) is already a disk of \(config.profile.name)"))
        }
        let format = request.backing != nil ? .qcow2 : request.format
            ?? ((file.hasSuffix(".raw") || file.hasSuffix(".img")) ? .raw : .qcow2)
        return .success(Disk(id: request.id, file: file, format: format, size: size,
                             bus: request.bus ?? .virtioBlk, readonly: request.readonly, backing: request.backing))
    }

    public static func nic(_ request: NICAddRequest, config: LiveConfig) -> Result<NIC, HotplugRefusal> {
        if let refusal = validated(request.validate) { return .failure(refusal) }
        if let problem = checkNewID(request.id, config) { return .failure(HotplugRefusal(problem)) }
        let mode = request.mode ?? .user
        let mac = request.mac.flatMap(MACAddress.normalized)
        let allMACs = (config.profile.nics + config.hotplugged.nics.map(\.nic)).map {
            $0.mac ?? DeviceProps.stableMAC(vmName: config.profile.name, nicID: $0.id)
        }
        let chosen = mac ?? DeviceProps.stableMAC(vmName: config.profile.name, nicID: request.id)
        if allMACs.contains(chosen) {
            return .failure(HotplugRefusal("--mac: \(chosen) is already used by another NIC of \(config.profile.name)"))
        }
        return .success(NIC(id: request.id, mode: mode, mac: chosen, model: request.model ?? .virtioNet,
                            bridge: request.bridge, ifname: request.ifname, network: request.network,
                            parent: request.parent,
                            macvtapMode: request.macvtapMode))
    }

    public static func memory(_ request: MemoryAddRequest, config: LiveConfig) -> Result<PluggedMemory, HotplugRefusal> {
        if let refusal = validated(request.validate) { return .failure(refusal) }
        let memory = config.profile.memory
        guard let size = try? ByteSize(parsing: request.size) else {
            return .failure(HotplugRefusal("--add: '\(request.size)' is not a size"))  // validate() said it is
        }
        guard let max = memory.max, memory.slots > 0 else {
            return .failure(HotplugRefusal("\(config.profile.name) has no memory hotplug: set memory.max and memory.slots in its profile"))
        }
        let plugged = config.hotplugged.memory
        guard plugged.count < memory.slots else {
            return .failure(HotplugRefusal("no free memory slot: the profile has \(memory.slots) (memory.slots)"))
        }
        let total = memory.size.bytes + plugged.reduce(0) { $0 + $1.size.bytes } + size.bytes
        guard total <= max.bytes else {
            return .failure(HotplugRefusal(
                "--add: \(size) would make \(ByteSize(bytes: total)) of RAM, more than memory.max (\(max))"))
        }
        let id = request.id ?? (0...).lazy.map { "dimm\($0)" }.first { !usedIDs(config).contains($0) }!
        if request.id != nil, let problem = checkNewID(id, config) { return .failure(HotplugRefusal(problem)) }
        return .success(PluggedMemory(id: id, size: size))
    }

    public static func cpuCount(_ count: Int, profile: Profile) -> HotplugRefusal? {
        guard (1...profile.cpu.max).contains(count) else {
            return HotplugRefusal("COUNT: \(count) is outside 1…\(profile.cpu.max) (cpu.max of \(profile.name))")
        }
        return nil
    }
}

/// A hotplug request that cannot be carried out, with the message for the user.
public struct HotplugRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
