/// What `corral set`, `corral stats` and `corral host` send and get back.
public struct TuningRequest: Sendable, Codable, Equatable {
    public var cpuWeight: Int?
    /// Percent of one host CPU; 0 removes the quota.
    public var cpuQuotaPercent: Int?
    /// e.g. "256M"
    public var balloonMin: String?
    public var memoryShares: Int?
    public var autoBalloon: Bool?

    public init(cpuWeight: Int? = nil, cpuQuotaPercent: Int? = nil, balloonMin: String? = nil, memoryShares: Int? = nil,
                autoBalloon: Bool? = nil) {
        self.cpuWeight = cpuWeight
        self.cpuQuotaPercent = cpuQuotaPercent
        self.balloonMin = balloonMin
        self.memoryShares = memoryShares
        self.autoBalloon = autoBalloon
    }
}

public struct GuestStats: Sendable, Codable, Equatable {
    public var name: String
    /// Current balloon size (`query-balloon` actual): the memory the guest has.
    public var balloonBytes: UInt64?
    /// Last target corral set (manually or by the policy).
    public var balloonTargetBytes: UInt64?
    public var autoBalloon: Bool
    /// Seconds since the epoch of the guest's last stats update; nil before the first.
    public var lastUpdate: Double?
    /// virtio-balloon statistics as the guest reports them (`stat-free-memory`, `stat-available-memory`, …), bytes or counts.
    public var stats: [String: Int64]

    public init(name: String, balloonBytes: UInt64?, balloonTargetBytes: UInt64?, autoBalloon: Bool,
                lastUpdate: Double?, stats: [String: Int64]) {
        self.name = name
        self.balloonBytes = balloonBytes
        self.balloonTargetBytes = balloonTargetBytes
        self.autoBalloon = autoBalloon
        self.lastUpdate = lastUpdate
        self.stats = stats
    }
}

public struct HostReport: Sendable, Codable, Equatable {
    public struct Ratio: Sendable, Codable, Equatable {
        public var committed: Double
        public var capacity: Double
        public var ratio: Double
        public var limit: Double?

        public init(committed: Double, capacity: Double, ratio: Double, limit: Double?) {
            self.committed = committed
            self.capacity = capacity
            self.ratio = ratio
            self.limit = limit
        }
    }

    public struct KSM: Sendable, Codable, Equatable {
        public var available: Bool
        public var running: Bool
        public var pagesSharing: Int
        public var pagesShared: Int
        public var savedBytes: UInt64
        public var managed: Bool

        public init(available: Bool, running: Bool, pagesSharing: Int, pagesShared: Int, savedBytes: UInt64,
                    managed: Bool) {
            self.available = available
            self.running = running
            self.pagesSharing = pagesSharing
            self.pagesShared = pagesShared
            self.savedBytes = savedBytes
            self.managed = managed
        }
    }

    public struct Row: Sendable, Codable, Equatable {
        public var name: String
        public var state: VMState
        public var vcpus: Int
        public var memoryBytes: UInt64
        public var balloonBytes: UInt64?
        public var cpuWeight: Int
        public var cpuQuotaPercent: Int?
        public var memoryShares: Int
        public var autoBalloon: Bool
        /// All its memory is pinned (host devices, `memory.lock`): never ballooned, merged or overcommitted.
        public var pinned: Bool?

        public init(name: String, state: VMState, vcpus: Int, memoryBytes: UInt64, balloonBytes: UInt64?,
                    cpuWeight: Int, cpuQuotaPercent: Int?, memoryShares: Int, autoBalloon: Bool, pinned: Bool? = nil) {
            self.pinned = pinned
            self.name = name
            self.state = state
            self.vcpus = vcpus
            self.memoryBytes = memoryBytes
            self.balloonBytes = balloonBytes
            self.cpuWeight = cpuWeight
            self.cpuQuotaPercent = cpuQuotaPercent
            self.memoryShares = memoryShares
            self.autoBalloon = autoBalloon
        }
    }

    public var cpus: Ratio
    public var memory: Ratio
    public var memoryAvailableBytes: UInt64
    public var ksm: KSM
    public var balloonTotalBytes: UInt64
    public var cgroupVersion: String?
    public var vms: [Row]
    /// The uids QEMUs run as (`2000000-2065535`, or `root`) and how many are in use.
    public var qemuUsers: String?
    public var qemuUsersInUse: Int?
    /// Memory of running VMs that is pinned in host RAM (host devices, `memory.lock`): outside overcommit.
    public var pinnedMemoryBytes: UInt64?
    public init(cpus: Ratio, memory: Ratio, memoryAvailableBytes: UInt64, ksm: KSM, balloonTotalBytes: UInt64,
                cgroupVersion: String?, vms: [Row], qemuUsers: String? = nil, qemuUsersInUse: Int? = nil,
                pinnedMemoryBytes: UInt64? = nil) {
        self.pinnedMemoryBytes = pinnedMemoryBytes
        self.qemuUsers = qemuUsers
        self.qemuUsersInUse = qemuUsersInUse
        self.cpus = cpus
        self.memory = memory
        self.memoryAvailableBytes = memoryAvailableBytes
        self.ksm = ksm
        self.balloonTotalBytes = balloonTotalBytes
        self.cgroupVersion = cgroupVersion
        self.vms = vms
    }
}
