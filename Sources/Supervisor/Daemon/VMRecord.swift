import Foundation
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
}

/// Reading and writing a VM's folder (`vm.json`, `live.json`), atomically.
struct VMStore: Sendable {
    var paths: VMPaths

    var recordPath: String { paths.folder + "/vm.json" }
    var eventsPath: String { paths.folder + "/events.log" }

    func save(_ record: VMRecord) throws {
        try FileOps.writeAtomically(Array(try JSONEncoder.corral.encode(record)), to: recordPath)
    }

    /// Both files of a new VM, with one folder fsync.
    func save(_ record: VMRecord, _ config: LiveConfig) throws {
        try FileOps.writeAtomically([
            (recordPath, Array(try JSONEncoder.corral.encode(record))),
            (paths.liveConfig, Array(try JSONEncoder.corral.encode(config))),
        ])
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
