import CorralModel
import JSON
import Profiles
import QEMUCommand

extension HostPort {
    /// QEMU's migration URI for this address: `tcp:HOST:PORT`, an IPv6 literal in brackets (`tcp:[::1]:4444`).
    public var migrationURI: String { "tcp:" + description }
}

/// Which side of a TLS connection a `tls-creds-x509` object serves. The migration destination and
/// the NBD server are TLS servers; the migration source and its NBD client nodes are TLS clients.
public enum TLSEndpoint: String, Codable, Sendable {
    case server, client
}

/// One disk to carry over with `--with-storage`, named after its format node (the same on both
/// hosts, since both QEMUs are started from the same `LiveConfig`).
public struct MigrationDisk: Sendable, Hashable {
    /// The disk's format node (`DeviceProps.formatNodeName`): mirrored on the source, exported on the destination.
    public var formatNode: String
    /// The NBD export name on the destination: the disk's format node name without a snapshot tag (the source's
    /// active node may be a snapshot overlay, `fmt-ID.TAG`; the destination's copy is one image, `fmt-ID`).
    public var exportName: String

    public init(formatNode: String) {
        self.formatNode = formatNode
        self.exportName = formatNode
    }

    public init(_ disk: Disk) {
        self.formatNode = DeviceProps.formatNodeName(disk)
        var bare = disk
        bare.chain = nil
        self.exportName = DeviceProps.formatNodeName(bare)
    }
    /// The export's id for `block-export-add`/`block-export-del` on the destination.
    public var exportID: String { "export-" + formatNode }
    /// The source's NBD client node (target of the mirror): `nbd-` in place of `fmt-`, so it stays
    /// within QEMU's 31-byte node-name limit whenever the format node does.
    public var nbdClientNode: String {
        let base = formatNode.hasPrefix("fmt-") ? String(formatNode.dropFirst(4)) : formatNode
        return String(("nbd-" + base).utf8.prefix(DeviceProps.maxNodeNameLength))!
    }
    /// The mirror job on the source (job ids have no length limit).
    public var mirrorJobID: String { "mirror-" + formatNode }
}

/// Pure: the QMP commands of a live migration, for the daemon to send in order.
/// Capabilities and parameters are always set explicitly (on as well as off), because a source
/// QEMU keeps them from an earlier, failed attempt.
public enum MigrationPlan {
    /// QEMU 7.2's defaults, restored on the source when an option is not given.
    public static let defaultMaxBandwidth: Int64 = 134_217_728
    public static let defaultDowntimeLimitMs = 300
    public static let defaultMultifdChannels = 2
    /// The id of the `tls-creds-x509` object corral adds on each side for `--tls`.
    public static let tlsCredsID = "corral-mig-tls"

    // MARK: Capabilities

    /// Capabilities that must match on both QEMUs, `events` (MIGRATION events on each side), and
    /// `late-block-activate`: the destination takes its image locks only at `cont` (the commit), so the
    /// source can still take the guest back after QEMU reports `completed` if the commit fails.
    public static func destinationCapabilities(_ options: MigrationOptions) -> [(String, Bool)] {
        [
            ("events", true),
            ("postcopy-ram", options.postcopy),
            ("multifd", options.multifdChannels != nil),
            ("late-block-activate", true),
        ]
    }

    /// Every capability corral manages on the source, with its state for these options.
    public static func sourceCapabilities(_ options: MigrationOptions) -> [(String, Bool)] {
        [
            ("events", true),
            ("postcopy-ram", options.postcopy),
            ("multifd", options.multifdChannels != nil),
            ("auto-converge", options.autoConverge),
            ("xbzrle", options.xbzrle),
            ("pause-before-switchover", options.withStorage),
        ]
    }

    static func setCapabilities(_ caps: [(String, Bool)]) -> QMPStep {
        let list: [JSONValue] = caps.map { .object(["capability": .string($0.0), "state": .bool($0.1)]) }
        return QMPStep("migrate-set-capabilities", ["capabilities": .array(list)])
    }

    // MARK: Destination

