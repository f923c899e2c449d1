import CorralModel

/// What binding a device to vfio-pci changed, for the caller to persist and hand back to `restore`.
public struct BindRecord: Sendable, Codable, Equatable {
    public var address: PCIAddress
    /// The driver the device had before (nil: it was unbound). `vfio-pci` when it was on vfio-pci already: then
    /// nothing was changed and restoring changes nothing.
    public var originalDriver: String?
    /// Its IOMMU group: QEMU opens `/dev/vfio/GROUP`.
    public var iommuGroup: Int
    /// The VM's host device (`hostdevs[].id`) this function was bound for; nil in records written before 2026-12.
    public var deviceID: String?
    /// For a VF corral chose: its PF and what undoes the settings corral gave it.
    public var vf: VFBinding?

    public init(address: PCIAddress, originalDriver: String?, iommuGroup: Int, deviceID: String? = nil,
                vf: VFBinding? = nil) {
        self.address = address
        self.originalDriver = originalDriver
        self.iommuGroup = iommuGroup
        self.deviceID = deviceID
        self.vf = vf
    }
}

/// A VF as a VM holds it: which one of which PF, and the settings to put back on the PF when the VM lets it go.
public struct VFBinding: Sendable, Codable, Equatable {
    public var physicalFunction: PCIAddress
    public var pfNetdev: String?
    /// The VF's number on its PF.
    public var index: Int
    /// Applying these on `pfNetdev` undoes what corral set (nil: nothing was set).
    public var restore: VFSettings?

    public init(physicalFunction: PCIAddress, pfNetdev: String?, index: Int, restore: VFSettings?) {
        self.physicalFunction = physicalFunction
        self.pfNetdev = pfNetdev
        self.index = index
        self.restore = restore
    }
}

/// Why binding or restoring a device failed: the device, the sysfs file and the kernel's reason.
public enum VFIOBindError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A read or write of a kernel file failed (the path and errno are in the cause).
    case kernel(device: PCIAddress, KernelFileError)
    /// The device has no `iommu_group` link.
    case noGroup(PCIAddress)
    /// After `drivers_probe` the device is on `found` (nil: unbound), not on `expected`.
    case wrongDriver(device: PCIAddress, expected: String?, found: String?)
    /// `/dev/vfio/GROUP` did not appear in time; the device was put back on its driver unless `restoreFailure`
    /// says why not.
    case groupNodeMissing(device: PCIAddress, path: String, waitedMilliseconds: Int, restoreFailure: String?)
    /// The bind failed (`cause`) and putting the device back failed too (`restoreFailure`).
    case bindAndRestoreFailed(cause: String, restoreFailure: String)

    public var description: String {
        switch self {
        case .kernel(let device, let cause):
            return "\(device): \(cause)"
        case .noGroup(let device):
            return "\(device) has no IOMMU group (no /sys/bus/pci/devices/\(device)/iommu_group): is the IOMMU enabled?"
        case .wrongDriver(let device, let expected, let found):
            return "\(device): after writing it to /sys/bus/pci/drivers_probe it is "
                + (found.map { "bound to \($0)" } ?? "unbound") + ", not "
                + (expected.map { "bound to \($0)" } ?? "unbound")
                + (expected == VFIOBinder.vfioDriver ? " (is the vfio-pci module loaded? modprobe vfio-pci)" : "")
        case .groupNodeMissing(let device, let path, let waited, let restoreFailure):
            return "\(device): \(path) did not appear within \(waited) ms after binding to vfio-pci; "
                + (restoreFailure.map { "putting it back failed too: \($0)" } ?? "the device was put back as it was")
        case .bindAndRestoreFailed(let cause, let restoreFailure):
            return "\(cause); putting the device back failed too: \(restoreFailure)"
        }
    }
}

/// Gives devices to vfio-pci and back (`VFIOBinder`; a fake in the daemon's tests).
public protocol PCIDeviceBinding: Sendable {
    /// Binds `address` to vfio-pci and returns what to persist for `restore`.
    func bind(_ address: PCIAddress) async throws(VFIOBindError) -> BindRecord
    /// Puts the device of `record` back on its original driver (or leaves it unbound if it was).
    func restore(_ record: BindRecord) throws(VFIOBindError)
}

