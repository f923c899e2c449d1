import HostDevices
import CorralModel
import CSupport
import Profiles
import QEMUCommand
#if canImport(Glibc)
import Glibc
#endif

/// Which VM holds which host PCI device, and the binding of a VM's `pci` host devices to vfio-pci when it starts and
/// back to their drivers when its QEMU ends (docs/devices.md). One per daemon, shared by its VMs.
public actor HostDeviceClaims {
    public let assignment: DeviceAssignment
    /// Where `/dev/vfio` is (the host's `/`, or `CORRAL_SYSFS_ROOT`); nil: nothing to hand over (a fake kernel).
    public let devRoot: String?
    /// Chooses VFs (nil: no SR-IOV here), and sets their MAC, VLAN, trust and spoof checking.
    public let vfs: VFAllocator?
    public let vfConfig: any VFNetConfig
    /// How many VFs a PF without any gets when a VM asks for one of its VFs.
    public let vfsPerPF: Int
    /// Raises a running QEMU's RLIMIT_MEMLOCK when a device is plugged into it.
    public let lockLimit: any MemoryLockLimit
    private var holders: [PCIAddress: String] = [:]

    public init(assignment: DeviceAssignment, devRoot: String? = nil, vfs: VFAllocator? = nil,
                vfConfig: any VFNetConfig = RTNetlinkVFNetConfig(), vfsPerPF: Int = 8,
                lockLimit: any MemoryLockLimit = ProcessMemoryLockLimit()) {
        self.lockLimit = lockLimit
        self.assignment = assignment
        self.devRoot = devRoot
        self.vfs = vfs
        self.vfConfig = vfConfig
        self.vfsPerPF = vfsPerPF
    }

    /// The real host: `/sys` (or `CORRAL_SYSFS_ROOT`) and vfio-pci.
    public static func host() -> HostDeviceClaims {
        let tree = HostSysfsTree.fromEnvironment()
        return HostDeviceClaims(assignment: DeviceAssignment(tree: tree, binder: VFIOBinder(tree: tree)),
                                devRoot: tree.root == "/" ? "" : tree.root,
                                vfs: VFAllocator(tree: tree, netdevs: HostNetdevStateProbe(tree: tree)))
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
        profile.hostdevs.contains(where: needsBinding)
    }

    public static func needsBinding(_ device: HostDevice) -> Bool { device.pci != nil || device.vf != nil }

    /// Binds `vm`'s host devices (`devices`: the profile's and any plugged since; `nics`: the NICs a VF may stand
    /// in for, whose MAC it takes); on any failure nothing stays bound and no VF keeps settings corral gave it.
    public func acquire(vm: String, devices: [HostDevice], nics: [NIC]) async throws(ControlError) -> [BindRecord] {
        var records: [BindRecord] = []
        for device in devices where Self.needsBinding(device) {
            do {
                records += try await acquire(vm: vm, device: device, nics: nics)
            } catch {
                _ = release(vm: vm, records)
                throw error
            }
        }
        return records
    }

    /// Binds one device: a `pci` device (with its slot's other functions for `allFunctions`), or a VF chosen from
    /// its PF, given its settings, then bound. The records carry `device.id`.
    public func acquire(vm: String, device: HostDevice, nics: [NIC]) async throws(ControlError) -> [BindRecord] {
        if let address = device.pci {
            let records: [BindRecord]
            do {
                records = try await assignment.assign([address], allFunctions: device.allFunctions, to: vm,
                                                      holders: holders)
            } catch {
                throw .refused("hostdevs \(device.id): \(error.description)")
            }
            let tagged = records.map { var r = $0; r.deviceID = device.id; return r }
            for record in tagged { holders[record.address] = vm }
            return tagged
        }
        guard let vf = device.vf else { return [] }
        guard let allocator = vfs else {
            throw .refused("hostdevs \(device.id): this daemon has no SR-IOV access (docs/devices.md)")
        }
        let pf: PFReference = vf.pf.map { .address($0) } ?? .netdev(vf.netdev ?? "")
        let reservation: VFReservation
        do {
            reservation = try await allocator.reserve(from: pf, createIfNone: vfsPerPF, held: holders, for: vm)
        } catch {
            throw .refused("hostdevs \(device.id): \(error.description)")
        }
        // Reserved until the VF is among the holders (or given up): no other VM can be handed it meanwhile.
        let result: Result<[BindRecord], ControlError>
        do { result = .success(try await bindVF(reservation, device: device, vf: vf, vm: vm, nics: nics)) } catch {
            result = .failure(error)
        }
        await allocator.release(reservation.address)
        return try result.get()
    }

    private func bindVF(_ reservation: VFReservation, device: HostDevice, vf: VirtualFunction, vm: String,
                        nics: [NIC]) async throws(ControlError) -> [BindRecord] {
        let settings = Self.settings(for: device, vf: vf, vm: vm, nics: nics, isNIC: reservation.pfNetdev != nil)
        var restore: VFSettings?
        if settings != VFSettings() {
            guard let netdev = reservation.pfNetdev else {
                throw .refused("hostdevs \(device.id): \(reservation.physicalFunction) has no network interface, so "
                    + "its VF's mac, vlan, trust or spoofchk cannot be set (is the PF's own driver bound?)")
            }
            do { restore = try vfConfig.replace(settings, pf: netdev, vf: reservation.index) } catch {
                throw .refused("hostdevs \(device.id): setting VF \(reservation.index) of \(netdev): \(error.description)")
            }
        }
        let binding = VFBinding(physicalFunction: reservation.physicalFunction, pfNetdev: reservation.pfNetdev,
                                index: reservation.index, restore: restore)
        let records: [BindRecord]
        do {
            records = try await assignment.assign([reservation.address], allFunctions: false, to: vm, holders: holders)
        } catch {
            let undo = undoSettings(binding).map { "; \($0)" } ?? ""
            throw .refused("hostdevs \(device.id): VF \(reservation.index) (\(reservation.address)) of "
                + "\(reservation.physicalFunction): \(error.description)\(undo)")
        }
        let tagged = records.map { var r = $0; r.deviceID = device.id; r.vf = binding; return r }
        for record in tagged { holders[record.address] = vm }
        return tagged
    }

    /// What corral sets on a VF: the profile's settings, and a MAC always when the PF is a NIC (the given one, the
    /// failover NIC's, or one derived from the VM and device, so the guest sees the same MAC on every start).
    /// `isNIC`: the PF has a network interface (a derived MAC is only set then).
    static func settings(for device: HostDevice, vf: VirtualFunction, vm: String, nics: [NIC],
                         isNIC: Bool) -> VFSettings {
        let paired = device.failover.flatMap { id in nics.first { $0.id == id } }
        let mac = vf.mac ?? paired.map { $0.mac ?? DeviceProps.stableMAC(vmName: vm, nicID: $0.id) }
            ?? (isNIC ? DeviceProps.stableMAC(vmName: vm, nicID: "hostdev-" + device.id) : nil)
        return VFSettings(mac: mac?.lowercased(), vlan: vf.vlan.map { UInt16($0) }, trust: vf.trust,
                          spoofCheck: vf.spoofchk)
    }

    /// Puts back what `binding` says corral changed on the PF; the problem, if any.
    private func undoSettings(_ binding: VFBinding) -> String? {
        guard let restore = binding.restore, let netdev = binding.pfNetdev else { return nil }
        do { try vfConfig.apply(restore, pf: netdev, vf: binding.index) } catch {
            return "putting back VF \(binding.index)'s settings on \(netdev) failed: \(error.description)"
        }
        return nil
    }

    /// Gives `records` back to their drivers; the problems, if any (a device left on vfio-pci).
    public func release(vm: String, _ records: [BindRecord]) -> [String] {
        for record in records where holders[record.address] == vm { holders[record.address] = nil }
        var problems = assignment.release(records).map(\.description)
        // The VF is off vfio-pci (unbound again: its PFs make them without autoprobe): now its settings go back.
        for record in records.reversed() {
            if let binding = record.vf, let problem = undoSettings(binding) { problems.append(problem) }
        }
        return problems
    }

    /// A restarted daemon takes back what its VMs' records say they hold (it does not bind again).
    public func adopt(vm: String, _ records: [BindRecord]) {
        for record in records { holders[record.address] = vm }
    }

    /// Device → VM, for `status` and tests.
    public var held: [PCIAddress: String] { holders }

    /// The host functions each device was given, for QEMU's `host` properties (function 0 first).
    public static func addresses(_ devices: [HostDevice], _ records: [BindRecord]) -> [String: [PCIAddress]] {
        var addresses: [String: [PCIAddress]] = [:]
        for device in devices {
            let tagged = records.filter { $0.deviceID == device.id }.map(\.address)
            if device.vf != nil || (!tagged.isEmpty && device.pci != nil) {
                if !tagged.isEmpty { addresses[device.id] = tagged.sorted() }
                continue
            }
            // Records written before they carried their device: matched by address.
            guard let address = device.pci else { continue }
            let mine = records.map(\.address).filter {
                device.allFunctions ? $0.withFunction(0) == address.withFunction(0) : $0 == address
            }
            addresses[device.id] = mine.sorted()
        }
        return addresses
    }
}

/// A process's RLIMIT_MEMLOCK, raised from outside (`prlimit`): VFIO pins guest RAM, so a QEMU that gets its first
/// device while running needs a limit covering it.
public protocol MemoryLockLimit: Sendable {
    /// Raises `pid`'s soft (and if needed hard) limit to at least `bytes`; a higher or unlimited one stays.
    func raise(pid: Int32, to bytes: UInt64) throws(KernelFileError)
}

public struct ProcessMemoryLockLimit: MemoryLockLimit {
    public init() {}

    public func raise(pid: Int32, to bytes: UInt64) throws(KernelFileError) {
        let failure = corral_raise_memlock(pid, bytes)
        guard failure == 0 else {
            throw KernelFileError(operation: "prlimit", path: "/proc/\(pid) RLIMIT_MEMLOCK", errno: failure)
        }
    }
}
