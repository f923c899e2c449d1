/// `GET /v1/cluster`: the cluster as this daemon sees it in etcd. Without `--cluster`, `enabled` is false and the
/// lists are empty.
public struct ClusterReport: Sendable, Codable, Equatable {
    public struct Host: Sendable, Codable, Equatable {
        public var name: String
        /// Where its API listens, as it published it.
        public var address: String
        /// The VMs it owns.
        public var vms: [String]
        /// What it can take, as it last published it (nil: a host that has not published it yet).
        public var capacity: HostCapacity?
        /// Marked by `corral host evacuate`: it takes no new VMs until `corral host restore`.
        public var draining: Bool
        /// The VMs an evacuation moved away and where to (VM → host); `restore` brings them back.
        public var moved: [String: String]

        public init(name: String, address: String, vms: [String], capacity: HostCapacity? = nil,
                    draining: Bool = false, moved: [String: String] = [:]) {
            self.name = name
            self.address = address
            self.vms = vms
            self.capacity = capacity
            self.draining = draining
            self.moved = moved
        }
    }

    public var enabled: Bool
    /// This daemon's host name.
    public var host: String?
    /// `alive`, `unreachable` (its last renewal failed) or `joining` (no lease).
    public var state: String?
    /// Live hosts (a host whose lease expired is not listed), by name.
    public var hosts: [Host]
    /// VMs whose owner key names a host that is no longer live (their owner's lease keeps the key, so normally none).
    public var orphans: [String]
    /// Why the cluster could not be read, when it could not.
    public var problem: String?

    public init(enabled: Bool, host: String? = nil, state: String? = nil, hosts: [Host] = [], orphans: [String] = [],
                problem: String? = nil) {
        self.enabled = enabled
        self.host = host
        self.state = state
        self.hosts = hosts
        self.orphans = orphans
        self.problem = problem
    }
}

/// What a host can take and has committed, published with its host key and refreshed as VMs come and go.
public struct HostCapacity: Sendable, Codable, Equatable {
    public var cpus: Int
    public var memoryBytes: UInt64
    /// The daemon's admission limits (`--cpu-overcommit`, `--memory-overcommit`); nil: unlimited.
    public var cpuRatioLimit: Double?
    public var memoryRatioLimit: Double?
    /// Online vCPUs and guest memory of the VMs it runs (or is receiving).
    public var committedVCPUs: Int
    public var committedMemoryBytes: UInt64
    /// The host CPU (`model name` of /proc/cpuinfo): a VM with `cpu.model: host` only moves between equal ones.
    public var cpuModel: String
    /// The default QEMU's version (`qemu-system-x86_64 --version`), e.g. `7.2.15`; a VM never moves to an older one.
    public var qemuVersion: String?

    public init(cpus: Int, memoryBytes: UInt64, cpuRatioLimit: Double? = nil, memoryRatioLimit: Double? = nil,
                committedVCPUs: Int = 0, committedMemoryBytes: UInt64 = 0, cpuModel: String, qemuVersion: String?) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.cpuRatioLimit = cpuRatioLimit
        self.memoryRatioLimit = memoryRatioLimit
        self.committedVCPUs = committedVCPUs
        self.committedMemoryBytes = committedMemoryBytes
        self.cpuModel = cpuModel
        self.qemuVersion = qemuVersion
    }
}

/// `corral/drain/HOST` in etcd, written by `corral host evacuate` (no lease: a drain outlives a daemon restart).
public struct DrainRecord: Sendable, Codable, Equatable {
    /// True from `evacuate` until `restore`: the host takes no new VM.
    public var draining: Bool
    public var since: Double
    /// The VMs moved away and their destination; `restore` removes each one it brings back.
    public var moved: [String: String]

    public init(draining: Bool, since: Double, moved: [String: String] = [:]) {
        self.draining = draining
        self.since = since
        self.moved = moved
    }
}
