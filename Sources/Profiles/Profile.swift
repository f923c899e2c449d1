import CorralModel

/// A validated, fully resolved VM profile: `extends` merged, defaults filled in,
/// relative paths made absolute against the profile's folder.
///
/// Values of this type come out of `ProfileLoader` (YAML → Profile) and are the
/// input of the pure argv builder in `QEMUCommand`. It is Codable so the
/// supervisor can store the resolved profile in a VM's state directory.
public struct Profile: Sendable, Equatable, Codable {
    public var name: String
    public var machine: String
    public var accel: Accel
    public var cpu: CPU
    public var memory: Memory
    public var boot: Boot
    public var disks: [Disk]
    public var nics: [NIC]
    public var hotplug: Hotplug
    public var serial: SerialMode
    public var restart: RestartPolicy
    public var qemu: QEMUSettings
    /// Host-side sharing: balloon shares, cgroup cpu weight and quota.
    public var overcommit: Overcommit
    /// A virtio-serial channel for qemu-guest-agent (`org.qemu.guest_agent.0`): the daemon asks the agent for the
    /// guest's addresses.
    public var agent: Bool
    /// High availability in a cluster: when the owning host is lost, another host starts the VM (its disks must be
    /// on storage every host reaches); the owner pauses it when it cannot renew its lease (docs/cluster.md).
    public var ha: Bool
    /// Host PCI devices and SR-IOV virtual functions given to the guest (docs/devices.md).
    public var hostdevs: [HostDevice]
    /// cloud-init NoCloud data: corral builds a seed volume labelled `cidata` and attaches it read-only
    /// (docs/provisioning.md).
    public var cloudInit: CloudInit?
    /// A video device and a VNC display the daemon serves (QEMU never listens itself); nil: no display at all.
    public var display: Display?

    public init(
        name: String, machine: String = "q35", accel: Accel = .auto, cpu: CPU = CPU(), memory: Memory,
        boot: Boot = Boot(), disks: [Disk] = [], nics: [NIC] = [], hotplug: Hotplug = Hotplug(),
        serial: SerialMode = .log, restart: RestartPolicy = .no, qemu: QEMUSettings = QEMUSettings(),
        overcommit: Overcommit = Overcommit(), agent: Bool = false, ha: Bool = false, hostdevs: [HostDevice] = [],
        cloudInit: CloudInit? = nil, display: Display? = nil
    ) {
        self.display = display
        self.hostdevs = hostdevs
        self.cloudInit = cloudInit
        self.name = name
        self.machine = machine
        self.accel = accel
        self.cpu = cpu
        self.memory = memory
        self.boot = boot
        self.disks = disks
        self.nics = nics
        self.hotplug = hotplug
        self.serial = serial
        self.restart = restart
        self.qemu = qemu
        self.overcommit = overcommit
        self.agent = agent
        self.ha = ha
    }
}

extension Profile {
    enum CodingKeys: String, CodingKey {
        case name, machine, accel, cpu, memory, boot, disks, nics, hotplug, serial, restart, qemu, overcommit, agent, ha,
             hostdevs, cloudInit, display
    }

    /// Keys added after the first release (`overcommit`, `agent`, `ha`, `hostdevs`) default when missing, so resolved profiles
    /// stored by an older corral still load.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name),
            machine: try c.decode(String.self, forKey: .machine),
            accel: try c.decode(Accel.self, forKey: .accel),
            cpu: try c.decode(CPU.self, forKey: .cpu),
            memory: try c.decode(Memory.self, forKey: .memory),
            boot: try c.decode(Boot.self, forKey: .boot),
            disks: try c.decode([Disk].self, forKey: .disks),
            nics: try c.decode([NIC].self, forKey: .nics),
            hotplug: try c.decode(Hotplug.self, forKey: .hotplug),
            serial: try c.decode(SerialMode.self, forKey: .serial),
            restart: try c.decode(RestartPolicy.self, forKey: .restart),
            qemu: try c.decode(QEMUSettings.self, forKey: .qemu),
            overcommit: try c.decodeIfPresent(Overcommit.self, forKey: .overcommit) ?? Overcommit(),
            agent: try c.decodeIfPresent(Bool.self, forKey: .agent) ?? false,
            ha: try c.decodeIfPresent(Bool.self, forKey: .ha) ?? false,
            hostdevs: try c.decodeIfPresent([HostDevice].self, forKey: .hostdevs) ?? [],
            cloudInit: try c.decodeIfPresent(CloudInit.self, forKey: .cloudInit),
            display: try c.decodeIfPresent(Display.self, forKey: .display))
    }
}

