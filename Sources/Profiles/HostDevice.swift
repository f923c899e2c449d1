import CorralModel

/// A host PCI device given to the guest (`hostdevs:` in a profile): a whole device by address, a virtual function
/// corral picks from an SR-IOV physical function, or (for hosts without either) an emulated stand-in. Exactly one
/// of `pci`, `vf` and `emulated` is set.
public struct HostDevice: Sendable, Equatable, Codable {
    public var id: String
    /// A device by its host address, bound to vfio-pci by corral.
    public var pci: PCIAddress?
    /// With `pci`: every function of the device's slot (a GPU and its audio function); the address is function 0.
    public var allFunctions: Bool
    /// The device's option ROM: nil leaves QEMU's default (exposed), false hides it (`rombar=0`).
    public var rombar: Bool?
    /// An option ROM image to expose instead of the device's own.
    public var romfile: String?
    /// A free virtual function of an SR-IOV physical function, with its network settings.
    public var vf: VirtualFunction?
    /// An emulated device standing in for a VF (`e1000e`, `virtio-net`): the failover choreography on hosts without SR-IOV
    /// (tests, demos). Never bound to anything on the host.
    public var emulated: EmulatedPrimary?
    /// With `vf` (or `emulated`): the id of a virtio-net NIC of the profile that stands by for this device
    /// (virtio-net failover): the guest bonds the two, and the VM can live-migrate (the device is unplugged for the
    /// move and the destination's own one plugged after it).
    public var failover: String?

    public init(id: String, pci: PCIAddress? = nil, allFunctions: Bool = false, rombar: Bool? = nil,
                romfile: String? = nil, vf: VirtualFunction? = nil, emulated: EmulatedPrimary? = nil,
                failover: String? = nil) {
        self.id = id
        self.pci = pci
        self.allFunctions = allFunctions
        self.rombar = rombar
        self.romfile = romfile
        self.vf = vf
        self.emulated = emulated
        self.failover = failover
    }

    /// What kind of device this is, for messages.
    public var kind: String {
        if pci != nil { return "pci" }
        if vf != nil { return "vf" }
        return "emulated"
    }
}

/// Which physical function to take a VF from, and what the VF looks like on the network.
public struct VirtualFunction: Sendable, Equatable, Codable {
    /// The physical function by address…
    public var pf: PCIAddress?
    /// …or by its host network interface.
    public var netdev: String?
    /// The VF's MAC; nil: a stable MAC derived from the VM and device (or, with `failover`, the paired NIC's).
    public var mac: String?
    /// 802.1Q VLAN the PF tags the VF's traffic with (1…4094); nil: untagged.
    public var vlan: Int?
    /// Let the VF change its MAC and enter promiscuous mode.
    public var trust: Bool?
    /// Drop frames whose source MAC is not the VF's.
    public var spoofchk: Bool?

    public init(pf: PCIAddress? = nil, netdev: String? = nil, mac: String? = nil, vlan: Int? = nil, trust: Bool? = nil,
                spoofchk: Bool? = nil) {
        self.pf = pf
        self.netdev = netdev
        self.mac = mac
        self.vlan = vlan
        self.trust = trust
        self.spoofchk = spoofchk
    }
}

public enum EmulatedPrimary: String, Sendable, Codable, CaseIterable {
    case e1000e
    /// A second virtio-net device (without `failover`): the primary any guest kernel can drive.
    case virtioNet = "virtio-net"

    /// The QEMU device.
    public var driver: String {
        switch self {
        case .e1000e: return "e1000e"
        case .virtioNet: return "virtio-net-pci"
        }
    }
}
