import CorralModel

/// What sysfs says about one PCI device (`/sys/bus/pci/devices/ADDRESS`) at the time of a scan.
public struct PCIDevice: Sendable, Equatable {
    public var address: PCIAddress
    public var vendorID: UInt16
    public var deviceID: UInt16
    /// The 24-bit class code (`0x030000` VGA, `0x040300` HD audio, `0x0604xx` PCI bridge).
    public var classCode: UInt32
    /// The bound driver's name (the `driver` link), nil when unbound.
    public var driver: String?
    /// `driver_override`, nil when empty (the kernel shows `(null)`).
    public var driverOverride: String?
    /// The IOMMU group (the `iommu_group` link), nil without an IOMMU.
    public var iommuGroup: Int?
    /// SR-IOV facts of a physical function, nil for a device without the capability.
    public var sriov: SRIOVFacts?
    /// The PF of a virtual function (the `physfn` link).
    public var physicalFunction: PCIAddress?
    /// Network interfaces of the device (`net/`), empty unless a network driver has it.
    public var netdevs: [String]

    public init(address: PCIAddress, vendorID: UInt16, deviceID: UInt16, classCode: UInt32, driver: String? = nil,
                driverOverride: String? = nil, iommuGroup: Int? = nil, sriov: SRIOVFacts? = nil,
                physicalFunction: PCIAddress? = nil, netdevs: [String] = []) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.driver = driver
        self.driverOverride = driverOverride
        self.iommuGroup = iommuGroup
        self.sriov = sriov
        self.physicalFunction = physicalFunction
        self.netdevs = netdevs
    }

    /// A PCI-to-PCI bridge (class 0x0604): it stays with the host even when its group goes to a VM.
    public var isBridge: Bool { classCode >> 8 == 0x0604 }
}

/// The SR-IOV capability of a physical function.
public struct SRIOVFacts: Sendable, Equatable {
    /// `sriov_totalvfs`: the most VFs the device can have.
    public var totalVFs: Int
    /// `sriov_numvfs`: how many exist now.
    public var numVFs: Int
    /// VF number → its address (the `virtfnN` links).
    public var virtualFunctions: [Int: PCIAddress]
    /// `sriov_drivers_autoprobe`: whether new VFs are bound to a host driver as they appear.
    public var driversAutoprobe: Bool?

    public init(totalVFs: Int, numVFs: Int, virtualFunctions: [Int: PCIAddress] = [:], driversAutoprobe: Bool? = nil) {
        self.totalVFs = totalVFs
        self.numVFs = numVFs
        self.virtualFunctions = virtualFunctions
        self.driversAutoprobe = driversAutoprobe
    }
}

/// A snapshot of the host's PCI devices and IOMMU, taken by `scan(_:)` (the only effect); every question asked of it
/// afterwards is pure.
public struct PCIInventory: Sendable, Equatable {
    public var devices: [PCIAddress: PCIDevice]
    /// The entries of `/sys/class/iommu` (`dmar0`, `ivhd0`…): empty when no IOMMU is enabled.
    public var iommuUnits: [String]
    /// Whether `/sys/kernel/iommu_groups` exists.
    public var hasIOMMUGroups: Bool

    public init(devices: [PCIDevice], iommuUnits: [String], hasIOMMUGroups: Bool) {
        self.devices = Dictionary(devices.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        self.iommuUnits = iommuUnits
        self.hasIOMMUGroups = hasIOMMUGroups
    }

    public subscript(address: PCIAddress) -> PCIDevice? { devices[address] }

    /// The devices of IOMMU group `group`, by address.
    public func members(ofGroup group: Int) -> [PCIDevice] {
        devices.values.filter { $0.iommuGroup == group }.sorted { $0.address < $1.address }
    }

    /// Every present function of `address`'s slot (a GPU and its audio function), by address.
    public func functions(ofSlot address: PCIAddress) -> [PCIAddress] {
        (0...7).map { address.withFunction(UInt8($0)) }.filter { devices[$0] != nil }
    }

    /// The device whose network interface is `netdev`.
    public func device(withNetdev netdev: String) -> PCIDevice? {
        devices.values.first { $0.netdevs.contains(netdev) }
    }

    public static let devicesPath = "/sys/bus/pci/devices"

    /// Reads every device under `/sys/bus/pci/devices`, and the IOMMU's presence. Entries that are not PCI addresses
    /// are skipped.
    public static func scan(_ tree: any SysfsTree) throws(KernelFileError) -> PCIInventory {
        var devices: [PCIDevice] = []
        for name in try tree.list(devicesPath) {
            guard let address = try? PCIAddress(parsing: name) else { continue }
            devices.append(try scanDevice(address, in: tree))
        }
        let units = tree.exists("/sys/class/iommu") ? try tree.list("/sys/class/iommu") : []
        return PCIInventory(devices: devices, iommuUnits: units, hasIOMMUGroups: tree.exists("/sys/kernel/iommu_groups"))
    }

    /// Reads one device's folder.
    public static func scanDevice(_ address: PCIAddress, in tree: any SysfsTree) throws(KernelFileError) -> PCIDevice {
        let folder = devicesPath + "/" + address.description
        func hex(_ file: String) throws(KernelFileError) -> UInt32 {
            let text = try tree.value(folder + "/" + file)
            let digits = text.hasPrefix("0x") ? text.dropFirst(2) : Substring(text)
            guard let value = UInt32(digits, radix: 16) else {
                throw KernelFileError(operation: "parse", path: folder + "/" + file, errno: 0)
            }
            return value
        }
        func optionalInt(_ file: String) throws(KernelFileError) -> Int? {
            guard tree.exists(folder + "/" + file) else { return nil }
            let text = try tree.value(folder + "/" + file)
            guard let value = Int(text) else {
                throw KernelFileError(operation: "parse", path: folder + "/" + file, errno: 0)
            }
            return value
        }
        func linkedAddress(_ link: String) throws(KernelFileError) -> PCIAddress? {
            guard let name = try tree.linkName(folder + "/" + link) else { return nil }
            return try? PCIAddress(parsing: name)
        }
        var device = PCIDevice(address: address, vendorID: UInt16(truncatingIfNeeded: try hex("vendor")),
                               deviceID: UInt16(truncatingIfNeeded: try hex("device")), classCode: try hex("class"))
        device.driver = try tree.linkName(folder + "/driver")
        if tree.exists(folder + "/driver_override") {
            let text = try tree.value(folder + "/driver_override")
            device.driverOverride = text.isEmpty || text == "(null)" ? nil : text
        }
        device.iommuGroup = try tree.linkName(folder + "/iommu_group").flatMap { Int($0) }
        if let total = try optionalInt("sriov_totalvfs") {
            let entries = try tree.list(folder)
            var vfs: [Int: PCIAddress] = [:]
            for entry in entries where entry.hasPrefix("virtfn") {
                if let number = Int(entry.dropFirst("virtfn".count)), let vf = try linkedAddress(entry) {
                    vfs[number] = vf
                }
            }
            device.sriov = SRIOVFacts(totalVFs: total, numVFs: try optionalInt("sriov_numvfs") ?? 0,
                                      virtualFunctions: vfs,
                                      driversAutoprobe: try optionalInt("sriov_drivers_autoprobe").map { $0 != 0 })
        }
        device.physicalFunction = try linkedAddress("physfn")
        if tree.exists(folder + "/net") { device.netdevs = try tree.list(folder + "/net") }
        return device
    }
}
