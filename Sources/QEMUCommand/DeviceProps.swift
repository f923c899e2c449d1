import CorralModel
import JSON
import Profiles

/// The one builder of QEMU object properties. The argv builder prints these dictionaries as
/// `-blockdev '{…}'`, `-netdev '{…}'`, `-device '{…}'`, `-object '{…}'`; hotplug sends the very
/// same dictionaries as the arguments of `blockdev-add`, `netdev_add`, `device_add`, `object-add`.
///
/// Ids are derived from profile ids with a prefix per kind, so a disk and a NIC may share an id
/// and no profile id can collide with corral's own (`qmp`, `serial0`, `balloon0`, `hp0`…):
///
/// | what | id |
/// |---|---|
/// | blockdev file node / format node | `file-ID` / `fmt-ID` (shortened with a hash past 31 bytes) |
/// | disk device | `disk-ID` (virtio-scsi: controller `scsi-ID`, bus `scsi-ID.0`) |
/// | netdev / NIC device | `net-ID` / `nic-ID` |
/// | memory backend / DIMM | `mem-ID` / `dimm-ID` |
public enum DeviceProps {
    // MARK: Ids

    /// The active image's nodes: `file-ID`/`fmt-ID`, or `file-ID.TAG`/`fmt-ID.TAG` once a snapshot put an overlay on
    /// the disk (the tag is fixed when the overlay's nodes are made and recorded in `Disk.chain`).
    public static func fileNodeName(_ disk: Disk) -> String { nodeName("file-", tagged(disk.id, disk.chain?.activeNodeTag)) }
    public static func formatNodeName(_ disk: Disk) -> String { nodeName("fmt-", tagged(disk.id, disk.chain?.activeNodeTag)) }
    /// A frozen image's nodes.
    public static func fileNodeName(_ disk: Disk, layer: DiskLayer) -> String { nodeName("file-", tagged(disk.id, layer.tag)) }
    public static func formatNodeName(_ disk: Disk, layer: DiskLayer) -> String {
        nodeName("fmt-", tagged(disk.id, layer.tag))
    }

    /// The opaque text of the fd set that holds one image of a disk (`disk-ID`, `disk-ID.TAG`): how the daemon finds
    /// the set again to drop it.
    public static func fdSetOpaque(_ disk: Disk, tag: String?) -> String { "disk-" + tagged(disk.id, tag) }

    static func tagged(_ id: String, _ tag: String?) -> String {
        guard let tag, !tag.isEmpty else { return id }
        return id + "." + tag
    }
    public static func diskDeviceID(_ disk: Disk) -> String { "disk-" + disk.id }
    /// The per-disk virtio-scsi controller (only for `bus: virtio-scsi`).
    public static func scsiControllerID(_ disk: Disk) -> String { "scsi-" + disk.id }
    public static func netdevID(_ nic: NIC) -> String { "net-" + nic.id }
    public static func nicDeviceID(_ nic: NIC) -> String { "nic-" + nic.id }
    public static func memoryBackendID(_ memory: PluggedMemory) -> String { "mem-" + memory.id }
    public static func memoryDeviceID(_ memory: PluggedMemory) -> String { "dimm-" + memory.id }
    public static let balloonID = "balloon0"
    /// The guest agent's chardev, its virtio-serial controller and its port.
    public static let agentChardevID = "agent0"
    public static let agentSerialID = "agent-serial0"
    public static let agentPortID = "agent-port0"
    /// The port name qemu-ga looks for (`/dev/virtio-ports/org.qemu.guest_agent.0` in the guest).
    public static let agentPortName = "org.qemu.guest_agent.0"

    /// QEMU's limit on block node names (31 bytes; device and object ids have none).
    public static let maxNodeNameLength = 31

    /// `prefix + id`, or when that is too long for a node name, a cut of the id plus 8 hex digits of
    /// its SHA-1, so long ids still get distinct, stable node names.
    static func nodeName(_ prefix: String, _ id: String) -> String {
        let full = prefix + id
        guard full.utf8.count > maxNodeNameLength else { return full }
        let hash = SHA1.hash(Array(id.utf8)).prefix(4).map(StableIDs.hexByte).joined()
        let keep = maxNodeNameLength - prefix.utf8.count - 1 - hash.count
        return prefix + String(decoding: id.utf8.prefix(keep), as: UTF8.self) + "-" + hash
    }

    /// Hotplug port ids in order: `hp0`, `hp1`, …
    /// The id of a hot-pluggable vCPU from its topology: `cpu-s0-c2-t0` (`-dD` when the die is not 0).
    public static func cpuID(socket: Int64, die: Int64 = 0, core: Int64, thread: Int64) -> String {
        "cpu-s\(socket)" + (die != 0 ? "-d\(die)" : "") + "-c\(core)-t\(thread)"
    }

