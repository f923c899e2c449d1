import JSON

/// `corral up`'s request.
public struct UpRequest: Sendable, Codable, Equatable {
    /// Absolute path of the profile on the daemon's host.
    public var profile: String
    /// Overrides the profile's `name`.
    public var name: String?
    public var accel: Accel?
    public var paused: Bool

    public init(profile: String, name: String? = nil, accel: Accel? = nil, paused: Bool = false) {
        self.profile = profile
        self.name = name
        self.accel = accel
        self.paused = paused
    }
}

public enum VMState: String, Sendable, Codable, CaseIterable {
    case starting, running, paused, stopped, crashed, migrating, incoming
}

/// `status --json`: stable, documented fields (docs/api.md).
public struct VMStatus: Sendable, Codable, Equatable {
    public struct CPUs: Sendable, Codable, Equatable {
        public var online: Int
        public var max: Int
        public init(online: Int, max: Int) { self.online = online; self.max = max }
    }

    public struct MemoryInfo: Sendable, Codable, Equatable {
        public var sizeBytes: UInt64
        public var maxBytes: UInt64
        /// Current balloon size as QEMU reports it (`query-balloon` actual); nil without a balloon or while stopped.
        public var balloonBytes: UInt64?
        public init(sizeBytes: UInt64, maxBytes: UInt64, balloonBytes: UInt64?) {
            self.sizeBytes = sizeBytes
            self.maxBytes = maxBytes
            self.balloonBytes = balloonBytes
        }
    }

    public struct DiskInfo: Sendable, Codable, Equatable {
        public var id: String
        public var file: String
        public var format: String
        public var readonly: Bool
        public var bus: String
        public init(id: String, file: String, format: String, readonly: Bool, bus: String) {
            self.id = id
            self.file = file
            self.format = format
            self.readonly = readonly
            self.bus = bus
        }
    }

    public struct NICInfo: Sendable, Codable, Equatable {
        public var id: String
        public var mac: String
        public var mode: String
        public init(id: String, mac: String, mode: String) {
            self.id = id
            self.mac = mac
            self.mode = mode
        }
    }

    public var name: String
    public var state: VMState
    public var pid: Int32?
    public var accel: String
    public var uptimeSeconds: Double?
    public var cpus: CPUs
    public var memory: MemoryInfo
    public var disks: [DiskInfo]
    public var nics: [NICInfo]
    public var qmpSocket: String
    public var serialLog: String
    public var restartCount: Int
    /// Why the VM last stopped ("guest powered off", "QEMU killed by signal 9", …); nil while it never did.
    public var lastExit: String?
    /// Devices asked to unplug whose release the guest has not confirmed (DEVICE_DELETED) yet.
    public var unplugPending: [String]
    /// While `state` is `migrating`: the latest progress (status, percent, mibPerSecond, remainingBytes,
    /// totalBytes, dirtyPagesRate, expectedDowntimeMs) and `to`; absent otherwise.
    public var migration: JSONValue?

    public init(name: String, state: VMState, pid: Int32?, accel: String, uptimeSeconds: Double?, cpus: CPUs,
                memory: MemoryInfo, disks: [DiskInfo], nics: [NICInfo], qmpSocket: String, serialLog: String,
                restartCount: Int, lastExit: String?, unplugPending: [String] = [], migration: JSONValue? = nil) {
        self.name = name
        self.state = state
        self.pid = pid
        self.accel = accel
        self.uptimeSeconds = uptimeSeconds
        self.cpus = cpus
        self.memory = memory
        self.disks = disks
        self.nics = nics
        self.qmpSocket = qmpSocket
        self.serialLog = serialLog
        self.restartCount = restartCount
        self.lastExit = lastExit
        self.unplugPending = unplugPending
        self.migration = migration
    }
}

/// One event: QMP's own (SHUTDOWN, STOP, RESUME, DEVICE_DELETED, …) or corral's
/// (started, stopped, crashed, restarted, reattached, removed, defined).
public struct CorralEvent: Sendable, Codable, Equatable {
    public enum Source: String, Sendable, Codable { case qmp, corral }
    /// Seconds since the Unix epoch.
    public var time: Double
    public var vm: String
    public var source: Source
    public var name: String
    public var data: JSONValue?

    public init(time: Double, vm: String, source: Source, name: String, data: JSONValue? = nil) {
        self.time = time
        self.vm = vm
        self.source = source
        self.name = name
        self.data = data
    }
}