    /// On the destination QEMU (started with `-incoming defer -S`): capabilities, parameters,
    /// then `migrate-incoming`. With `--tls` the creds object (`tlsCredsID`) must exist already.
    public static func destinationSetup(options: MigrationOptions, listen: HostPort,
                                        tlsCredsID: String?) -> [QMPStep] {
        var params: JSONObject = [:]
        if let channels = options.multifdChannels { params["multifd-channels"] = .int(Int64(channels)) }
        params["tls-creds"] = .string(tlsCredsID ?? "")
        return [
            setCapabilities(destinationCapabilities(options)),
            QMPStep("migrate-set-parameters", params),
            QMPStep("migrate-incoming", ["uri": .string(listen.migrationURI)]),
        ]
    }

    // MARK: Source

    /// On the source QEMU, before `start(uri:)`: capabilities, then parameters.
    /// `tls-creds`/`tls-hostname` are set to "" without TLS, which is how QEMU turns TLS off.
    public static func sourceSetup(options: MigrationOptions, tlsCredsID: String?,
                                   tlsHostname: String?) -> [QMPStep] {
        var params: JSONObject = [
            "max-bandwidth": .int(options.bandwidthBytesPerSecond ?? defaultMaxBandwidth),
            "downtime-limit": .int(Int64(options.downtimeMs ?? defaultDowntimeLimitMs)),
        ]
        if let channels = options.multifdChannels { params["multifd-channels"] = .int(Int64(channels)) }
        params["tls-creds"] = .string(tlsCredsID ?? "")
        params["tls-hostname"] = .string(tlsCredsID == nil ? "" : (tlsHostname ?? ""))
        return [
            setCapabilities(sourceCapabilities(options)),
            QMPStep("migrate-set-parameters", params),
        ]
    }

    /// Starts the migration; QEMU answers at once and reports progress in MIGRATION events.
    public static func start(uri: String) -> QMPStep {
        QMPStep("migrate", ["uri": .string(uri)])
    }

    /// Switches a running precopy migration to postcopy (needs `postcopy-ram` on both sides).
    public static func postcopyStart() -> QMPStep { QMPStep("migrate-start-postcopy") }

    /// Cancels the outgoing migration; QEMU resumes the source itself if it was running.
    public static func cancel() -> QMPStep { QMPStep("migrate_cancel") }

    /// Lets a migration paused at `pre-switchover` (capability `pause-before-switchover`) finish.
    public static func continueAfterPreSwitchover() -> QMPStep {
        QMPStep("migrate-continue", ["state": "pre-switchover"])
    }

    /// `cont`: resumes the source after a failure (when paused), or the destination on commit.
    public static func resume() -> QMPStep { QMPStep("cont") }

    /// On the destination once its guest runs: gratuitous ARP/RARP from every NIC (`announce-self`), so switches
    /// learn the guest's new port at once instead of when the guest next speaks. Five rounds, 50 ms apart at
    /// first, then 150, 250, 350 ms (QEMU's step 100): early enough for a quick switch-over, late enough to cover a
    /// switch that drops the first one while the port comes up.
    public static func announce() -> QMPStep {
        QMPStep("announce-self", ["initial": 50, "max": 550, "rounds": 5, "step": 100])
    }

    // MARK: Storage (`--with-storage`)

    /// On the destination: the NBD server the source mirrors into (QEMU takes the host without brackets).
    public static func nbdServerStart(_ address: HostPort, tlsCredsID: String?) -> QMPStep {
        var args: JSONObject = [
            "addr": ["type": "inet", "data": ["host": .string(address.host), "port": .string(String(address.port))]],
        ]
        if let tlsCredsID { args["tls-creds"] = .string(tlsCredsID) }
        return QMPStep("nbd-server-start", args)
    }

    /// On the destination: export a disk's format node, writable, under its node name.
    public static func blockExportAdd(nodeName: String, exportName: String) -> QMPStep {
        QMPStep("block-export-add", [
            "type": "nbd",
            "id": .string("export-" + nodeName),
            "node-name": .string(nodeName),
            "name": .string(exportName),
            "writable": true,
        ])
    }

    /// On the destination: stops the NBD server (and its exports) once migration is over, either way.
    public static func nbdServerStop() -> QMPStep { QMPStep("nbd-server-stop") }