    /// vCPU number `index` (0-based, in QEMU's topology order) as a `-device`: QEMU's x86 CPU type for
    /// `model` and the socket/core/thread ids. Without a topology in the profile QEMU 7.2's q35 puts all
    /// vCPUs as cores of one socket.
    public static func cpuDevice(index: Int, cpu: CPU, model: String) -> JSONObject {
        let threads = cpu.threads ?? 1
        let cores = cpu.cores ?? (cpu.sockets == nil && cpu.threads == nil ? cpu.max : 1)
        let thread = Int64(index % threads)
        let core = Int64((index / threads) % cores)
        let socket = Int64(index / (threads * cores))
        return [
            "driver": .string(model + "-x86_64-cpu"),
            "id": .string(cpuID(socket: socket, core: core, thread: thread)),
            "socket-id": .int(socket), "core-id": .int(core), "thread-id": .int(thread),
        ]
    }

    public static func hotplugPortIDs(count: Int) -> [String] {
        (0..<max(0, count)).map { "hp\($0)" }
    }

    public static func stableMAC(vmName: String, nicID: String) -> String {
        StableIDs.mac(vmName: vmName, nicID: nicID)
    }

    // MARK: Disks

    /// How a cache mode maps onto QEMU's knobs (see docs/argv.md).
    public struct CacheSettings: Sendable, Equatable {
        /// `cache.direct` on both block nodes: O_DIRECT, bypass the host page cache.
        public var direct: Bool
        /// `cache.no-flush` on both block nodes: ignore guest flushes.
        public var noFlush: Bool
        /// The device's `write-cache`: false makes the guest see a write-through disk (QEMU flushes after every write).
        public var writeCache: Bool

        public init(_ mode: CacheMode) {
            switch mode {
            case .none: (direct, noFlush, writeCache) = (true, false, true)
            case .writeback: (direct, noFlush, writeCache) = (false, false, true)
            case .writethrough: (direct, noFlush, writeCache) = (false, false, false)
            case .directsync: (direct, noFlush, writeCache) = (true, false, false)
            case .unsafe: (direct, noFlush, writeCache) = (false, true, true)
            }
        }
    }

    /// The blockdev graph of a disk, in creation order: the `file` protocol node, then the format node on top.
    /// `filename` replaces the disk's path (`/dev/fdset/N` for a disk handed to an unprivileged QEMU).
    ///
    /// A disk with `backing` gets its base's two nodes first (read-only; `backingFilename` replaces the base's path)
    /// and the format node above names the base's format node as `backing`: QEMU never opens the base by the path an
    /// overlay's header holds (an unprivileged QEMU could not), and never writes it.
    ///
    /// A disk with snapshots (`chain`) gets each frozen image's two nodes next, bottom to top, each the backing of the
    /// next (`layerFilenames` replace their paths). They are opened read-write, so removing a snapshot can commit an
    /// overlay into the image below it while the guest runs; nothing writes them otherwise.
    public static func diskNodes(_ disk: Disk, filename: String? = nil, backingFilename: String? = nil,
                                 layerFilenames: [String]? = nil) -> [JSONObject] {
        let cache = CacheSettings(disk.cache)
        let cacheObject: JSONValue = ["direct": .bool(cache.direct), "no-flush": .bool(cache.noFlush)]
        let discard: JSONValue = disk.discard ? "unmap" : "ignore"
        var nodes: [JSONObject] = []
        var below: String?
        if let backing = disk.backing {
            let node = backingDisk(disk)
            nodes = [
                ["driver": "file", "node-name": .string(fileNodeName(node)),
                 "filename": .string(backingFilename ?? backing), "aio": "threads", "cache": cacheObject,
                 "read-only": true],
                ["driver": .string((disk.backingFormat ?? .qcow2).rawValue), "node-name": .string(formatNodeName(node)),
                 "file": .string(fileNodeName(node)), "cache": cacheObject, "read-only": true],
            ]
            below = formatNodeName(node)
        }
        func pair(file path: String, format: DiskFormat, fileNode: String, formatNode: String,
                  readonly: Bool) -> [JSONObject] {
            let file: JSONObject = [
                "driver": "file", "node-name": .string(fileNode), "filename": .string(path), "aio": "threads",
                "cache": cacheObject, "discard": discard, "read-only": .bool(readonly),
            ]
            var top: JSONObject = [
                "driver": .string(format.rawValue), "node-name": .string(formatNode), "file": .string(fileNode),
                "cache": cacheObject, "discard": discard, "read-only": .bool(readonly),
            ]
            if let below { top["backing"] = .string(below) }
            return [file, top]
        }
        for (index, layer) in (disk.chain?.frozen ?? []).enumerated() {
            let path = layerFilenames.flatMap { index < $0.count ? $0[index] : nil } ?? layer.file
            nodes += pair(file: path, format: layer.format, fileNode: fileNodeName(disk, layer: layer),
                          formatNode: formatNodeName(disk, layer: layer), readonly: false)
            below = formatNodeName(disk, layer: layer)
        }
        return nodes + pair(file: filename ?? disk.file, format: disk.format, fileNode: fileNodeName(disk),
                            formatNode: formatNodeName(disk), readonly: disk.readonly)
    }

