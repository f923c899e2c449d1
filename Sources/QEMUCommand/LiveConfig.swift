import CorralModel
import Profiles

/// What a VM runs with: its profile plus everything that changed at runtime.
///
/// The supervisor stores this value in the VM's state directory. Building argv from it
/// reproduces the exact same machine (same UUID, same devices on the same PCI addresses),
/// which is what a restart and a live-migration destination both need.
public struct LiveConfig: Sendable, Equatable, Codable {
    public var profile: Profile
    /// SMBIOS system UUID; stable across restarts and migrations.
    public var uuid: String
    /// Devices plugged at runtime; re-created on restart and on a migration destination.
    public var hotplugged: HotplugState

    public init(profile: Profile, uuid: String? = nil, hotplugged: HotplugState = HotplugState()) {
        self.profile = profile
        self.uuid = uuid ?? QEMUArgv.stableUUID(for: profile.name)
        self.hotplugged = hotplugged
    }

    /// Every disk of the VM in order: the profile's, then the hotplugged ones.
    public var allDisks: [Disk] { profile.disks + hotplugged.disks.map(\.disk) }
}

/// Devices added after boot. Each disk and NIC records the hotplug port it sits on
/// (an id from `DeviceProps.hotplugPortIDs`), so the PCI layout survives a restart.
public struct HotplugState: Sendable, Equatable, Codable {
    public var disks: [PluggedDisk]
    public var nics: [PluggedNIC]
    /// vCPUs online; nil means `profile.cpu.count`. CPUs are plugged and unplugged from the
    /// top, so `-smp N` on restart recreates the same set.
    public var onlineCPUs: Int?
    /// DIMMs plugged at runtime, in plug order.
    public var memory: [PluggedMemory]
    /// Host devices plugged at runtime (`corral hostdev add`), each on a hotplug port.
    public var hostdevs: [PluggedHostDevice]

    public init(disks: [PluggedDisk] = [], nics: [PluggedNIC] = [], onlineCPUs: Int? = nil,
                memory: [PluggedMemory] = [], hostdevs: [PluggedHostDevice] = []) {
        self.disks = disks
        self.nics = nics
        self.onlineCPUs = onlineCPUs
        self.memory = memory
        self.hostdevs = hostdevs
    }

    /// live.json written before a kind of device could be plugged lacks its list: empty.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        disks = try c.decodeIfPresent([PluggedDisk].self, forKey: .disks) ?? []
        nics = try c.decodeIfPresent([PluggedNIC].self, forKey: .nics) ?? []
        onlineCPUs = try c.decodeIfPresent(Int.self, forKey: .onlineCPUs)
        memory = try c.decodeIfPresent([PluggedMemory].self, forKey: .memory) ?? []
        hostdevs = try c.decodeIfPresent([PluggedHostDevice].self, forKey: .hostdevs) ?? []
    }
}

/// A host device plugged at runtime: a `pci` device or a VF (never `allFunctions`, never a failover pair).
public struct PluggedHostDevice: Sendable, Equatable, Codable {
    public var device: HostDevice
    /// Hotplug port id (e.g. `hp2`) it sits on.
    public var port: String

    public init(device: HostDevice, port: String) {
        self.device = device
        self.port = port
    }
}

public struct PluggedDisk: Sendable, Equatable, Codable {
    public var disk: Disk
    /// Hotplug port id (e.g. `hp2`) the disk's PCI device sits on.
    public var port: String

    public init(disk: Disk, port: String) {
        self.disk = disk
        self.port = port
    }
}

public struct PluggedNIC: Sendable, Equatable, Codable {
    public var nic: NIC
    /// Hotplug port id (e.g. `hp2`) the NIC sits on.
    public var port: String

    public init(nic: NIC, port: String) {
        self.nic = nic
        self.port = port
    }
}

