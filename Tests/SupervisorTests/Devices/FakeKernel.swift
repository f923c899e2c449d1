import CorralModel
import Synchronization
@testable import HostDevices
@testable import Supervisor
#if canImport(Glibc)
import Glibc
#endif

/// An in-memory `/sys` and `/dev/vfio` that reacts to writes the way Linux does, for the parts device assignment
/// touches: `driver_override`, a driver's `unbind` and `bind`, `/sys/bus/pci/drivers_probe` (binding the override
/// driver, or the device's own driver when there is no override; vfio-pci makes `/dev/vfio/GROUP`), `sriov_numvfs`
/// (VFs appear and go; a non-zero count only changes through 0, else EBUSY) and `sriov_drivers_autoprobe`.
/// Symlinks are stored with relative targets like sysfs's, and are not followed: paths must be the real ones.
final class FakeKernel: SysfsTree, Sendable {
    struct Tree: Equatable {
        var files: [String: String] = [:]
        var links: [String: String] = [:]
        var dirs: Set<String> = ["/"]
    }

    /// What the fake knows about a device beyond its files.
    struct Model {
        /// The driver that takes the device when nothing overrides it.
        var nativeDriver: String?
        /// Its network interface while `nativeDriver` has it.
        var netdev: String?
        var group: Int?
        /// For a PF: what its VFs look like.
        var vf: VFTemplate?
    }

    struct VFTemplate {
        var deviceID: UInt16
        var driver: String
        var firstGroup: Int
        var netdevPrefix: String
    }

    struct State {
        var tree = Tree()
        var models: [String: Model] = [:]
        var writes: [String] = []
        var createsGroupNodes = true
        /// A failure to inject: a write to this path fails with this errno.
        var failingWrite: (path: String, errno: Int32)?
    }

    let state = Mutex(State())

    static let devices = "/sys/bus/pci/devices"
    static let drivers = "/sys/bus/pci/drivers"

    /// An empty host: vfio-pci loaded; with `iommu`, `/sys/class/iommu/dmar0` and `/sys/kernel/iommu_groups`.
    init(iommu: Bool = true) {
        state.withLock { s in
            s.tree.mkdir(Self.devices)
            s.tree.put("/sys/bus/pci/drivers_probe", "")
            s.tree.mkdir("/sys/class/iommu")
            s.tree.mkdir("/sys/class/net")
            s.tree.mkdir("/dev")
            if iommu {
                s.tree.mkdir("/sys/class/iommu/dmar0")
                s.tree.mkdir("/sys/kernel/iommu_groups")
                s.tree.put("/dev/vfio/vfio", "")
            }
            s.tree.loadDriver("vfio-pci")
        }
    }

    /// Whether binding to vfio-pci makes `/dev/vfio/GROUP` (false: the node never appears).
    var createsGroupNodes: Bool {
        get { state.withLock { $0.createsGroupNodes } }
        set { state.withLock { $0.createsGroupNodes = newValue } }
    }

    /// Every write, in order, as `PATH <- VALUE` (a trailing newline shown as `\n`).
    var writes: [String] { state.withLock { $0.writes } }

    /// The whole tree, to compare before and after.
    var snapshot: Tree { state.withLock { $0.tree } }

    func failWrites(to path: String, errno: Int32) { state.withLock { $0.failingWrite = (path, errno) } }

    // MARK: building hosts

    /// A device bound to `driver` (its own driver: drivers_probe gives it back).
    func addDevice(_ address: String, vendor: UInt16, device: UInt16, classCode: UInt32, driver: String?,
                   group: Int?, netdev: String? = nil) {
        state.withLock { s in
            s.addDevice(address, vendor: vendor, device: device, classCode: classCode, group: group,
                        model: Model(nativeDriver: driver, netdev: netdev, group: group))
            if let driver { s.bind(address, to: driver) }
        }
    }