    /// The base image of `disk` as a disk of its own, for its node names (`file-ID-base`, `fmt-ID-base`, shortened
    /// like any past 31 bytes).
    static func backingDisk(_ disk: Disk) -> Disk {
        Disk(id: disk.id + "-base", file: disk.backing ?? "", format: disk.backingFormat ?? .qcow2, readonly: true)
    }

    /// The device(s) that expose a disk to the guest, in creation order. `bus`/`addr` place the PCI
    /// device (for virtio-scsi: the disk's own `virtio-scsi-pci` controller, with the `scsi-hd` on
    /// `scsi-ID.0`), so every disk is independently hotpluggable. `bootIndex` sets `bootindex`.
    public static func diskDevice(_ disk: Disk, bus: String?, addr: String? = nil,
                                  bootIndex: Int? = nil) -> [JSONObject] {
        let cache = CacheSettings(disk.cache)
        var device: JSONObject
        var result: [JSONObject] = []
        switch disk.bus {
        case .virtioBlk:
            device = ["driver": "virtio-blk-pci", "id": .string(diskDeviceID(disk))]
            place(&device, bus: bus, addr: addr)
        case .nvme:
            device = ["driver": "nvme", "id": .string(diskDeviceID(disk))]
            place(&device, bus: bus, addr: addr)
        case .virtioSCSI:
            var controller: JSONObject = ["driver": "virtio-scsi-pci", "id": .string(scsiControllerID(disk))]
            place(&controller, bus: bus, addr: addr)
            result.append(controller)
            device = [
                "driver": "scsi-hd",
                "id": .string(diskDeviceID(disk)),
                "bus": .string(scsiControllerID(disk) + ".0"),
            ]
        }
        device["drive"] = .string(formatNodeName(disk))
        device["serial"] = .string(disk.id)
        device["write-cache"] = cache.writeCache ? "on" : "off"
        if let bootIndex { device["bootindex"] = .int(Int64(bootIndex)) }
        result.append(device)
        return result
    }

    // MARK: Display

    public static let videoID = "video0"

    /// The guest's video device on the root bus; nil for `none`.
    public static func videoDevice(_ model: VideoModel, bus: String, addr: String?) -> JSONObject? {
        let driver: String
        switch model {
        case .std: driver = "VGA"
        case .virtio: driver = "virtio-vga"
        case .bochs: driver = "bochs-display"
        case .none: return nil
        }
        var device: JSONObject = ["driver": .string(driver), "id": .string(videoID)]
        place(&device, bus: bus, addr: addr)
        return device
    }

    // MARK: NICs

    /// The host side of a NIC (`netdev_add` / `-netdev`).
    public static func netdev(_ nic: NIC) -> JSONObject {
        var props: JSONObject = ["type": .string(nic.mode.rawValue), "id": .string(netdevID(nic))]
        switch nic.mode {
        case .user:
            break
        case .tap, .bridge, .macvtap, .network:
            // An operator's tap by name (QEMU must not run ifup/ifdown scripts). Taps corral makes (mode bridge,
            // tap without ifname) are passed as descriptors instead: `TapPlan.netdev`.
            props["type"] = "tap"
            if let ifname = nic.ifname { props["ifname"] = .string(ifname) }
            props["script"] = "no"
            props["downscript"] = "no"
        }
        return props
    }