/// `display:` in a profile: the guest's video device, and whether it has a VNC display. QEMU gets `-vnc none` and
/// never listens; the daemon hands it one end of a socket pair per client (`add_client`) and takes screenshots with
/// `screendump`.
public struct Display: Sendable, Equatable, Codable {
    public var vga: VideoModel
    public var vnc: Bool

    public init(vga: VideoModel = .std, vnc: Bool = true) {
        self.vga = vga
        self.vnc = vnc
    }
}

/// How the VM shares the host with other VMs (`overcommit:` in a profile).
public struct Overcommit: Sendable, Equatable, Codable {
    /// Relative claim on memory when the automatic balloon shrinks guests under host memory pressure:
    /// a VM with fewer shares gives up more (see docs/profiles.md for the formula). At least 1.
    public var memoryShares: Int
    /// cgroup `cpu.weight` (v2; 1…10000, the kernel's default is 100). On cgroup v1 hosts it is written as
    /// `cpu.shares` = weight × 1024 / 100.
    public var cpuWeight: Int
    /// Hard CPU limit as a percentage of one host CPU (`150` = one and a half CPUs); nil means no limit.
    public var cpuQuotaPercent: Int?

    public static let defaultMemoryShares = 1000
    public static let defaultCPUWeight = 100

    public init(memoryShares: Int = Overcommit.defaultMemoryShares, cpuWeight: Int = Overcommit.defaultCPUWeight,
                cpuQuotaPercent: Int? = nil) {
        self.memoryShares = memoryShares
        self.cpuWeight = cpuWeight
        self.cpuQuotaPercent = cpuQuotaPercent
    }
}

public struct CPU: Sendable, Equatable, Codable {
    /// QEMU CPU model. nil means "host" under KVM and "max" under TCG (TCG cannot emulate "host").
    public var model: String?
    /// vCPUs online at boot.
    public var count: Int
    /// Upper bound for vCPU hotplug (maxcpus). Defaults to `count`.
    public var max: Int
    /// Topology; when given, sockets × cores × threads == max.
    public var sockets: Int?
    public var cores: Int?
    public var threads: Int?
    /// Host CPU for each vCPU, by vCPU index (`pinning[0]` is vCPU 0's host CPU); vCPUs past the end of
    /// the list are not pinned. Empty means no pinning.
    public var pinning: [Int]

    public init(model: String? = nil, count: Int = 1, max: Int? = nil,
                sockets: Int? = nil, cores: Int? = nil, threads: Int? = nil, pinning: [Int] = []) {
        self.model = model
        self.count = count
        self.max = max ?? count
        self.sockets = sockets
        self.cores = cores
        self.threads = threads
        self.pinning = pinning
    }

    enum CodingKeys: String, CodingKey {
        case model, count, max, sockets, cores, threads, pinning
    }

    /// `pinning` defaults to `[]` when missing (state files written before it existed).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(model: try c.decodeIfPresent(String.self, forKey: .model),
                  count: try c.decode(Int.self, forKey: .count),
                  max: try c.decode(Int.self, forKey: .max),
                  sockets: try c.decodeIfPresent(Int.self, forKey: .sockets),
                  cores: try c.decodeIfPresent(Int.self, forKey: .cores),
                  threads: try c.decodeIfPresent(Int.self, forKey: .threads),
                  pinning: try c.decodeIfPresent([Int].self, forKey: .pinning) ?? [])
    }
}

public struct Memory: Sendable, Equatable, Codable {
    /// Boot RAM.
    public var size: ByteSize
    /// Upper bound for memory hotplug (maxmem); nil disables memory hotplug.
    public var max: ByteSize?
    /// DIMM slots for memory hotplug (needs `max`).
    public var slots: Int
    /// virtio-balloon; nil means no balloon device.
    public var balloon: Balloon?
    /// KSM may merge identical guest pages (QEMU `-machine mem-merge`, madvise MADV_MERGEABLE).
    public var merge: Bool
    /// Boot RAM from hugetlbfs (`/dev/hugepages`); the host must have enough huge pages reserved.
    public var hugepages: Bool
    /// Lock guest memory in host RAM (`-overcommit mem-lock=on`): never swapped, never overcommitted.
    public var lock: Bool

