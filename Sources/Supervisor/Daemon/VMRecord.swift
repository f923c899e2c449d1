import HostDevices
import Foundation
import CorralModel
import QEMUCommand

/// What the daemon remembers about one VM between restarts (`vm.json` in its folder).
/// The VM's configuration itself is `live.json` (profile + hotplugged devices).
public struct VMRecord: Sendable, Codable, Equatable {
    public var name: String
    /// The profile it was defined from (for display; the resolved copy is in live.json).
    public var profilePath: String?
    public var accel: ResolvedAccel
    /// True from `up`/`start` until `stop`/`kill`: the restart policy applies only then.
    public var desiredRunning: Bool
    /// Last state written; the live state comes from the process and QMP.
    public var state: VMState
    public var pid: Int32?
    /// Seconds since the epoch when the current QEMU started.
    public var startedAt: Double?
    public var restartCount: Int
    /// Times of recent automatic restarts (for the restart cap).
    public var restartTimes: [Double]
    public var lastExit: String?
    public var createdAt: Double
    /// false after a manual `corral balloon` until `corral set --auto-balloon on`; nil means true.
    public var autoBalloon: Bool?
    /// Set while an outgoing migration runs: a daemon that restarts in the middle of it resolves it with the
    /// destination before anything else (QEMU goes on migrating without its daemon).
    public var migratingTo: MigrationJournal?
    /// The unprivileged uid (= gid) its QEMU runs as, allocated from the daemon's range and kept until `rm`;
    /// nil: QEMU runs as root (`--qemu-user root`, or a VM made before isolation).
    public var uid: UInt32?
    /// The host PCI devices bound to vfio-pci for this VM's QEMU (restored to their drivers when it ends).
    public var boundDevices: [BindRecord]?

    public init(name: String, profilePath: String?, accel: ResolvedAccel, now: Double) {
        self.name = name
        self.profilePath = profilePath
        self.accel = accel
        self.desiredRunning = false
        self.state = .stopped
        self.pid = nil
        self.startedAt = nil
        self.restartCount = 0
        self.restartTimes = []
        self.lastExit = nil
        self.createdAt = now
    }

    /// This record once QEMU was spawned at `time` as `pid` and is expected to reach `state`: what the daemon
    /// writes while QEMU starts, so that `vm.json` names the process before QMP even answers.
    public func spawned(pid: Int32, at time: Double, expecting state: VMState) -> VMRecord {
        var record = self
        record.pid = pid
        record.startedAt = time
        record.state = state
        record.desiredRunning = true
        return record
    }
}

/// Where an outgoing migration went, and the token to ask about it.
public struct MigrationJournal: Sendable, Codable, Equatable {
    public var destination: HostPort
    public var token: String?
    /// The guest ran when the migration began (a paused one stays paused when it is rolled back).
    public var sourceWasRunning: Bool

    public init(destination: HostPort, token: String?, sourceWasRunning: Bool) {
        self.destination = destination
        self.token = token
        self.sourceWasRunning = sourceWasRunning
    }
}

/// Reading and writing a VM's folder (`vm.json`, `live.json`), atomically.
struct VMStore: Sendable {
    var paths: VMPaths

    var recordPath: String { paths.folder + "/vm.json" }
    var eventsPath: String { paths.folder + "/events.log" }

    func save(_ record: VMRecord) throws {
        try FileOps.writeAtomically(Array(try JSONEncoder.corral.encode(record)), to: recordPath)
    }

    /// Both files of a new VM, put in place without fsync (`FileOps.stage`): the first launch makes them durable
    /// (`saveSpawned`) while QEMU starts, before `corral up` hears back.
    func stage(_ record: VMRecord, _ config: LiveConfig) throws {
        try FileOps.stage([
            (recordPath, Array(try JSONEncoder.corral.encode(record))),
            (paths.liveConfig, Array(try JSONEncoder.corral.encode(config))),
        ])
    }

    /// The record of a QEMU just spawned, durably, with live.json synced too (the first launch of a VM finds it
    /// staged; otherwise that sync finds nothing to write).
    func saveSpawned(_ record: VMRecord) throws {
        try FileOps.writeAtomically([(recordPath, Array(try JSONEncoder.corral.encode(record)))],
                                    alsoSyncing: [paths.liveConfig])
    }

    func save(_ config: LiveConfig) throws {
        try FileOps.writeAtomically(Array(try JSONEncoder.corral.encode(config)), to: paths.liveConfig)
    }

    func loadRecord() throws -> VMRecord? {
        guard let bytes = try FileOps.read(recordPath) else { return nil }
        return try JSONDecoder().decode(VMRecord.self, from: Data(bytes))
    }

    func loadConfig() throws -> LiveConfig? {
        guard let bytes = try FileOps.read(paths.liveConfig) else { return nil }
        return try JSONDecoder().decode(LiveConfig.self, from: Data(bytes))
    }
}