    /// An ixgbe-like SR-IOV NIC PF at `pf` with interface `netdev`, room for `totalVFs` (none made yet); its VFs
    /// (ixgbevf) get groups `vfFirstGroup`, `vfFirstGroup + 1`… and interfaces `NETDEVvN` when autoprobed.
    func addSRIOVNIC(pf: String = "0000:65:00.0", netdev: String = "enp101s0f0", totalVFs: Int = 8, group: Int = 20,
                     vfFirstGroup: Int = 60) {
        state.withLock { s in
            s.addDevice(pf, vendor: 0x8086, device: 0x10fb, classCode: 0x020000, group: group,
                        model: Model(nativeDriver: "ixgbe", netdev: netdev, group: group,
                                     vf: VFTemplate(deviceID: 0x10ed, driver: "ixgbevf", firstGroup: vfFirstGroup,
                                                    netdevPrefix: netdev + "v")))
            let folder = Self.devices + "/" + pf
            s.tree.put(folder + "/sriov_totalvfs", "\(totalVFs)\n")
            s.tree.put(folder + "/sriov_numvfs", "0\n")
            s.tree.put(folder + "/sriov_drivers_autoprobe", "1\n")
            s.tree.loadDriver("ixgbevf")
            s.bind(pf, to: "ixgbe")
        }
    }

    /// A GPU (`SLOT.0`, VGA, nouveau) and its HDMI audio (`SLOT.1`, snd_hda_intel), both in `group`.
    func addGPU(slot: String = "0000:01:00", group: Int = 1) {
        addDevice(slot + ".0", vendor: 0x10de, device: 0x1b80, classCode: 0x030000, driver: "nouveau", group: group)
        addDevice(slot + ".1", vendor: 0x10de, device: 0x10f0, classCode: 0x040300, driver: "snd_hda_intel", group: group)
    }

    /// A NIC at `device` (igb) sharing `group` with an NVMe drive at `neighbour` the host uses: not viable.
    func addNonViableGroup(device: String = "0000:03:00.0", neighbour: String = "0000:04:00.0", group: Int = 3) {
        addDevice(device, vendor: 0x8086, device: 0x1533, classCode: 0x020000, driver: "igb", group: group)
        addDevice(neighbour, vendor: 0x144d, device: 0xa808, classCode: 0x010802, driver: "nvme", group: group)
    }

    /// A root port (class 0x060400, pcieport) at `bridge` and a USB controller (xhci_hcd) at `device`, one group.
    func addBridgedDevice(bridge: String = "0000:00:1c.0", device: String = "0000:05:00.0", group: Int = 5) {
        addDevice(bridge, vendor: 0x8086, device: 0xa110, classCode: 0x060400, driver: "pcieport", group: group)
        addDevice(device, vendor: 0x1912, device: 0x0014, classCode: 0x0c0330, driver: "xhci_hcd", group: group)
    }

    // MARK: SysfsTree

    func read(_ path: String) throws(KernelFileError) -> String {
        let result: Result<String, KernelFileError> = state.withLock { s in
            if let content = s.tree.files[path] { return .success(content) }
            return .failure(KernelFileError(operation: "read", path: path, errno: s.tree.dirs.contains(path) ? EISDIR : ENOENT))
        }
        return try result.get()
    }

    func write(_ value: String, to path: String) throws(KernelFileError) {
        let errno: Int32? = state.withLock { s in
            s.writes.append("\(path) <- \(value.replacingNewlines())")
            if let failing = s.failingWrite, failing.path == path { return failing.errno }
            guard s.tree.files[path] != nil else { return ENOENT }
            return s.react(to: value, at: path)
        }
        if let errno { throw KernelFileError(operation: "write", path: path, errno: errno) }
    }

    func list(_ path: String) throws(KernelFileError) -> [String] {
        let names: [String]? = state.withLock { s in s.tree.dirs.contains(path) ? s.tree.children(of: path) : nil }
        guard let names else { throw KernelFileError(operation: "list", path: path, errno: ENOENT) }
        return names
    }

    func linkTarget(_ path: String) throws(KernelFileError) -> String {
        let target: String? = state.withLock { $0.tree.links[path] }
        guard let target else { throw KernelFileError(operation: "readlink", path: path, errno: exists(path) ? EINVAL : ENOENT) }
        return target
    }

    func exists(_ path: String) -> Bool {
        state.withLock { $0.tree.files[path] != nil || $0.tree.links[path] != nil || $0.tree.dirs.contains(path) }
    }
}