/// `PCIDeviceBinding` over a `SysfsTree`.
///
/// Bind: `vfio-pci` to `driver_override`, the address to the current driver's `unbind`, the address to
/// `/sys/bus/pci/drivers_probe` (the kernel then matches the override only), then wait for `/dev/vfio/GROUP`.
/// Restore: `\n` to `driver_override` (cleared), the address to vfio-pci's `unbind`, the address to `drivers_probe`
/// (the device's own driver matches it again). Never `new_id`: that would make vfio-pci claim every device with the
/// same ids, the host's ones included.
public struct VFIOBinder: PCIDeviceBinding {
    public static let vfioDriver = "vfio-pci"
    public static let probePath = "/sys/bus/pci/drivers_probe"

    public let tree: any SysfsTree
    /// How long to wait for `/dev/vfio/GROUP`, and how often to look.
    public let timeout: Duration
    public let interval: Duration
    let pause: @Sendable (Duration) async -> Void

    public init(tree: any SysfsTree, timeout: Duration = .seconds(5), interval: Duration = .milliseconds(20),
                pause: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }) {
        self.tree = tree
        self.timeout = timeout
        self.interval = interval
        self.pause = pause
    }

    static func devicePath(_ address: PCIAddress) -> String { PCIInventory.devicesPath + "/" + address.description }
    static func unbindPath(_ driver: String) -> String { "/sys/bus/pci/drivers/\(driver)/unbind" }
    public static func groupNode(_ group: Int) -> String { "/dev/vfio/\(group)" }

    public func bind(_ address: PCIAddress) async throws(VFIOBindError) -> BindRecord {
        let folder = Self.devicePath(address)
        let original = try sysfs(address) { () throws(KernelFileError) in try tree.linkName(folder + "/driver") }
        let groupName = try sysfs(address) { () throws(KernelFileError) in try tree.linkName(folder + "/iommu_group") }
        guard let group = groupName.flatMap({ Int($0) }) else { throw .noGroup(address) }
        let record = BindRecord(address: address, originalDriver: original, iommuGroup: group)
        if original != Self.vfioDriver {
            try sysfs(address) { () throws(KernelFileError) in
                try tree.write(Self.vfioDriver, to: folder + "/driver_override")
            }
            do {
                try sysfs(address) { () throws(KernelFileError) in
                    if let original { try tree.write(address.description, to: Self.unbindPath(original)) }
                    try tree.write(address.description, to: Self.probePath)
                }
                try expectDriver(Self.vfioDriver, on: address)
            } catch {
                do { try restore(record) } catch let failure {
                    throw .bindAndRestoreFailed(cause: error.description, restoreFailure: failure.description)
                }
                throw error
            }
        }
        let node = Self.groupNode(group)
        let attempts = max(1, Int((timeout / interval).rounded(.up)))
        for _ in 0..<attempts {
            if tree.exists(node) { return record }
            await pause(interval)
        }
        if tree.exists(node) { return record }
        var restoreFailure: String?
        if original != Self.vfioDriver {
            do { try restore(record) } catch { restoreFailure = error.description }
        }
        throw .groupNodeMissing(device: address, path: node, waitedMilliseconds: Int(timeout / .milliseconds(1)),
                                restoreFailure: restoreFailure)
    }

    public func restore(_ record: BindRecord) throws(VFIOBindError) {
        let address = record.address
        guard record.originalDriver != Self.vfioDriver else { return }
        let folder = Self.devicePath(address)
        try sysfs(address) { () throws(KernelFileError) in
            try tree.write("\n", to: folder + "/driver_override")
            if try tree.linkName(folder + "/driver") == Self.vfioDriver {
                try tree.write(address.description, to: Self.unbindPath(Self.vfioDriver))
            }
            if record.originalDriver != nil { try tree.write(address.description, to: Self.probePath) }
        }
        try expectDriver(record.originalDriver, on: address)
    }

    /// Throws unless the device's `driver` link names `expected` (nil: no link).
    private func expectDriver(_ expected: String?, on address: PCIAddress) throws(VFIOBindError) {
        let now = try sysfs(address) { () throws(KernelFileError) in
            try tree.linkName(Self.devicePath(address) + "/driver")
        }
        guard now == expected else { throw .wrongDriver(device: address, expected: expected, found: now) }
    }

    /// Runs `body`, a kernel file failure becoming `.kernel` for `address`.
    private func sysfs<T>(_ address: PCIAddress, _ body: () throws(KernelFileError) -> T) throws(VFIOBindError) -> T {
        do { return try body() } catch { throw .kernel(device: address, error) }
    }
}
