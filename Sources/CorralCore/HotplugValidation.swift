import CorralModel
import Profiles
import QEMUCommand

/// Pure checks for hotplug requests. Each failure is one message naming the field,
/// the bad value and what is allowed; nothing is changed when a check fails.
public enum HotplugValidation {
    /// Device ids as profiles allow them: `[a-zA-Z][a-zA-Z0-9_-]{0,31}`.
    public static func isValidID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, id.unicodeScalars.count <= 32,
            ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        else { return false }
        return id.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        }
    }

    /// Every disk, NIC and DIMM id in use (profile and hotplugged).
    public static func usedIDs(_ config: LiveConfig) -> Set<String> {
        let profile = config.profile
        return Set(profile.disks.map(\.id) + profile.nics.map(\.id)
            + config.hotplugged.disks.map(\.disk.id) + config.hotplugged.nics.map(\.nic.id)
            + config.hotplugged.memory.map(\.id))
    }

    static func checkNewID(_ id: String, _ config: LiveConfig) -> String? {
        guard isValidID(id) else { return "--id: '\(id)' must match [a-zA-Z][a-zA-Z0-9_-]{0,31}" }
        guard !usedIDs(config).contains(id) else { return "--id: '\(id)' is already used by a device of \(config.profile.name)" }
        return nil
    }

    /// The first hotplug port no hotplugged disk or NIC sits on.
    public static func freePort(_ config: LiveConfig, reserved: Set<String> = []) -> Result<String, HotplugRefusal> {
        let ports = PCILayout(profile: config.profile).ports.map(\.id)
        let used = Set(config.hotplugged.disks.map(\.port) + config.hotplugged.nics.map(\.port)).union(reserved)
        guard let free = ports.first(where: { !used.contains($0) }) else {
            return .failure(HotplugRefusal("no free hotplug slot: the profile reserves \(ports.count) (hotplug.slots)"))
        }
        return .success(free)
    }

    public static func disk(_ request: DiskAddRequest, config: LiveConfig, fileExists: Bool) -> Result<Disk, HotplugRefusal> {
        if let problem = checkNewID(request.id, config) { return .failure(HotplugRefusal(problem)) }
        guard request.file.hasPrefix("/") else {
            return .failure(HotplugRefusal("--file: '\(request.file)' must be an absolute path"))
        }
        var size: ByteSize?
        if let text = request.size {
            do { size = try ByteSize(parsing: text) } catch {
                return .failure(HotplugRefusal("--size: \(error.description)"))
            }
            if fileExists {
                return .failure(HotplugRefusal("--file: \(request.file) already exists; drop --size to attach it as it is"))
            }
            if request.readonly {
                return .failure(HotplugRefusal("--readonly with --size would create an empty read-only disk"))
            }
        } else if !fileExists {
            return .failure(HotplugRefusal("--file: \(request.file) does not exist; give --size to create it"))
        }
        let inUse = config.profile.disks.map(\.file) + config.hotplugged.disks.map(\.disk.file)
        if inUse.contains(request.file) {
            return .failure(HotplugRefusal("--file: \(request.file) is already a disk of \(config.profile.name)"))
        }
        let format = request.format
            ?? ((request.file.hasSuffix(".raw") || request.file.hasSuffix(".img")) ? .raw : .qcow2)
        return .success(Disk(id: request.id, file: request.file, format: format, size: size,
                             bus: request.bus ?? .virtioBlk, readonly: request.readonly))
    }

    public static func nic(_ request: NICAddRequest, config: LiveConfig) -> Result<NIC, HotplugRefusal> {
        if let problem = checkNewID(request.id, config) { return .failure(HotplugRefusal(problem)) }
        let mode = request.mode ?? .user
        if mode == .bridge, request.bridge == nil { return .failure(HotplugRefusal("--bridge is required with --mode bridge")) }
        if mode == .tap, request.ifname == nil { return .failure(HotplugRefusal("--ifname is required with --mode tap")) }
        var mac: String?
        if let given = request.mac {
            guard let normalized = normalizedMAC(given) else {
                return .failure(HotplugRefusal("--mac: '\(given)' is not a MAC address like 52:54:00:12:34:56"))
            }
            guard let first = UInt8(normalized.prefix(2), radix: 16), first & 1 == 0 else {
                return .failure(HotplugRefusal("--mac: '\(given)' is a multicast address; the first octet must be even"))
            }
            mac = normalized
        }
        let allMACs = (config.profile.nics + config.hotplugged.nics.map(\.nic)).map {
            $0.mac ?? DeviceProps.stableMAC(vmName: config.profile.name, nicID: $0.id)
        }
        let chosen = mac ?? DeviceProps.stableMAC(vmName: config.profile.name, nicID: request.id)
        if allMACs.contains(chosen) {
            return .failure(HotplugRefusal("--mac: \(chosen) is already used by another NIC of \(config.profile.name)"))
        }
        return .success(NIC(id: request.id, mode: mode, mac: chosen, model: request.model ?? .virtioNet,
                            bridge: request.bridge, ifname: request.ifname))
    }

    /// Linux onlines hotplugged memory in 128 MiB blocks on x86-64.
    public static let memoryBlock = ByteSize.mib(128)

    public static func memory(_ request: MemoryAddRequest, config: LiveConfig) -> Result<PluggedMemory, HotplugRefusal> {
        let memory = config.profile.memory
        let size: ByteSize
        do { size = try ByteSize(parsing: request.size) } catch {
            return .failure(HotplugRefusal("--add: \(error.description)"))
        }
        guard let max = memory.max, memory.slots > 0 else {
            return .failure(HotplugRefusal("\(config.profile.name) has no memory hotplug: set memory.max and memory.slots in its profile"))
        }
        guard size.bytes > 0, size.bytes % memoryBlock.bytes == 0 else {
            return .failure(HotplugRefusal("--add: \(size) is not a multiple of \(memoryBlock) (the guest's memory block size)"))
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

    static func normalizedMAC(_ text: String) -> String? {
        let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else { return nil }
        return parts.joined(separator: ":")
    }
}

/// A hotplug request that cannot be carried out, with the message for the user.
public struct HotplugRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
