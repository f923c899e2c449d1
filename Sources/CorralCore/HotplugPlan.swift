import CorralModel
import JSON
import Profiles
import QEMUCommand

/// Pure: the QMP sequences that plug and unplug devices, built from the same property
/// dictionaries as the command line (`DeviceProps`), so a hotplugged device and a
/// cold-plugged one are the same device.
public enum HotplugPlanner {
    // MARK: Disks

    /// `filename`: the fd set an unprivileged QEMU opens instead of the disk's path (`/dev/fdset/N`).
    /// `backingFilename`: the fd set of the base image of a disk with `backing`.
    public static func addDisk(_ disk: Disk, at placement: PCIPlacement, filename: String? = nil,
                               backingFilename: String? = nil) -> [QMPStep] {
        var steps: [QMPStep] = DeviceProps.diskNodes(disk, filename: filename, backingFilename: backingFilename).map { node in
            QMPStep("blockdev-add", node, undo: [blockdevDel(node["node-name"]?.stringValue ?? "")])
        }
        for device in DeviceProps.diskDevice(disk, bus: placement.bus, addr: placement.addr) {
            let id = device["id"]?.stringValue ?? ""
            steps.append(QMPStep("device_add", device, undo: [deviceDel(id)]))
        }
        return steps
    }

    public static func removeDisk(_ disk: Disk) -> [QMPStep] {
        let devices = DeviceProps.diskDevice(disk, bus: nil).compactMap { $0["id"]?.stringValue }
        // Unplug the disk before its controller (virtio-scsi), then release the block nodes top-down.
        let unplugs = devices.reversed().map(deviceDel)
        let nodes = DeviceProps.diskNodes(disk).reversed().compactMap { $0["node-name"]?.stringValue }
        return unplugs + nodes.map(blockdevDel)
    }

    // MARK: NICs

    /// `tap`: the tap corral made for it, its descriptors already handed to QEMU under `TapPlan.fdNames`.
    public static func addNIC(_ nic: NIC, vmName: String, at placement: PCIPlacement,
                              tap: TapPlan.Entry? = nil) -> [QMPStep] {
        var netdev = DeviceProps.netdev(nic)
        if let tap {
            let names = TapPlan.fdNames(tap)
            netdev = TapPlan.netdev(nic, taps: names.taps, vhosts: names.vhosts)
        }
        let device = DeviceProps.nicDevice(nic, vmName: vmName, bus: placement.bus, addr: placement.addr,
                                           queues: tap?.queues)
        return [
            QMPStep("netdev_add", netdev, undo: [netdevDel(DeviceProps.netdevID(nic))]),
            QMPStep("device_add", device, undo: [deviceDel(DeviceProps.nicDeviceID(nic))]),
        ]
    }

    public static func removeNIC(_ nic: NIC) -> [QMPStep] {
        [deviceDel(DeviceProps.nicDeviceID(nic)), netdevDel(DeviceProps.netdevID(nic))]
    }

    // MARK: Host devices

    /// `device_add` vfio-pci for `host` (the function the daemon bound) on the port at `placement`.
    public static func addHostDevice(_ device: HostDevice, host: PCIAddress, at placement: PCIPlacement,
                                     vmName: String) -> [QMPStep] {
        DeviceProps.hostDevices(device, hosts: [host.description], bus: placement.bus, pairedNIC: nil, vmName: vmName)
            .map { QMPStep("device_add", $0, undo: [deviceDel(DeviceProps.hostDeviceID(device))]) }
    }

    /// `device_del` and the wait for DEVICE_DELETED: only then is the device QEMU's no more, and the daemon gives it
    /// back to its driver.
    public static func removeHostDevice(_ device: HostDevice) -> [QMPStep] {
        [deviceDel(DeviceProps.hostDeviceID(device))]
    }

    // MARK: Memory

    public static func addMemory(_ memory: PluggedMemory) -> [QMPStep] {
        [
            QMPStep("object-add", DeviceProps.memoryBackend(memory),
                    undo: [QMPStep("object-del", ["id": .string(DeviceProps.memoryBackendID(memory))])]),
            QMPStep("device_add", DeviceProps.memoryDevice(memory),
                    undo: [deviceDel(DeviceProps.memoryDeviceID(memory))]),
        ]
    }

