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
    /// Its state folder cannot be read (`problem` says why): listed so the operator sees it, removable, nothing else.
    case broken
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
        /// The managed network it is on (`mode: network`).
        public var network: String?
        /// The guest's addresses on this NIC (IPv4 first, then IPv6; no loopback or link-local ones): from its guest
        /// agent, else from the managed network's DHCP leases; empty when unknown.
        public var addresses: [String]
        /// Where `addresses` come from: `agent` or `dhcp`; nil when there are none.
        public var addressSource: String?
        public init(id: String, mac: String, mode: String, network: String? = nil, addresses: [String] = [],
                    addressSource: String? = nil) {
            self.id = id
            self.mac = mac
            self.mode = mode
            self.network = network
            self.addresses = addresses
            self.addressSource = addressSource
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            mac = try c.decode(String.self, forKey: .mac)
            mode = try c.decode(String.self, forKey: .mode)
            network = try c.decodeIfPresent(String.self, forKey: .network)
            addresses = try c.decodeIfPresent([String].self, forKey: .addresses) ?? []
            addressSource = try c.decodeIfPresent(String.self, forKey: .addressSource)
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
    /// What is wrong with the VM when something is (a lost QMP monitor, a state folder that cannot be read).
    public var problem: String?
    /// While `state` is `migrating`: where to and the latest progress (the same value `corral migrate` streams);
    /// absent otherwise.
    public var migration: OutgoingMigrationInfo?
    /// With a guest agent channel (`agent: true`) while QEMU runs: `connected` (it answered) or `not answering`;
    /// absent otherwise.
    public var agent: String?
    /// The unprivileged uid (and gid) the VM's QEMU runs as; absent when it runs as root.
    public var uid: UInt32?
    /// How the VM's QEMU is confined, in words (`uid 2000000, no capabilities, no_new_privs, seccomp`, or
    /// `none: QEMU runs as root`).
    public var confinement: String?
    /// The VM's host devices (profile and plugged); absent when it has none.
    public var hostdevs: [HostDeviceInfo]?
    /// CPU time QEMU has used since it started (user + system, every vCPU and I/O thread), in seconds; absent
    /// without a QEMU process. The dashboard's CPU graph is its rate.
    public var cpuSeconds: Double?
    /// The VM's display (`display:` in its profile); absent when it has none.
    public var display: DisplayInfo?

    /// `status.display`: the guest's video device and whether a VNC client can attach (`corral vnc`).
    public struct DisplayInfo: Sendable, Codable, Equatable {
        public var vga: String
        public var vnc: Bool

        public init(vga: String, vnc: Bool) {
            self.vga = vga
            self.vnc = vnc
        }
    }

    /// One host device of a VM.
    public struct HostDeviceInfo: Sendable, Codable, Equatable {
        public var id: String
        /// `pci`, `vf` or `emulated`.
        public var kind: String
        /// The host functions the VM holds now (empty while it is stopped; a VF's address once chosen).
        public var host: [String]
        /// `profile` or `plugged` (`corral hostdev add`).
        public var source: String
        /// The NIC standing by for it (virtio-net failover).
        public var failover: String?

        public init(id: String, kind: String, host: [String], source: String, failover: String? = nil) {
            self.id = id
            self.kind = kind
            self.host = host
            self.source = source
            self.failover = failover
        }
    }

    public init(name: String, state: VMState, pid: Int32?, accel: String, uptimeSeconds: Double?, cpus: CPUs,
                memory: MemoryInfo, disks: [DiskInfo], nics: [NICInfo], qmpSocket: String, serialLog: String,
                restartCount: Int, lastExit: String?, unplugPending: [String] = [], problem: String? = nil,
                migration: OutgoingMigrationInfo? = nil, agent: String? = nil, uid: UInt32? = nil,
                confinement: String? = nil, hostdevs: [HostDeviceInfo]? = nil, cpuSeconds: Double? = nil,
                display: DisplayInfo? = nil) {
        self.hostdevs = hostdevs
        self.cpuSeconds = cpuSeconds
        self.display = display
        self.agent = agent
        self.uid = uid
        self.confinement = confinement
        self.problem = problem
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

/// `status.migration`: an outgoing migration in progress.
public struct OutgoingMigrationInfo: Sendable, Codable, Equatable {
    /// The destination daemon, as given to `corral migrate --to`.
    public var to: String
    /// The latest `query-migrate` figures; nil until QEMU reported any.
    public var progress: MigrationProgress?

    public init(to: String, progress: MigrationProgress? = nil) {
        self.to = to
        self.progress = progress
    }
}

/// The name of an event: one of corral's own, or a QMP event by its QMP name. On the wire it is the plain string
/// (`started`, `migration-progress`, `SHUTDOWN`).
public enum CorralEventName: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    case defined, started, startFailed, stopped, crashed, restarted, reattached, removed
    case balloonSet, tuningChanged, unplugPending
    case cpusChanged, diskAdded, diskRemoved, nicAdded, nicRemoved, memoryAdded, memoryRemoved
    case hostdevAdded, hostdevRemoved
    case snapshotCreated, snapshotReverted, snapshotRemoved
    case migrationStarted, migrationProgress, migrated, migrationFailed, incomingReady, migratedIn
    /// A QMP event QEMU sent (`SHUTDOWN`, `STOP`, `RESUME`, `DEVICE_DELETED`, …).
    case qmp(String)
    /// A name this build does not know (from a newer daemon).
    case unknown(String)

    private static let table: [(CorralEventName, String)] = [
        (.defined, "defined"), (.started, "started"), (.startFailed, "start-failed"), (.stopped, "stopped"),
        (.crashed, "crashed"), (.restarted, "restarted"), (.reattached, "reattached"), (.removed, "removed"),
        (.balloonSet, "balloon-set"), (.tuningChanged, "tuning-changed"), (.unplugPending, "unplug-pending"),
        (.cpusChanged, "cpus-changed"), (.diskAdded, "disk-added"), (.diskRemoved, "disk-removed"),
        (.nicAdded, "nic-added"), (.nicRemoved, "nic-removed"), (.memoryAdded, "memory-added"),
        (.memoryRemoved, "memory-removed"), (.hostdevAdded, "hostdev-added"), (.hostdevRemoved, "hostdev-removed"),
        (.snapshotCreated, "snapshot-created"), (.snapshotReverted, "snapshot-reverted"),
        (.snapshotRemoved, "snapshot-removed"),
        (.migrationStarted, "migration-started"), (.migrationProgress, "migration-progress"),
        (.migrated, "migrated"), (.migrationFailed, "migration-failed"), (.incomingReady, "incoming-ready"),
        (.migratedIn, "migrated-in"),
    ]

    /// Every name corral itself publishes.
    public static var corralNames: [CorralEventName] { table.map(\.0) }

    public init(_ text: String) {
        if let known = Self.table.first(where: { $0.1 == text }) {
            self = known.0
        } else if !text.isEmpty, text.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) {
            self = .qmp(text)
        } else {
            self = .unknown(text)
        }
    }

    /// `"started"`, `"SHUTDOWN"`: the same as `init(_:)`.
    public init(stringLiteral text: String) { self.init(text) }

    public var text: String {
        switch self {
        case .qmp(let name), .unknown(let name): return name
        default: return Self.table.first(where: { $0.0 == self })!.1
        }
    }

    public var description: String { text }

    /// QMP events come from QEMU; every other name from corral.
    public var source: CorralEvent.Source {
        if case .qmp = self { return .qmp }
        return .corral
    }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

/// One event: QMP's own (SHUTDOWN, STOP, RESUME, DEVICE_DELETED, …) or corral's (`CorralEventName`).
public struct CorralEvent: Sendable, Codable, Equatable {
    public enum Source: String, Sendable, Codable { case qmp, corral }
    /// Seconds since the Unix epoch.
    public var time: Double
    public var vm: String
    public var source: Source
    public var name: CorralEventName
    public var data: JSONValue?

    /// `source` follows from the name: QMP events are QEMU's, the rest corral's.
    public init(time: Double, vm: String, name: CorralEventName, data: JSONValue? = nil) {
        self.time = time
        self.vm = vm
        self.source = name.source
        self.name = name
        self.data = data
    }
}
