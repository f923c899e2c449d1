/// `corral hostdev ls` (`GET /v1/hostdevs`): the host's PCI devices by IOMMU group, its SR-IOV physical functions,
/// and which VM holds what.
public struct HostDeviceReport: Sendable, Codable, Equatable {
    /// `/sys/class/iommu` entries (`dmar0`…); empty: no IOMMU is enabled and nothing can be assigned.
    public var iommu: [String]
    /// IOMMU groups in order; devices without a group (no IOMMU) are in one entry with `number` nil.
    public var groups: [Group]
    public var physicalFunctions: [PhysicalFunction]

    public struct Device: Sendable, Codable, Equatable {
        public var address: String
        /// `vendor:device`, hexadecimal (`8086:10fb`).
        public var ids: String
        /// The class in words (`Ethernet`, `VGA`, `PCI bridge`), or its code.
        public var kind: String
        public var driver: String?
        /// The VM that holds it.
        public var vm: String?
        /// For a VF: its PF.
        public var physicalFunction: String?

        public init(address: String, ids: String, kind: String, driver: String?, vm: String?,
                    physicalFunction: String? = nil) {
            self.address = address
            self.ids = ids
            self.kind = kind
            self.driver = driver
            self.vm = vm
            self.physicalFunction = physicalFunction
        }
    }

    public struct Group: Sendable, Codable, Equatable {
        public var number: Int?
        public var devices: [Device]
        /// Members bound to host drivers (not vfio-pci or pci-stub, not bridges): while they are, no member of the
        /// group can be assigned.
        public var hostBound: [String]

        public init(number: Int?, devices: [Device], hostBound: [String]) {
            self.number = number
            self.devices = devices
            self.hostBound = hostBound
        }
    }

    public struct PhysicalFunction: Sendable, Codable, Equatable {
        public var address: String
        public var netdev: String?
        public var totalVFs: Int
        public var numVFs: Int
        /// VFs held by VMs.
        public var usedVFs: Int
        public var vfs: [VF]

        public struct VF: Sendable, Codable, Equatable {
            public var index: Int
            public var address: String
            public var driver: String?
            public var vm: String?

            public init(index: Int, address: String, driver: String?, vm: String?) {
                self.index = index
                self.address = address
                self.driver = driver
                self.vm = vm
            }
        }

        public init(address: String, netdev: String?, totalVFs: Int, numVFs: Int, usedVFs: Int, vfs: [VF]) {
            self.address = address
            self.netdev = netdev
            self.totalVFs = totalVFs
            self.numVFs = numVFs
            self.usedVFs = usedVFs
            self.vfs = vfs
        }
    }

    public init(iommu: [String], groups: [Group], physicalFunctions: [PhysicalFunction]) {
        self.iommu = iommu
        self.groups = groups
        self.physicalFunctions = physicalFunctions
    }
}

/// What `rm` does with a VM's managed volumes (`--delete-volumes`, `--keep-volumes`); a VM that has some is not
/// removed without one.
public enum VolumeDisposition: String, Sendable, Codable, CaseIterable {
    case delete
    /// Moved to `STATE/volumes/NAME/` before the VM's folder goes.
    case keep
}

/// `corral volume ls` (`GET /v1/volumes`): every disk of every VM, with what `qemu-img info` says of its image.
public struct VolumeInfo: Sendable, Codable, Equatable {
    public var vm: String
    public var id: String
    public var file: String
    public var format: String
    /// A volume corral keeps in the VM's folder (made from a size alone).
    public var managed: Bool
    /// Plugged at run time (`corral disk add`).
    public var plugged: Bool
    public var virtualBytes: UInt64?
    /// What the image takes on the host's storage.
    public var allocatedBytes: UInt64?
    public var backing: String?
    /// Why the sizes are missing (no such file, qemu-img failed).
    public var problem: String?

    public init(vm: String, id: String, file: String, format: String, managed: Bool, plugged: Bool,
                virtualBytes: UInt64? = nil, allocatedBytes: UInt64? = nil, backing: String? = nil,
                problem: String? = nil) {
        self.vm = vm
        self.id = id
        self.file = file
        self.format = format
        self.managed = managed
        self.plugged = plugged
        self.virtualBytes = virtualBytes
        self.allocatedBytes = allocatedBytes
        self.backing = backing
        self.problem = problem
    }
}