    /// The guest side of a NIC: `virtio-net-pci` or `e1000e`, with the profile's MAC or a stable one.
    /// `queues`: the tap's queue pairs (`TapPlan`), > 1 turns on virtio-net multiqueue.
    /// `standby`: the NIC stands by for a host device (virtio-net failover).
    public static func nicDevice(_ nic: NIC, vmName: String, bus: String?, addr: String? = nil,
                                 queues: Int? = nil, standby: Bool = false) -> JSONObject {
        var device: JSONObject = [
            "driver": .string(nic.model == .virtioNet ? "virtio-net-pci" : "e1000e"),
            "id": .string(nicDeviceID(nic)),
        ]
        place(&device, bus: bus, addr: addr)
        device["netdev"] = .string(netdevID(nic))
        device["mac"] = .string(nic.mac ?? stableMAC(vmName: vmName, nicID: nic.id))
        if let queues, queues > 1, nic.model == .virtioNet {
            // Multiqueue: one MSI-X vector per queue each way, one for config, one for control.
            device["mq"] = true
            device["vectors"] = .int(Int64(2 * queues + 2))
        }
        if standby, nic.model == .virtioNet { device["failover"] = true }
        return device
    }

    // MARK: Memory, balloon, ports

    /// Where hugetlbfs is mounted (systemd's `dev-hugepages.mount`).
    public static let hugepagesPath = "/dev/hugepages"
    /// Id of the boot RAM backend when the profile asks for one (`memory.hugepages`); the machine's
    /// `memory-backend` property names it.
    public static let bootRAMBackendID = "ram0"

    /// The backend for a DIMM (`object-add` / `-object`): `memory-backend-ram`, or with `hugepages` a
    /// `memory-backend-file` on hugetlbfs like the boot RAM's. Hotplug must pass the profile's
    /// `memory.hugepages` so a plugged DIMM matches what a restart would build.
    public static func memoryBackend(_ memory: PluggedMemory, hugepages: Bool = false) -> JSONObject {
        let id = memoryBackendID(memory)
        if hugepages { return hugepageBackend(id: id, size: memory.size) }
        return ["qom-type": "memory-backend-ram", "id": .string(id), "size": .int(Int64(memory.size.bytes))]
    }

    /// The boot RAM backend, or nil when QEMU's default RAM is right (no `memory.hugepages`).
    public static func bootRAMBackend(_ memory: Memory) -> JSONObject? {
        guard memory.hugepages else { return nil }
        return hugepageBackend(id: bootRAMBackendID, size: memory.size)
    }

    /// Private (`share: false`) hugetlbfs memory, preallocated so that a host short of huge pages fails at
    /// start-up (or at `object-add`) with QEMU's error instead of killing a running guest with SIGBUS later.
    static func hugepageBackend(id: String, size: ByteSize) -> JSONObject {
        ["qom-type": "memory-backend-file", "id": .string(id), "size": .int(Int64(size.bytes)),
         "mem-path": .string(hugepagesPath), "share": false, "prealloc": true]
    }

    /// The `pc-dimm` that puts a backend into the guest.
    public static func memoryDevice(_ memory: PluggedMemory) -> JSONObject {
        ["driver": "pc-dimm", "id": .string(memoryDeviceID(memory)), "memdev": .string(memoryBackendID(memory))]
    }

    public static func balloonDevice(_ balloon: Balloon, bus: String?, addr: String? = nil) -> JSONObject {
        var device: JSONObject = ["driver": "virtio-balloon-pci", "id": .string(balloonID)]
        place(&device, bus: bus, addr: addr)
        device["free-page-reporting"] = .bool(balloon.freePageReporting)
        return device
    }

    /// The guest agent's channel: a `virtio-serial-pci` controller and, on its bus, the `virtserialport` that carries
    /// chardev `agent0` under the name qemu-ga opens.
    public static func agentDevices(bus: String?, addr: String? = nil) -> [JSONObject] {
        var controller: JSONObject = ["driver": "virtio-serial-pci", "id": .string(agentSerialID)]
        place(&controller, bus: bus, addr: addr)
        let port: JSONObject = [
            "driver": "virtserialport", "id": .string(agentPortID), "bus": .string(agentSerialID + ".0"),
            "chardev": .string(agentChardevID), "name": .string(agentPortName),
        ]
        return [controller, port]
    }

    /// A q35 hotplug port.
    public static func rootPort(_ port: HotplugPort, bus: String) -> JSONObject {
        var device: JSONObject = ["driver": "pcie-root-port", "id": .string(port.id)]
        place(&device, bus: bus, addr: port.addr)
        if port.multifunction { device["multifunction"] = true }
        device["chassis"] = .int(Int64(port.chassis))
        device["slot"] = .int(Int64(port.slot))
        device["port"] = .int(Int64(port.slot))
        return device
    }

    static func place(_ device: inout JSONObject, bus: String?, addr: String?) {
        if let bus { device["bus"] = .string(bus) }
        if let addr { device["addr"] = .string(addr) }
    }
}
