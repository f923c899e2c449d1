import CorralModel

/// Why no VF could be had from a PF.
public enum VFAllocationError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSuchNetdev(String)
    /// The interface is not a PCI device (no `/sys/class/net/NAME/device` naming a PCI address).
    case notPCI(netdev: String)
    case noSuchDevice(PCIAddress)
    /// The device has no `sriov_totalvfs`: it cannot make VFs.
    case notSRIOV(PCIAddress)
    case tooMany(pf: PCIAddress, wanted: Int, total: Int)
    /// Changing a non-zero VF count means writing 0 first, which would remove VFs that VMs use.
    case wouldRemoveVFsInUse(pf: PCIAddress, current: Int, wanted: Int, inUse: [PCIAddress])
    /// Every VF is held, reserved or used by the host: each with why.
    case noFreeVF(pf: PCIAddress, reasons: [String])
    case kernel(KernelFileError)

    public var description: String {
        switch self {
        case .noSuchNetdev(let name):
            return "no network interface \(name) (no /sys/class/net/\(name))"
        case .notPCI(let name):
            return "\(name) is not a PCI device's interface (no PCI address behind /sys/class/net/\(name)/device)"
        case .noSuchDevice(let address):
            return "no PCI device \(address) on this host"
        case .notSRIOV(let address):
            return "\(address) does not support SR-IOV (no /sys/bus/pci/devices/\(address)/sriov_totalvfs)"
        case .tooMany(let pf, let wanted, let total):
            return "\(pf) can have at most \(total) VFs, \(wanted) asked"
        case .wouldRemoveVFsInUse(let pf, let current, let wanted, let inUse):
            return "\(pf) has \(current) VFs and \(wanted) are wanted, but the kernel only changes a non-zero count "
                + "through 0, which would remove VFs in use: \(inUse.map(\.description).joined(separator: ", ")); "
                + "stop their VMs first, or ask for at most \(current)"
        case .noFreeVF(let pf, let reasons):
            return "no free VF on \(pf): " + reasons.joined(separator: "; ")
        case .kernel(let cause):
            return cause.description
        }
    }
}

/// A VF set aside for one VM: give it back with `VFAllocator.release`.
public struct VFReservation: Sendable, Codable, Equatable {
    public var physicalFunction: PCIAddress
    /// The PF's network interface, for the VF's settings over netlink (`VFNetConfig`).
    public var pfNetdev: String?
    /// The VF's number on its PF (`virtfnN`).
    public var index: Int
    public var address: PCIAddress

    public init(physicalFunction: PCIAddress, pfNetdev: String?, index: Int, address: PCIAddress) {
        self.physicalFunction = physicalFunction
        self.pfNetdev = pfNetdev
        self.index = index
        self.address = address
    }
}

/// The pure SR-IOV rules: what to write to `sriov_numvfs`, and which VF to take.
public enum VFChoice {
    /// What the VF count needs.
    public enum CountChange: Sendable, Equatable {
        /// Enough VFs exist.
        case keep
        /// None exist: turn autoprobe off, write `count`.
        case create(count: Int)
        /// Some exist, none in use: autoprobe off, write 0, then `count` (the kernel refuses a non-zero to non-zero
        /// change with EBUSY).
        case recreate(from: Int, count: Int)
    }

    /// The change that gives `pf` at least `wanted` VFs; `inUse`: its VFs held by VMs or reserved. Never shrinks.
    public static func countChange(pf: PCIAddress, facts: SRIOVFacts, wanted: Int,
                                   inUse: [PCIAddress]) throws(VFAllocationError) -> CountChange {
        guard wanted <= facts.totalVFs else { throw .tooMany(pf: pf, wanted: wanted, total: facts.totalVFs) }
        if facts.numVFs >= wanted { return .keep }
        if facts.numVFs == 0 { return .create(count: wanted) }
        guard inUse.isEmpty else {
            throw .wouldRemoveVFsInUse(pf: pf, current: facts.numVFs, wanted: wanted, inUse: inUse.sorted())
        }
        return .recreate(from: facts.numVFs, count: wanted)
    }

    /// The host interfaces of `pf`'s VFs that the chooser must ask about (VFs on a host network driver).
    public static func netdevsToCheck(pf: PCIDevice, in inventory: PCIInventory) -> [String] {
        (pf.sriov?.virtualFunctions.values.sorted() ?? []).flatMap { inventory[$0]?.netdevs ?? [] }
    }

    /// The lowest-numbered VF of `pf` that is not in `unavailable` (held or reserved) and whose interfaces, if any,
    /// are down without addresses (`states`; an interface missing from it counts as in use).
    public static func choose(pf: PCIDevice, in inventory: PCIInventory, unavailable: Set<PCIAddress>,
                              states: [String: NetdevState])
        throws(VFAllocationError) -> (index: Int, address: PCIAddress)
    {
        let vfs = (pf.sriov?.virtualFunctions ?? [:]).sorted { $0.key < $1.key }
        var reasons: [String] = []
        for (index, address) in vfs {
            if unavailable.contains(address) {
                reasons.append("VF \(index) (\(address)) is taken")
                continue
            }
            let busy = (inventory[address]?.netdevs ?? []).filter { states[$0]?.isIdle != true }
            if !busy.isEmpty {
                reasons.append("VF \(index) (\(address)) has interface \(busy.joined(separator: ", ")) up or addressed")
                continue
            }
            return (index, address)
        }
        if vfs.isEmpty { reasons.append("it has no VFs") }
        throw .noFreeVF(pf: pf.address, reasons: reasons)
    }
}
