/// Everything `GET /metrics` reports, read at one moment (`MetricsControl.metricsSnapshot()`): a pure value, so the
/// exposition text is rendered without any I/O and tested with made-up figures (docs/metrics.md).
public struct MetricsSnapshot: Sendable, Equatable {
    /// One VM as the daemon sees it now. Counters are QEMU's or the kernel's own running totals: they start again
    /// at zero when the VM's QEMU does.
    public struct VM: Sendable, Equatable {
        public var name: String
        public var state: VMState
        /// False when the live figures (QMP, sysfs) did not come within the scrape's per-VM time limit: the figures
        /// corral keeps itself (state, sizes, restarts) are still there, the live ones are left out.
        public var complete: Bool
        public var vcpusOnline: Int
        public var vcpusMax: Int
        /// Boot memory plus hotplugged DIMMs.
        public var memoryBytes: UInt64
        public var memoryMaxBytes: UInt64
        /// The balloon's size and target and what the guest reports through it; nil without a balloon device or
        /// while no QEMU runs.
        public var balloon: GuestStats?
        public var disks: [Disk]
        public var nics: [NIC]
        /// While the VM migrates away: QEMU's latest `query-migrate` figures.
        public var migration: MigrationProgress?
        /// Restarts done by the restart policy.
        public var restarts: Int
        public var uptimeSeconds: Double?

        public init(name: String, state: VMState, complete: Bool = true, vcpusOnline: Int, vcpusMax: Int,
                    memoryBytes: UInt64, memoryMaxBytes: UInt64, balloon: GuestStats? = nil, disks: [Disk] = [],
                    nics: [NIC] = [], migration: MigrationProgress? = nil, restarts: Int = 0,
                    uptimeSeconds: Double? = nil) {
            self.name = name
            self.state = state
            self.complete = complete
            self.vcpusOnline = vcpusOnline
            self.vcpusMax = vcpusMax
            self.memoryBytes = memoryBytes
            self.memoryMaxBytes = memoryMaxBytes
            self.balloon = balloon
            self.disks = disks
            self.nics = nics
            self.migration = migration
            self.restarts = restarts
            self.uptimeSeconds = uptimeSeconds
        }
    }

    /// One disk's totals from QMP `query-blockstats`.
    public struct Disk: Sendable, Equatable {
        /// The disk's id in the VM (its device, for a block device corral did not name).
        public var id: String
        public var readBytes: UInt64
        public var writtenBytes: UInt64
        public var readOperations: UInt64
        public var writeOperations: UInt64
        public var flushOperations: UInt64
        /// Time spent on each kind of request, summed over requests.
        public var readSeconds: Double
        public var writeSeconds: Double
        public var flushSeconds: Double

        public init(id: String, readBytes: UInt64 = 0, writtenBytes: UInt64 = 0, readOperations: UInt64 = 0,
                    writeOperations: UInt64 = 0, flushOperations: UInt64 = 0, readSeconds: Double = 0,
                    writeSeconds: Double = 0, flushSeconds: Double = 0) {
            self.id = id
            self.readBytes = readBytes
            self.writtenBytes = writtenBytes
            self.readOperations = readOperations
            self.writeOperations = writeOperations
            self.flushOperations = flushOperations
            self.readSeconds = readSeconds
            self.writeSeconds = writeSeconds
            self.flushSeconds = flushSeconds
        }
    }

    /// One NIC. Counters only for a host interface corral made (a tap or macvtap), read from its sysfs statistics;
    /// a user-mode NIC has none.
    public struct NIC: Sendable, Equatable {
        public var id: String
        /// The host interface (`cr1a2b3c4d-net0`); nil for a user-mode NIC.
        public var device: String?
        public var traffic: Traffic?

        public init(id: String, device: String? = nil, traffic: Traffic? = nil) {
            self.id = id
            self.device = device
            self.traffic = traffic
        }
    }

    /// A NIC's totals from the guest's side: `received` is what reached the guest.
    public struct Traffic: Sendable, Equatable {
        public var receivedBytes: UInt64
        public var receivedPackets: UInt64
        public var transmittedBytes: UInt64
        public var transmittedPackets: UInt64

        public init(receivedBytes: UInt64, receivedPackets: UInt64, transmittedBytes: UInt64,
                    transmittedPackets: UInt64) {
            self.receivedBytes = receivedBytes
            self.receivedPackets = receivedPackets
            self.transmittedBytes = transmittedBytes
            self.transmittedPackets = transmittedPackets
        }
    }

    /// Outgoing migrations this daemon ran since it started.
    public struct Migrations: Sendable, Equatable {
        public var completed: UInt64
        public var failed: UInt64
        /// The guest's pause in the last completed one, as QEMU measured it.
        public var lastDowntimeSeconds: Double?

        public init(completed: UInt64 = 0, failed: UInt64 = 0, lastDowntimeSeconds: Double? = nil) {
            self.completed = completed
            self.failed = failed
            self.lastDowntimeSeconds = lastDowntimeSeconds
        }
    }

    public var vms: [VM]
    /// Capacity, what is committed and the ratios, KSM, pinned memory (the same figures as `corral host`).
    public var host: HostReport
    public var migrations: Migrations
    /// VMs whose live figures missed a scrape's time limit, since the daemon started.
    public var scrapeErrors: UInt64

    public init(vms: [VM], host: HostReport, migrations: Migrations = .init(), scrapeErrors: UInt64 = 0) {
        self.vms = vms
        self.host = host
        self.migrations = migrations
        self.scrapeErrors = scrapeErrors
    }
}