extension FakeKernel.Tree {
    mutating func mkdir(_ path: String) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            dirs.insert(current)
        }
    }

    mutating func put(_ path: String, _ content: String) {
        mkdir(parent(path))
        files[path] = content
    }

    mutating func link(_ path: String, _ target: String) {
        mkdir(parent(path))
        links[path] = target
    }

    /// Removes `path` and everything under it.
    mutating func remove(_ path: String) {
        let prefix = path + "/"
        files = files.filter { $0.key != path && !$0.key.hasPrefix(prefix) }
        links = links.filter { $0.key != path && !$0.key.hasPrefix(prefix) }
        dirs = dirs.filter { $0 != path && !$0.hasPrefix(prefix) }
    }

    func children(of path: String) -> [String] {
        let prefix = path == "/" ? "/" : path + "/"
        var names: Set<String> = []
        for key in Array(files.keys) + Array(links.keys) + Array(dirs) where key.hasPrefix(prefix) && key != path {
            if let name = key.dropFirst(prefix.count).split(separator: "/").first { names.insert(String(name)) }
        }
        return names.sorted()
    }

    mutating func loadDriver(_ name: String) {
        let folder = FakeKernel.drivers + "/" + name
        guard !dirs.contains(folder) else { return }
        for file in ["bind", "unbind", "new_id", "remove_id"] { put(folder + "/" + file, "") }
    }

    func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}

extension FakeKernel.State {
    mutating func addDevice(_ address: String, vendor: UInt16, device: UInt16, classCode: UInt32, group: Int?,
                            model: FakeKernel.Model) {
        let folder = FakeKernel.devices + "/" + address
        func hex(_ value: UInt32, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text + "\n"
        }
        tree.put(folder + "/vendor", hex(UInt32(vendor), 4))
        tree.put(folder + "/device", hex(UInt32(device), 4))
        tree.put(folder + "/class", hex(classCode, 6))
        tree.put(folder + "/driver_override", "(null)\n")
        if let group {
            tree.link(folder + "/iommu_group", "../../../../kernel/iommu_groups/\(group)")
            tree.link("/sys/kernel/iommu_groups/\(group)/devices/\(address)", "../../../../devices/pci0000:00/\(address)")
        }
        models[address] = model
        if let driver = model.nativeDriver { tree.loadDriver(driver) }
    }

    func driver(of address: String) -> String? {
        tree.links[FakeKernel.devices + "/" + address + "/driver"].flatMap { $0.split(separator: "/").last.map(String.init) }
    }

    mutating func bind(_ address: String, to driver: String) {
        let folder = FakeKernel.devices + "/" + address
        tree.link(folder + "/driver", "../../../bus/pci/drivers/\(driver)")
        tree.link(FakeKernel.drivers + "/\(driver)/\(address)", "../../../../devices/pci0000:00/\(address)")
        let model = models[address]
        if driver == model?.nativeDriver, let netdev = model?.netdev {
            tree.mkdir(folder + "/net/" + netdev)
            tree.link("/sys/class/net/\(netdev)/device", "../../../\(address)")
            tree.put("/sys/class/net/\(netdev)/flags", "0x1002\n")
        }
        if driver == "vfio-pci", createsGroupNodes, let group = model?.group { tree.put("/dev/vfio/\(group)", "") }
    }

    mutating func unbind(_ address: String) {
        guard let driver = driver(of: address) else { return }
        let folder = FakeKernel.devices + "/" + address
        tree.remove(folder + "/driver")
        tree.remove(FakeKernel.drivers + "/\(driver)/\(address)")
        if let netdev = models[address]?.netdev, tree.dirs.contains(folder + "/net/" + netdev) {
            tree.remove(folder + "/net")
            tree.remove("/sys/class/net/\(netdev)")
        }
        if driver == "vfio-pci", let group = models[address]?.group {
            let stillHeld = models.contains { $0.value.group == group && $0.key != address && self.driver(of: $0.key) == "vfio-pci" }
            if !stillHeld { tree.remove("/dev/vfio/\(group)") }
        }
    }