    /// On the source: a block node that is the NBD client of one destination export.
    public static func nbdClientAdd(nodeName: String, server: HostPort, exportName: String,
                                    tlsCredsID: String?) -> QMPStep {
        var args: JSONObject = [
            "driver": "nbd",
            "node-name": .string(nodeName),
            "server": ["type": "inet", "host": .string(server.host), "port": .string(String(server.port))],
            "export": .string(exportName),
        ]
        if let tlsCredsID { args["tls-creds"] = .string(tlsCredsID) }
        return QMPStep("blockdev-add", args)
    }

    /// On the source: copy the whole disk (`sync: full`) into the NBD node; BLOCK_JOB_READY when in sync.
    public static func blockdevMirror(jobID: String, device: String, target: String) -> QMPStep {
        QMPStep("blockdev-mirror", [
            "job-id": .string(jobID),
            "device": .string(device),
            "target": .string(target),
            "sync": "full",
        ])
    }

    /// On the source. `force: false` on a READY mirror finishes it without a pivot (the last writes
    /// are copied, BLOCK_JOB_COMPLETED follows): done at `pre-switchover`, with the guest stopped.
    /// `force: true` abandons it at once: done when the migration fails.
    public static func blockJobCancel(jobID: String, force: Bool) -> QMPStep {
        var args: JSONObject = ["device": .string(jobID)]
        if force { args["force"] = true }
        return QMPStep("block-job-cancel", args)
    }

    public static func blockdevDel(nodeName: String) -> QMPStep {
        QMPStep("blockdev-del", ["node-name": .string(nodeName)])
    }

    /// Destination, per disk, after `nbdServerStart`.
    public static func exportDisks(_ disks: [MigrationDisk]) -> [QMPStep] {
        disks.map { blockExportAdd(nodeName: $0.formatNode, exportName: $0.exportName) }
    }

    /// Source, per disk: the NBD client node, then the mirror into it.
    public static func startMirrors(_ disks: [MigrationDisk], nbd: HostPort,
                                    tlsCredsID: String?) -> [QMPStep] {
        disks.flatMap { disk in
            [
                nbdClientAdd(nodeName: disk.nbdClientNode, server: nbd, exportName: disk.exportName,
                             tlsCredsID: tlsCredsID),
                blockdevMirror(jobID: disk.mirrorJobID, device: disk.formatNode, target: disk.nbdClientNode),
            ]
        }
    }

    /// Source, per disk, at `pre-switchover`: finish the mirror (wait for BLOCK_JOB_COMPLETED before
    /// `continueAfterPreSwitchover`), or with `force` abandon it after a failure.
    public static func finishMirrors(_ disks: [MigrationDisk], force: Bool) -> [QMPStep] {
        disks.map { blockJobCancel(jobID: $0.mirrorJobID, force: force) }
    }

    /// Source, per disk, once its mirror job is gone: drop the NBD client node.
    public static func removeNBDClients(_ disks: [MigrationDisk]) -> [QMPStep] {
        disks.map { blockdevDel(nodeName: $0.nbdClientNode) }
    }

    // MARK: TLS

    /// `tls-creds-x509` properties: the arguments of `object-add`, and equally the JSON of an
    /// `-object '{…}'` argv entry (QEMU 7.2 takes both). corral adds them at run time with `object-add`,
    /// so a VM started without `--tls` can still migrate with it. `dir` holds `ca-cert.pem` and
    /// `server-cert.pem`/`server-key.pem` (server) or `client-cert.pem`/`client-key.pem` (client).
    public static func tlsCredsObject(id: String, endpoint: TLSEndpoint, dir: String,
                                      verifyPeer: Bool = true) -> JSONObject {
        [
            "qom-type": "tls-creds-x509",
            "id": .string(id),
            "endpoint": .string(endpoint.rawValue),
            "dir": .string(dir),
            "verify-peer": .bool(verifyPeer),
        ]
    }

    public static func objectAdd(_ object: JSONObject) -> QMPStep { QMPStep("object-add", object) }
    public static func objectDel(id: String) -> QMPStep { QMPStep("object-del", ["id": .string(id)]) }
}
