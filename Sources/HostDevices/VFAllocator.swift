import CorralModel

/// Which physical function to take a VF from.
public enum PFReference: Sendable, Equatable, CustomStringConvertible {
    case address(PCIAddress)
    /// The PF's network interface, resolved through `/sys/class/net/NAME/device`.
    case netdev(String)

    public var description: String {
        switch self {
        case .address(let address): return address.description
        case .netdev(let name): return name
        }
    }
}

/// Hands out SR-IOV VFs, one VM at a time: makes the VFs a PF needs, then picks and reserves the lowest free one.
/// An actor, and its methods never suspend, so two reservations can never get the same VF. Reservations live until
/// `release` (call it once the VF's bind record is persisted, or when the VM no longer needs it).
public actor VFAllocator {
    public let tree: any SysfsTree
    public let netdevs: any NetdevStateProbe
    private var reserved: [PCIAddress: String] = [:]

    public init(tree: any SysfsTree, netdevs: any NetdevStateProbe) {
        self.tree = tree
        self.netdevs = netdevs
    }

    /// Reserves a VF of `pf` for `vm`. `pf` gets at least `wanted` VFs first (created with driver autoprobe off when
    /// it has none; through 0 when it has fewer and none is in use). `held`: VF → VM, the VFs VMs hold already.
    public func reserve(from pf: PFReference, wanted: Int, held: [PCIAddress: String],
                        for vm: String) throws(VFAllocationError) -> VFReservation {
        let address = try resolve(pf)
        var inventory = try scan(address)
        guard let device = inventory[address] else { throw .noSuchDevice(address) }
        guard let facts = device.sriov else { throw .notSRIOV(address) }
        let taken = Set(held.keys).union(reserved.keys)
        let inUse = facts.virtualFunctions.values.filter { taken.contains($0) }
        let folder = PCIInventory.devicesPath + "/" + address.description
        switch try VFChoice.countChange(pf: address, facts: facts, wanted: wanted, inUse: inUse) {
        case .keep:
            break
        case .create(let count):
            try write("0", folder + "/sriov_drivers_autoprobe")
            try write(String(count), folder + "/sriov_numvfs")
            inventory = try scan(address)
        case .recreate(_, let count):
            try write("0", folder + "/sriov_drivers_autoprobe")
            try write("0", folder + "/sriov_numvfs")
            try write(String(count), folder + "/sriov_numvfs")
            inventory = try scan(address)
        }
        guard let pfNow = inventory[address] else { throw .noSuchDevice(address) }
        var states: [String: NetdevState] = [:]
        for name in VFChoice.netdevsToCheck(pf: pfNow, in: inventory) {
            do { states[name] = try netdevs.state(of: name) } catch { throw .kernel(error) }
        }
        let choice = try VFChoice.choose(pf: pfNow, in: inventory, unavailable: taken, states: states)
        reserved[choice.address] = vm
        return VFReservation(physicalFunction: address, pfNetdev: pfNow.netdevs.first, index: choice.index,
                             address: choice.address)
    }

    /// Reserves a VF of `pf` for `vm` without changing a VF count the PF has: a PF without VFs gets `createIfNone`
    /// of them (at most its total), one with VFs keeps them (and refuses when none is free, rather than remaking
    /// them).
    public func reserve(from pf: PFReference, createIfNone: Int, held: [PCIAddress: String],
                        for vm: String) throws(VFAllocationError) -> VFReservation {
        let address = try resolve(pf)
        guard let facts = try scan(address)[address]?.sriov else {
            throw tree.exists(PCIInventory.devicesPath + "/" + address.description) ? .notSRIOV(address) : .noSuchDevice(address)
        }
        let wanted = facts.numVFs > 0 ? facts.numVFs : max(1, min(createIfNone, facts.totalVFs))
        return try reserve(from: .address(address), wanted: wanted, held: held, for: vm)
    }

    /// Gives a reserved VF back.
    public func release(_ vf: PCIAddress) {
        reserved[vf] = nil
    }

    /// VF → VM, the reservations not released yet.
    public var reservations: [PCIAddress: String] { reserved }

    private func resolve(_ pf: PFReference) throws(VFAllocationError) -> PCIAddress {
        switch pf {
        case .address(let address):
            return address
        case .netdev(let name):
            guard tree.exists("/sys/class/net/\(name)") else { throw .noSuchNetdev(name) }
            let target: String?
            do { target = try tree.linkName("/sys/class/net/\(name)/device") } catch { throw .kernel(error) }
            guard let target, let address = try? PCIAddress(parsing: target) else { throw .notPCI(netdev: name) }
            return address
        }
    }

    /// The PF and its VFs (not the whole bus).
    private func scan(_ pf: PCIAddress) throws(VFAllocationError) -> PCIInventory {
        guard tree.exists(PCIInventory.devicesPath + "/" + pf.description) else { throw .noSuchDevice(pf) }
        do {
            let device = try PCIInventory.scanDevice(pf, in: tree)
            var devices = [device]
            for vf in (device.sriov?.virtualFunctions.values.sorted() ?? []) {
                devices.append(try PCIInventory.scanDevice(vf, in: tree))
            }
            return PCIInventory(devices: devices, iommuUnits: [], hasIOMMUGroups: false)
        } catch {
            throw .kernel(error)
        }
    }

    private func write(_ value: String, _ path: String) throws(VFAllocationError) {
        do { try tree.write(value, to: path) } catch { throw .kernel(error) }
    }
}