    /// The kernel's side of a write of `value` to the existing file `path`: nil, or the errno it fails with.
    mutating func react(to value: String, at path: String) -> Int32? {
        let trimmed = value.kernelTrimmed()
        let components = path.split(separator: "/").map(String.init)
        if path == "/sys/bus/pci/drivers_probe" {
            guard models[trimmed] != nil else { return ENODEV }
            probe(trimmed)
            return nil
        }
        if path.hasPrefix(FakeKernel.drivers + "/"), components.count == 6 {
            let name = components[4]
            switch components[5] {
            case "unbind":
                guard driver(of: trimmed) == name else { return ENODEV }
                unbind(trimmed)
                return nil
            case "bind":
                guard models[trimmed] != nil, driver(of: trimmed) == nil else { return ENODEV }
                bind(trimmed, to: name)
                return nil
            default:
                tree.files[path] = value
                return nil
            }
        }
        if path.hasPrefix(FakeKernel.devices + "/"), components.count == 6 {
            let address = components[4]
            switch components[5] {
            case "driver_override":
                tree.files[path] = (trimmed.isEmpty ? "(null)" : trimmed) + "\n"
                return nil
            case "sriov_numvfs":
                guard let count = Int(trimmed), count >= 0 else { return EINVAL }
                return setVFCount(count, pf: address)
            case "sriov_drivers_autoprobe":
                guard trimmed == "0" || trimmed == "1" else { return EINVAL }
                tree.files[path] = trimmed + "\n"
                return nil
            default:
                tree.files[path] = value
                return nil
            }
        }
        tree.files[path] = value
        return nil
    }

    /// drivers_probe: an unbound device goes to its override driver, else its own, when that driver is loaded.
    mutating func probe(_ address: String) {
        guard driver(of: address) == nil else { return }
        let override = tree.files[FakeKernel.devices + "/" + address + "/driver_override"]?.kernelTrimmed()
        let wanted = override == nil || override == "(null)" ? models[address]?.nativeDriver : override
        guard let wanted, tree.dirs.contains(FakeKernel.drivers + "/" + wanted) else { return }
        bind(address, to: wanted)
    }

    mutating func setVFCount(_ count: Int, pf: String) -> Int32? {
        let folder = FakeKernel.devices + "/" + pf
        guard let template = models[pf]?.vf,
              let total = tree.files[folder + "/sriov_totalvfs"].flatMap({ Int($0.kernelTrimmed()) }),
              let current = tree.files[folder + "/sriov_numvfs"].flatMap({ Int($0.kernelTrimmed()) }) else { return EINVAL }
        if count == current { return nil }
        if count > total { return ERANGE }
        if current != 0 && count != 0 { return EBUSY }
        let pfAddress = try! PCIAddress(parsing: pf)
        if count == 0 {
            for index in 0..<current {
                let vf = Self.vfAddress(pfAddress, index).description
                unbind(vf)
                tree.remove(FakeKernel.devices + "/" + vf)
                tree.remove(folder + "/virtfn\(index)")
                if let group = models[vf]?.group { tree.remove("/sys/kernel/iommu_groups/\(group)") }
                models[vf] = nil
            }
        } else {
            let autoprobe = tree.files[folder + "/sriov_drivers_autoprobe"]?.kernelTrimmed() != "0"
            for index in 0..<count {
                let vf = Self.vfAddress(pfAddress, index).description
                let group = template.firstGroup + index
                addDevice(vf, vendor: 0x8086, device: template.deviceID, classCode: 0x020000, group: group,
                          model: FakeKernel.Model(nativeDriver: template.driver, netdev: template.netdevPrefix + "\(index)",
                                                  group: group))
                tree.link(FakeKernel.devices + "/" + vf + "/physfn", "../\(pf)")
                tree.link(folder + "/virtfn\(index)", "../\(vf)")
                if autoprobe { bind(vf, to: template.driver) }
            }
        }
        tree.files[folder + "/sriov_numvfs"] = "\(count)\n"
        return nil
    }

    /// VF `index` of `pf`: routing ID offset 0x80, stride 2 (as an 82599 has): 65:00.0 → 65:10.0, 65:10.2…
    static func vfAddress(_ pf: PCIAddress, _ index: Int) -> PCIAddress {
        let devfn = 0x80 + 2 * index + Int(pf.slot) * 8 + Int(pf.function)
        return PCIAddress(domain: pf.domain, bus: pf.bus, slot: UInt8(devfn >> 3), function: UInt8(devfn & 7))
    }
}

private extension String {
    func replacingNewlines() -> String {
        var result = ""
        for c in self { result += c == "\n" ? "\\n" : String(c) }
        return result
    }
}
