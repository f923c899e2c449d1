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

    public init(
        name: String, machine: String = "q35", accel: Accel = .auto, cpu: CPU = CPU(), memory: Memory,
        boot: Boot = Boot(), disks: [Disk] = [], nics: [NIC] = [], hotplug: Hotplug = Hotplug(),
        serial: SerialMode = .log, restart: RestartPolicy = .no, qemu: QEMUSettings = QEMUSettings()
    ) {
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
    }
}

public enum Accel: String, Sendable, Codable, CaseIterable {
    case kvm, tcg, auto
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

    public init(model: String? = nil, count: Int = 1, max: Int? = nil,
                sockets: Int? = nil, cores: Int? = nil, threads: Int? = nil) {
        self.model = model
        self.count = count
        self.max = max ?? count
        self.sockets = sockets
        self.cores = cores
        self.threads = threads
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

    public init(size: ByteSize, max: ByteSize? = nil, slots: Int = 0, balloon: Balloon? = nil) {
        self.size = size
        self.max = max
        self.slots = slots
        self.balloon = balloon
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

    public init(id: String, file: String, format: DiskFormat = .qcow2, size: ByteSize? = nil,
                bus: DiskBus = .virtioBlk, cache: CacheMode = .none, readonly: Bool = false, discard: Bool = false) {
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

public enum DiskFormat: String, Sendable, Codable, CaseIterable {
    case qcow2, raw
}

public enum DiskBus: String, Sendable, Codable, CaseIterable {
    case virtioBlk = "virtio-blk"
    case virtioSCSI = "virtio-scsi"
    case nvme
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
    /// Host bridge for `mode: bridge`.
    public var bridge: String?
    /// Host tap device name for `mode: tap` (created beforehand by the operator).
    public var ifname: String?

    public init(id: String, mode: NICMode = .user, mac: String? = nil, model: NICModel = .virtioNet,
                bridge: String? = nil, ifname: String? = nil) {
        self.id = id
        self.mode = mode
        self.mac = mac
        self.model = model
        self.bridge = bridge
        self.ifname = ifname
    }
}

public enum NICMode: String, Sendable, Codable, CaseIterable {
    case user, tap, bridge
}

public enum NICModel: String, Sendable, Codable, CaseIterable {
    case virtioNet = "virtio-net"
    case e1000e
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