    public init(size: ByteSize, max: ByteSize? = nil, slots: Int = 0, balloon: Balloon? = nil,
                merge: Bool = true, hugepages: Bool = false, lock: Bool = false) {
        self.size = size
        self.max = max
        self.slots = slots
        self.balloon = balloon
        self.merge = merge
        self.hugepages = hugepages
        self.lock = lock
    }

    enum CodingKeys: String, CodingKey {
        case size, max, slots, balloon, merge, hugepages, lock
    }

    /// `merge`, `hugepages` and `lock` take their defaults when missing (older state files).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(size: try c.decode(ByteSize.self, forKey: .size),
                  max: try c.decodeIfPresent(ByteSize.self, forKey: .max),
                  slots: try c.decode(Int.self, forKey: .slots),
                  balloon: try c.decodeIfPresent(Balloon.self, forKey: .balloon),
                  merge: try c.decodeIfPresent(Bool.self, forKey: .merge) ?? true,
                  hugepages: try c.decodeIfPresent(Bool.self, forKey: .hugepages) ?? false,
                  lock: try c.decodeIfPresent(Bool.self, forKey: .lock) ?? false)
    }
}

public struct Balloon: Sendable, Equatable, Codable {
    /// The automatic balloon policy never shrinks the guest below this. Defaults to half of `memory.size`.
    public var min: ByteSize?
    /// virtio-balloon free-page-reporting: the guest hands free pages back to the host.
    public var freePageReporting: Bool

    public init(min: ByteSize? = nil, freePageReporting: Bool = true) {
        self.min = min
        self.freePageReporting = freePageReporting
    }
}

public struct Boot: Sendable, Equatable, Codable {
    /// Absolute path of a kernel image (direct kernel boot); nil boots firmware.
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    public var firmware: Firmware

    public init(kernel: String? = nil, initrd: String? = nil, cmdline: String? = nil, firmware: Firmware = .bios) {
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.firmware = firmware
    }
}

public enum Firmware: String, Sendable, Codable, CaseIterable {
    case bios, uefi
}

public struct Disk: Sendable, Equatable, Codable {
    public var id: String
    /// Absolute path of the image.
    public var file: String
    public var format: DiskFormat
    /// Size to create the image with when it does not exist yet.
    public var size: ByteSize?
    public var bus: DiskBus
    public var cache: CacheMode
    public var readonly: Bool
    public var discard: Bool
    /// A base image this disk is a qcow2 overlay on (created on it when the file does not exist); QEMU opens the
    /// base read-only, so many VMs can share one cloud image.
    public var backing: String?
    /// The base image's format; nil until the daemon reads it from the image (`qemu-img info`).
    public var backingFormat: DiskFormat?
    /// Snapshots taken of this disk (never in a profile file: the daemon records them in live.json). With them,
    /// `file` is the active qcow2 overlay and `chain.frozen` the images below it.
    public var chain: DiskChain?

    public init(id: String, file: String, format: DiskFormat = .qcow2, size: ByteSize? = nil,
                bus: DiskBus = .virtioBlk, cache: CacheMode = .none, readonly: Bool = false, discard: Bool = false,
                backing: String? = nil, backingFormat: DiskFormat? = nil, chain: DiskChain? = nil) {
        self.chain = chain
        self.backing = backing
        self.backingFormat = backingFormat
        self.id = id
        self.file = file
        self.format = format
        self.size = size
        self.bus = bus
        self.cache = cache
        self.readonly = readonly
        self.discard = discard
    }
}

extension Disk {
    /// Every image of the disk that is the VM's own: its snapshots' frozen images (bottom to top), then the active
    /// one. A shared base image (`backing`) is not in it.
    public var imageFiles: [String] { (chain?.frozen.map(\.file) ?? []) + [file] }
}

/// The external snapshots of a disk: the images frozen by each snapshot, bottom (the disk's own image) to top, and
/// the node tag of the active overlay (`Disk.file`). Each `corral snapshot create` freezes the active image and puts
/// a new empty qcow2 overlay on it; the snapshot's content is its frozen image and everything below.
public struct DiskChain: Sendable, Equatable, Codable {
    public var frozen: [DiskLayer]
    /// Suffix of the active overlay's block node names (`fmt-ID.TAG`), fixed when QEMU opened it.
    public var activeTag: String

    public init(frozen: [DiskLayer], activeTag: String) {
        self.frozen = frozen
        self.activeTag = activeTag
    }