/// A `pc-dimm` plugged at runtime. `id` names it; the QOM ids are derived by
/// `DeviceProps.memoryBackend` / `DeviceProps.memoryDevice`.
public struct PluggedMemory: Sendable, Equatable, Codable {
    public var id: String
    public var size: ByteSize

    public init(id: String, size: ByteSize) {
        self.id = id
        self.size = size
    }
}

/// The accelerator QEMU is actually started with (`Accel.auto` resolved).
public enum ResolvedAccel: String, Sendable, Codable {
    case kvm, tcg

    /// `auto` becomes kvm when the host has a usable `/dev/kvm` (the caller probes), tcg otherwise.
    /// An explicit `kvm` stays kvm even without `/dev/kvm`: QEMU then fails with its own clear error.
    public init(resolving accel: Accel, kvmAvailable: Bool) {
        switch accel {
        case .kvm: self = .kvm
        case .tcg: self = .tcg
        case .auto: self = kvmAvailable ? .kvm : .tcg
        }
    }
}

/// Per-launch choices that are not part of the VM's identity.
public struct RuntimeOptions: Sendable, Equatable {
    public var accel: ResolvedAccel
    /// Path of the QMP Unix socket QEMU listens on.
    public var qmpSocket: String
    /// Serial console log file; nil (or `profile.serial == .none`) means no serial port.
    public var serialLog: String?
    public var pidFile: String?
    /// `-S`: do not start the vCPUs until `cont`.
    public var startPaused: Bool
    /// `-incoming VALUE`, e.g. `defer` on a migration destination.
    public var incoming: String?
    /// The host has /dev/vhost-net: taps corral makes use vhost unless a NIC says otherwise.
    public var vhostNet: Bool
    /// An unprivileged QEMU: the descriptors it is handed instead of paths (QMP, serial, disks, kernel, initrd).
    public var handOver: HandOverPlan?
    /// Path of the Unix socket QEMU listens on for the guest agent's channel (used when `profile.agent`).
    public var agentSocket: String
    /// Path of the Unix socket QEMU listens on for the serial console (one client at a time; the log file records
    /// everything either way).
    public var consoleSocket: String
    /// The host functions each profile host device was given, by device id (function 0 first; the VF corral chose
    /// for a `vf`), resolved by the daemon before QEMU starts.
    public var hostDevices: [String: [PCIAddress]] = [:]

    /// `agentSocket` defaults to `agent.sock` beside the QMP socket (the VM's folder).
    public init(accel: ResolvedAccel, qmpSocket: String, serialLog: String? = nil, pidFile: String? = nil,
                startPaused: Bool = false, incoming: String? = nil, vhostNet: Bool = false,
                agentSocket: String? = nil) {
        self.vhostNet = vhostNet
        self.agentSocket = agentSocket ?? Self.sibling(of: qmpSocket, named: "agent.sock")
        self.consoleSocket = Self.sibling(of: qmpSocket, named: "console.sock")
        self.accel = accel
        self.qmpSocket = qmpSocket
        self.serialLog = serialLog
        self.pidFile = pidFile
        self.startPaused = startPaused
        self.incoming = incoming
    }

    /// `name` in the folder of `path` (`/a/b/qmp.sock` → `/a/b/agent.sock`; a bare name → `name`).
    static func sibling(of path: String, named name: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[...slash]) + name
    }
}

extension LiveConfig {
    /// The configuration QEMU is started with when the profile has `cloudInit`: the seed image (`path`, built by the
    /// daemon) as one more read-only raw disk after the profile's, id `cidata`. Never stored: the seed is built again
    /// at each start, so every start (a restart, a migration destination) lays the machine out the same way.
    public func withSeed(_ path: String?) -> LiveConfig {
        guard let path, profile.cloudInit != nil else { return self }
        var config = self
        config.profile.disks.append(Disk(id: CloudInit.seedDiskID, file: path, format: .raw, bus: .virtioBlk,
                                         cache: .writeback, readonly: true))
        return config
    }
}
