import CorralModel

/// Why a device cannot be given to a VM, with what to do about it.
public enum DeviceRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// No IOMMU is enabled: `/sys/class/iommu` is empty or `/sys/kernel/iommu_groups` is missing.
    case noIOMMU(unitsFound: Bool, groupsFound: Bool)
    case noSuchDevice(PCIAddress)
    /// The device has no `iommu_group` link.
    case noGroup(PCIAddress)
    /// Other devices of the group are bound to host drivers: `(address, driver)` each.
    case groupNotViable(device: PCIAddress, group: Int, offenders: [Offender])
    /// The device, or another device of its group, is assigned to `vm` already.
    case held(device: PCIAddress, by: PCIAddress, vm: String)

    /// A device of the group that keeps it from being assigned.
    public struct Offender: Sendable, Equatable {
        public var address: PCIAddress
        public var driver: String

        public init(address: PCIAddress, driver: String) {
            self.address = address
            self.driver = driver
        }
    }

    public var description: String {
        switch self {
        case .noIOMMU(let units, let groups):
            var missing: [String] = []
            if !units { missing.append("/sys/class/iommu is empty") }
            if !groups { missing.append("/sys/kernel/iommu_groups does not exist") }
            return "PCI passthrough needs an IOMMU and this host has none enabled (\(missing.joined(separator: ", "))): "
                + "enable VT-d or AMD-Vi in the firmware and boot the kernel with intel_iommu=on (Intel) or "
                + "amd_iommu=on (AMD), and iommu=pt"
        case .noSuchDevice(let address):
            return "no PCI device \(address) on this host (no /sys/bus/pci/devices/\(address))"
        case .noGroup(let address):
            return "\(address) has no IOMMU group (no /sys/bus/pci/devices/\(address)/iommu_group)"
        case .groupNotViable(let device, let group, let offenders):
            let list = offenders.map { "\($0.address) (bound to \($0.driver))" }.joined(separator: ", ")
            return "\(device) is in IOMMU group \(group) with devices the host still uses: \(list); a VM gets a "
                + "whole group: assign those devices to the VM too, or unbind them from their drivers, or move the "
                + "card to a slot with a group of its own"
        case .held(let device, let holder, let vm):
            if device == holder { return "\(device) is assigned to VM '\(vm)' already" }
            return "\(device) shares its IOMMU group with \(holder), which is assigned to VM '\(vm)'"
        }
    }
}

/// The pure rules of PCI assignment, over a `PCIInventory`: IOMMU present, groups viable, whole slots, one VM per
/// device.
public enum AssignmentRules {
    /// Drivers that leave a device usable by a VM's group: they do no DMA for the host.
    public static let harmlessDrivers: Set<String> = ["vfio-pci", "pci-stub"]

    /// Throws unless an IOMMU is enabled.
    public static func requireIOMMU(_ inventory: PCIInventory) throws(DeviceRefusal) {
        let units = !inventory.iommuUnits.isEmpty
        guard units && inventory.hasIOMMUGroups else {
            throw .noIOMMU(unitsFound: units, groupsFound: inventory.hasIOMMUGroups)
        }
    }

    /// Every present function of each device's slot, in address order, without repeats.
    public static func allFunctions(_ addresses: [PCIAddress], in inventory: PCIInventory) -> [PCIAddress] {
        var result: [PCIAddress] = []
        for address in addresses {
            let functions = inventory.functions(ofSlot: address)
            for function in functions.isEmpty ? [address] : functions where !result.contains(function) {
                result.append(function)
            }
        }
        return result.sorted()
    }

    /// Throws unless every other device of `address`'s group is unbound, on vfio-pci or pci-stub, a PCI bridge, or
    /// one of `assigned` (which will be bound to vfio-pci with it). Returns the group.
    @discardableResult
    public static func requireViableGroup(_ address: PCIAddress, assigned: [PCIAddress],
                                          in inventory: PCIInventory) throws(DeviceRefusal) -> Int {
        guard inventory[address] != nil else { throw .noSuchDevice(address) }
        guard let group = inventory[address]?.iommuGroup else { throw .noGroup(address) }
        let offenders = inventory.members(ofGroup: group).compactMap { member -> DeviceRefusal.Offender? in
            guard member.address != address, !assigned.contains(member.address), !member.isBridge,
                  let driver = member.driver, !harmlessDrivers.contains(driver) else { return nil }
            return DeviceRefusal.Offender(address: member.address, driver: driver)
        }
        guard offenders.isEmpty else { throw .groupNotViable(device: address, group: group, offenders: offenders) }
        return group
    }

    /// Throws when `address` is held by any VM (`vm` itself included: a device is plugged once), or another device
    /// of its group by a VM other than `vm` (`holders`: device → VM, from the daemon's bind records).
    public static func requireFree(_ address: PCIAddress, for vm: String, holders: [PCIAddress: String],
                                   in inventory: PCIInventory) throws(DeviceRefusal) {
        let group = inventory[address]?.iommuGroup
        let neighbours = group.map { inventory.members(ofGroup: $0).map(\.address) } ?? []
        for device in [address] + neighbours.filter({ $0 != address }) {
            if let holder = holders[device], holder != vm || device == address {
                throw .held(device: address, by: device, vm: holder)
            }
        }
    }

    /// What to bind for a VM asking for `requested`: every rule checked in turn (IOMMU, existence, whole slot when
    /// `allFunctions`, holders, group viability). The devices come back in address order.
    public static func plan(_ requested: [PCIAddress], allFunctions expand: Bool, for vm: String,
                            holders: [PCIAddress: String],
                            in inventory: PCIInventory) throws(DeviceRefusal) -> [PCIAddress] {
        try requireIOMMU(inventory)
        for address in requested where inventory[address] == nil { throw .noSuchDevice(address) }
        let devices = expand ? allFunctions(requested, in: inventory) : Array(Set(requested)).sorted()
        for device in devices { try requireFree(device, for: vm, holders: holders, in: inventory) }
        for device in devices { try requireViableGroup(device, assigned: devices, in: inventory) }
        return devices
    }
}
