import JSON

/// Overcommit operations (`corral balloon|stats|set|host`).
public protocol TuningControl: Sendable {
    /// Sets the balloon target (e.g. "384M"); turns the automatic policy off for this VM.
    func balloon(_ name: String, size: String) async throws(ControlError) -> VMStatus
    /// The guest's memory statistics (virtio-balloon stats) and the balloon's size.
    func stats(_ name: String) async throws(ControlError) -> GuestStats
    /// Changes tuning live: cgroup weight/quota, balloon min, memory shares, automatic ballooning.
    func setTuning(_ name: String, _ request: TuningRequest) async throws(ControlError) -> VMStatus
    /// Host capacity, what is committed, the ratios and limits, KSM and balloon totals, per-VM rows.
    func host() async -> HostReport
}

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
    }

    public struct KSM: Sendable, Codable, Equatable {
        public var available: Bool
        public var running: Bool
        public var pagesSharing: Int
        public var pagesShared: Int
        public var savedBytes: UInt64
        public var managed: Bool
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
    }

    public var cpus: Ratio
    public var memory: Ratio
    public var memoryAvailableBytes: UInt64
    public var ksm: KSM
    public var balloonTotalBytes: UInt64
    public var cgroupVersion: String?
    public var vms: [Row]
}