    public static func removeMemory(_ memory: PluggedMemory) -> [QMPStep] {
        [deviceDel(DeviceProps.memoryDeviceID(memory)),
         QMPStep("object-del", ["id": .string(DeviceProps.memoryBackendID(memory))], retryWhileInUse: true)]
    }

    // MARK: CPUs

    /// One slot of `query-hotpluggable-cpus`.
    public struct CPUSlot: Sendable, Equatable {
        public var type: String
        public var props: JSONObject
        /// Set when a vCPU occupies the slot.
        public var qomPath: String?

        public init(type: String, props: JSONObject, qomPath: String?) {
            self.type = type
            self.props = props
            self.qomPath = qomPath
        }

        /// (socket, die, core, thread) for ordering.
        var order: [Int64] {
            ["socket-id", "die-id", "core-id", "thread-id"].map { props[$0]?.intValue ?? 0 }
        }
    }

    public static func parseCPUSlots(_ reply: JSONValue) -> [CPUSlot] {
        (reply.arrayValue ?? []).compactMap { entry in
            guard let type = entry["type"]?.stringValue, let props = entry["props"]?.objectValue else { return nil }
            return CPUSlot(type: type, props: props, qomPath: entry["qom-path"]?.stringValue)
        }
    }

    public enum CPUPlan: Sendable, Equatable {
        case unchanged
        case add([QMPStep])
        case remove([QMPStep])
    }

    /// Steps that bring the vCPU count to `target`: fill free slots in topology order, or
    /// unplug the highest occupied ones (never the first, the boot processor).
    public static func setCPUs(target: Int, slots: [CPUSlot], vmName: String) -> CPUPlan {
        let sorted = slots.sorted { $0.order.lexicographicallyPrecedes($1.order) }
        let occupied = sorted.filter { $0.qomPath != nil }
        if target == occupied.count { return .unchanged }
        if target > occupied.count {
            let free = sorted.filter { $0.qomPath == nil }.prefix(target - occupied.count)
            return .add(free.map { slot in
                var device: JSONObject = ["driver": .string(slot.type), "id": .string(cpuID(slot))]
                for (key, value) in slot.props where key != "node-id" { device[key] = value }
                return QMPStep("device_add", device, undo: [deviceDel(cpuID(slot))])
            })
        }
        let victims = occupied.dropFirst().suffix(occupied.count - target).reversed()
        return .remove(victims.map { deviceDel($0.qomPath ?? cpuID($0)) })
    }

    /// QEMU refuses to unplug a vCPU until the guest's firmware tables have switched CPU hotplug from the legacy to
    /// the modern ACPI interface, which the guest's kernel does while it boots; until then `device_del` answers
    /// `acpi: device unplug request for not supported device type: …`. That is the guest's state, not a QEMU fault.
    public static func isUnplugBeforeGuestACPI(errorClass: String, desc: String) -> Bool {
        errorClass == "GenericError" && desc.hasPrefix("acpi: device unplug request for not supported device type")
    }

    /// A stable id for a hotplugged vCPU from its topology: `cpu-s0-c2-t0`.
    public static func cpuID(_ slot: CPUSlot) -> String {
        let p = slot.props
        return DeviceProps.cpuID(socket: p["socket-id"]?.intValue ?? 0, die: p["die-id"]?.intValue ?? 0,
                                 core: p["core-id"]?.intValue ?? 0, thread: p["thread-id"]?.intValue ?? 0)
    }

    // MARK: Building blocks

    static func deviceDel(_ id: String) -> QMPStep {
        QMPStep("device_del", ["id": .string(id)], wait: .deviceDeleted(id))
    }

    static func blockdevDel(_ node: String) -> QMPStep {
        QMPStep("blockdev-del", ["node-name": .string(node)], retryWhileInUse: true)
    }

    static func netdevDel(_ id: String) -> QMPStep {
        QMPStep("netdev_del", ["id": .string(id)])
    }
}
