import CorralModel
import Profiles
#if canImport(Glibc)
import Glibc
#endif

/// Which VM holds which host PCI device, and the binding of a VM's `pci` host devices to vfio-pci when it starts and
/// back to their drivers when its QEMU ends (docs/devices.md). One per daemon, shared by its VMs.
public actor HostDeviceClaims {
    public let assignment: DeviceAssignment
    /// Where `/dev/vfio` is (the host's `/`, or `CORRAL_SYSFS_ROOT`); nil: nothing to hand over (a fake kernel).
    public let devRoot: String?
    private var holders: [PCIAddress: String] = [:]

    public init(assignment: DeviceAssignment, devRoot: String? = nil) {
        self.assignment = assignment
        self.devRoot = devRoot
    }

    /// The real host: `/sys` (or `CORRAL_SYSFS_ROOT`) and vfio-pci.
    public static func host() -> HostDeviceClaims {
        let tree = HostSysfsTree.fromEnvironment()
        return HostDeviceClaims(assignment: DeviceAssignment(tree: tree, binder: VFIOBinder(tree: tree)),
                                devRoot: tree.root == "/" ? "" : tree.root)
    }

    /// Gives the VFIO group nodes of `records` to `uid` (an unprivileged QEMU opens them itself) and returns the
    /// device cgroup rules QEMU needs for them: `/dev/vfio/vfio` (the container) and each group's node.
    public func handOver(_ records: [BindRecord], to uid: UInt32?) -> [DeviceRule] {
        guard let devRoot, !records.isEmpty else { return [] }
        var rules = [DeviceRule(.character, 10, 196, "rw", name: "/dev/vfio/vfio")]
        for group in Set(records.map(\.iommuGroup)).sorted() {
            let path = devRoot + "/dev/vfio/\(group)"
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFCHR else { continue }
            if let uid { _ = chown(path, uid, uid) }
            // glibc's gnu_dev_major/minor: the major in bits 8-19 and 32-43, the minor in bits 0-7 and 20-31.
            let dev = UInt64(info.st_rdev)
            let major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
            let minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
            rules.append(DeviceRule(.character, major, minor, "rw", name: "/dev/vfio/\(group)"))
        }
        return rules
    }

    /// True when `profile` has devices this host must bind (`pci`, `vf`); an emulated stand-in needs nothing.
    public static func needsBinding(_ profile: Profile) -> Bool {
        profile.hostdevs.contains { $0.pci != nil || $0.vf != nil }
    }

    /// Binds `vm`'s host devices; on any failure nothing stays bound.
    public func acquire(vm: String, profile: Profile) async throws(ControlError) -> [BindRecord] {
        if let vf = profile.hostdevs.first(where: { $0.vf != nil }) {
            throw .refused("hostdevs \(vf.id): this daemon does not yet choose a VF when it starts a VM (docs/devices.md); "
                + "give the VF by address with pci")
        }
        var records: [BindRecord] = []
        for device in profile.hostdevs {
            guard let address = device.pci else { continue }
            do {
                records += try await assignment.assign([address], allFunctions: device.allFunctions, to: vm,
                                                       holders: holders)
            } catch {
                _ = assignment.release(records)
                throw .refused("hostdevs \(device.id): \(error.description)")
            }
        }
        for record in records { holders[record.address] = vm }
        return records
    }

    /// Gives `records` back to their drivers; the problems, if any (a device left on vfio-pci).
    public func release(vm: String, _ records: [BindRecord]) -> [String] {
        for record in records where holders[record.address] == vm { holders[record.address] = nil }
        return assignment.release(records).map(\.description)
    }

    /// A restarted daemon takes back what its VMs' records say they hold (it does not bind again).
    public func adopt(vm: String, _ records: [BindRecord]) {
        for record in records { holders[record.address] = vm }
    }

    /// Device → VM, for `status` and tests.
    public var held: [PCIAddress: String] { holders }

    /// The host functions each profile device was given, for QEMU's `host` properties (function 0 first).
    public static func addresses(_ profile: Profile, _ records: [BindRecord]) -> [String: [PCIAddress]] {
        var addresses: [String: [PCIAddress]] = [:]
        for device in profile.hostdevs {
            guard let address = device.pci else { continue }
            let mine = records.map(\.address).filter {
                device.allFunctions ? $0.withFunction(0) == address.withFunction(0) : $0 == address
            }
            addresses[device.id] = mine.sorted()
        }
        return addresses
    }
}
