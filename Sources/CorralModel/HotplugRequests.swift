/// `corral disk add`: attach an existing image (`file`), create one (`file` + `size`), or create a managed volume in
/// the VM's folder (`size` alone).
public struct DiskAddRequest: Sendable, Codable, Equatable {
    public var id: String
    /// Absolute path (the CLI resolves relative paths against its working directory); nil: a managed volume.
    public var file: String?
    public var format: DiskFormat?
    /// Create the image with this size (`1G`, `512M`); the file must not exist yet.
    public var size: String?
    public var readonly: Bool
    public var bus: DiskBus?
    /// A base image (absolute path) to make the disk a new qcow2 overlay on; QEMU only reads the base.
    public var backing: String?

    public init(id: String, file: String?, format: DiskFormat? = nil, size: String? = nil, readonly: Bool = false,
                bus: DiskBus? = nil, backing: String? = nil) {
        self.backing = backing
        self.id = id
        self.file = file
        self.format = format
        self.size = size
        self.readonly = readonly
        self.bus = bus
    }
}

/// `corral nic add`.
public struct NICAddRequest: Sendable, Codable, Equatable {
    public var id: String
    public var mode: NICMode?
    public var bridge: String?
    public var ifname: String?
    /// `--mode network`: the managed network.
    public var network: String?
    /// `--mode macvtap`: the host interface it sits on, and how it shares it (nil: bridge).
    public var parent: String?
    public var macvtapMode: MacvtapMode?
    /// nil → a stable 52:54:00 MAC derived from the VM name and NIC id.
    public var mac: String?
    public var model: NICModel?

    public init(id: String, mode: NICMode? = nil, bridge: String? = nil, ifname: String? = nil, network: String? = nil,
                parent: String? = nil, macvtapMode: MacvtapMode? = nil, mac: String? = nil, model: NICModel? = nil) {
        self.network = network
        self.id = id
        self.mode = mode
        self.bridge = bridge
        self.ifname = ifname
        self.parent = parent
        self.macvtapMode = macvtapMode
        self.mac = mac
        self.model = model
    }
}

/// `corral mem NAME --add SIZE`: one pc-dimm.
public struct MemoryAddRequest: Sendable, Codable, Equatable {
    /// nil → `dimm0`, `dimm1`, …
    public var id: String?
    public var size: String

    public init(id: String? = nil, size: String) {
        self.id = id
        self.size = size
    }
}

/// `corral cpu NAME COUNT` (`POST /v1/vms/{name}/cpus {"count": N}`).
public struct CPUCountRequest: Sendable, Codable, Equatable {
    public var count: Int
    public init(count: Int) { self.count = count }

    /// The count's own rule; the VM's `cpu.max` is checked by the daemon, which knows the profile.
    public func validate() throws(RequestProblems) {
        try RequestProblems.check(count < 1 ? ["COUNT must be at least 1, got \(count)"] : [])
    }
}

/// `corral balloon NAME SIZE` (`POST /v1/vms/{name}/balloon {"size": "384M"}`).
public struct BalloonRequest: Sendable, Codable, Equatable {
    public var size: String
    public init(size: String) { self.size = size }

    /// A size corral reads (`384M`, `1G`); the VM's memory bounds are the daemon's to check.
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        do { _ = try ByteSize(parsing: size) } catch { problems.append("SIZE: \(error.description)") }
        try RequestProblems.check(problems)
    }
}

/// `corral hostdev add NAME --id ID (--pci ADDR | --vf-of PF)`: a host PCI device, or a VF corral chooses from a PF
/// (by address or by its interface name), plugged into a running VM.
public struct HostDeviceAddRequest: Sendable, Codable, Equatable {
    public var id: String
    /// The device's host address (`0000:65:00.0`).
    public var pci: String?
    /// The PF to take a VF from: its address or its host interface.
    public var vfOf: String?
    /// With `vfOf`: the VF's MAC (nil: derived from the VM and device id) and VLAN.
    public var mac: String?
    public var vlan: Int?

    public init(id: String, pci: String? = nil, vfOf: String? = nil, mac: String? = nil, vlan: Int? = nil) {
        self.id = id
        self.pci = pci
        self.vfOf = vfOf
        self.mac = mac
        self.vlan = vlan
    }
}

extension HostDeviceAddRequest {
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if let problem = DeviceID.problem(id, flag: "--id") { problems.append(problem) }
        if (pci == nil) == (vfOf == nil) {
            problems.append("give one of --pci ADDRESS (a host device) or --vf-of PF (a VF of that PF, by address or interface)")
        }
        if let pci, (try? PCIAddress(parsing: pci)) == nil {
            problems.append("--pci: '\(pci)' is not a PCI address like 0000:65:00.0")
        }
        if let vfOf, (try? PCIAddress(parsing: vfOf)) == nil, !InterfaceName.isValid(vfOf) {
            problems.append("--vf-of: '\(vfOf)' is neither a PCI address like 0000:65:00.0 nor an interface name "
                + "(\(InterfaceName.rule))")
        }
        if pci != nil, mac != nil || vlan != nil { problems.append("--mac and --vlan go with --vf-of, not --pci") }
        if let mac {
            if !MACAddress.isValid(mac) {
                problems.append("--mac: '\(mac)' is not a MAC address like 52:54:00:12:34:56")
            } else if !MACAddress.isUnicast(mac) {
                problems.append("--mac: '\(mac)' is a multicast address; the first octet must be even")
            }
        }
        if let vlan, !(1...4094).contains(vlan) { problems.append("--vlan: \(vlan) is outside 1…4094") }
        try RequestProblems.check(problems)
    }
}