    /// `activeTag` as a layer's tag is kept: nil when the active image has untagged node names (`""`).
    public var activeNodeTag: String? { activeTag.isEmpty ? nil : activeTag }
}

/// One image frozen by a snapshot.
public struct DiskLayer: Sendable, Equatable, Codable {
    public var file: String
    public var format: DiskFormat
    /// Its block node names' suffix; nil for the disk's own image (`fmt-ID`).
    public var tag: String?
    /// The snapshot that froze it.
    public var snapshot: String
    /// When, as seconds since the epoch.
    public var created: Int64

    public init(file: String, format: DiskFormat, tag: String?, snapshot: String, created: Int64) {
        self.file = file
        self.format = format
        self.tag = tag
        self.snapshot = snapshot
        self.created = created
    }
}

/// QEMU's cache modes, mapped to `cache.direct` / `cache.no-flush` by the argv builder.
public enum CacheMode: String, Sendable, Codable, CaseIterable {
    case none, writeback, writethrough, directsync, unsafe
}

public struct NIC: Sendable, Equatable, Codable {
    public var id: String
    public var mode: NICMode
    /// "52:54:00:xx:xx:xx" style, lower case; nil means a stable MAC derived from VM name + NIC id.
    public var mac: String?
    public var model: NICModel
    /// Host bridge for `mode: bridge`: corral makes a tap, attaches it there and hands QEMU its descriptor.
    public var bridge: String?
    /// Host tap device for `mode: tap`, created beforehand by the operator; without it corral makes the tap
    /// (attached to nothing) and hands QEMU its descriptor.
    public var ifname: String?
    /// The managed network of a `mode: network` NIC (`corral network create`).
    public var network: String?
    /// The host interface a `mode: macvtap` NIC sits on.
    public var parent: String?
    /// The macvtap's mode; nil: bridge.
    public var macvtapMode: MacvtapMode?
    /// virtio-net queue pairs on a tap corral makes (1…16); nil: the boot vCPU count, at most 8.
    public var queues: Int?
    /// vhost-net for a tap corral makes; nil: when the host has /dev/vhost-net.
    public var vhost: Bool?

    public init(id: String, mode: NICMode = .user, mac: String? = nil, model: NICModel = .virtioNet,
                bridge: String? = nil, ifname: String? = nil, network: String? = nil, parent: String? = nil,
                macvtapMode: MacvtapMode? = nil, queues: Int? = nil, vhost: Bool? = nil) {
        self.network = network
        self.parent = parent
        self.macvtapMode = macvtapMode
        self.id = id
        self.mode = mode
        self.mac = mac
        self.model = model
        self.bridge = bridge
        self.ifname = ifname
        self.queues = queues
        self.vhost = vhost
    }
}

public struct Hotplug: Sendable, Equatable, Codable {
    /// Free pcie-root-ports reserved for disks and NICs plugged in later.
    public var slots: Int

    public init(slots: Int = 0) { self.slots = slots }
}

public enum SerialMode: String, Sendable, Codable, CaseIterable {
    case log, none
}

public enum RestartPolicy: String, Sendable, Codable, CaseIterable {
    case no
    case onFailure = "on-failure"
    case always
}

public struct QEMUSettings: Sendable, Equatable, Codable {
    /// Binary name (looked up in PATH) or absolute path.
    public var binary: String

    public init(binary: String = "qemu-system-x86_64") { self.binary = binary }
}

extension Disk {
    /// A volume corral keeps for the VM (the profile gave a size and no file): its file is in the VM's folder once
    /// `Profile.resolvingManagedDisks` placed it.
    public var isManaged: Bool { file.isEmpty }

    /// Where a managed volume lives: `FOLDER/disks/ID.qcow2` (or `.raw`).
    public static func managedPath(folder: String, id: String, format: DiskFormat) -> String {
        folder + "/disks/" + id + (format == .raw ? ".raw" : ".qcow2")
    }
}

extension Profile {
    /// Every disk without a file gets its managed path in the VM's folder (`folder`); the others are unchanged.
    public func resolvingManagedDisks(in folder: String) -> Profile {
        var profile = self
        for index in profile.disks.indices where profile.disks[index].isManaged {
            let disk = profile.disks[index]
            profile.disks[index].file = Disk.managedPath(folder: folder, id: disk.id, format: disk.format)
        }
        return profile
    }
}
