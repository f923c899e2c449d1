import CorralModel
import JSON
import Profiles
import QEMUCommand

/// Pure: external disk snapshots (`corral snapshot`). A snapshot freezes every writable disk's active image and puts
/// a new, empty qcow2 overlay on it; the snapshot's content is the frozen image and what lies below it.
///
/// - create: overlays are made beside the disk's own image (`STEM.SNAP.qcow2`, so shared storage carries them) and,
///   on a running VM, opened by QEMU and switched to in one `transaction` of `blockdev-snapshot`s: all disks at the
///   same instant.
/// - revert (stopped VM): the images above the snapshot's frozen one are deleted and a fresh overlay takes their
///   place; later snapshots go with them.
/// - remove: the overlay made by the snapshot is committed into the image below it (`block-commit` on a running VM,
///   `qemu-img commit` + `rebase -u` on a stopped one) and deleted.
public enum SnapshotPlan {
    public static let maxSnapshots = 32

    /// An overlay to make: `qemu-img create -f qcow2 -b backingFile -F backingFormat file`.
    public struct Overlay: Sendable, Equatable {
        public var diskID: String
        public var file: String
        public var backingFile: String
        public var backingFormat: DiskFormat
        /// Its node names' tag (`fmt-ID.TAG`).
        public var tag: String

        public init(diskID: String, file: String, backingFile: String, backingFormat: DiskFormat, tag: String) {
            self.diskID = diskID
            self.file = file
            self.backingFile = backingFile
            self.backingFormat = backingFormat
            self.tag = tag
        }
    }

    /// What `snapshot rm` does to one disk.
    public struct Merge: Sendable, Equatable {
        public var diskID: String
        /// The overlay the snapshot made: committed into `base`, then deleted.
        public var top: String
        public var topFormat: DiskFormat
        public var topNode: String
        public var topFileNode: String
        /// The image the snapshot froze.
        public var base: String
        public var baseFormat: DiskFormat
        public var baseNode: String
        /// The disk's active node (the job's `device`).
        public var activeNode: String
        /// `top` is the active image: the commit pivots the disk onto `base` (`job-complete`).
        public var active: Bool
        /// The image above `top`, whose backing becomes `base` (nil when `top` is active).
        public var above: String?
    }

    // MARK: Names and listing

    public static func nameProblem(_ name: String) -> String? {
        SnapshotName.isValid(name) ? nil : "snapshot name '\(name)': \(SnapshotName.rule)"
    }

    /// Every disk of the VM in order (profile, then hotplugged), with where it lives.
    static func disks(_ config: LiveConfig) -> [Disk] {
        config.allDisks
    }

    /// The snapshots of a VM, oldest first.
    public static func list(_ config: LiveConfig) -> [SnapshotInfo] {
        var order: [String] = []
        var byName: [String: SnapshotInfo] = [:]
        for disk in disks(config) {
            for layer in disk.chain?.frozen ?? [] {
                if byName[layer.snapshot] == nil {
                    order.append(layer.snapshot)
                    byName[layer.snapshot] = SnapshotInfo(name: layer.snapshot, created: layer.created, disks: [])
                }
                byName[layer.snapshot]?.disks.append(disk.id)
            }
        }
        // By time, and in chain order among snapshots of the same second.
        return order.enumerated().compactMap { index, name in byName[name].map { (index, $0) } }
            .sorted { ($0.1.created, $0.0) < ($1.1.created, $1.0) }.map(\.1)
    }

    // MARK: Create

    /// The overlays a new snapshot `name` makes (one per writable disk), or why not.
    public static func create(_ name: String, config: LiveConfig) -> Result<[Overlay], HotplugRefusal> {
        if let problem = nameProblem(name) { return .failure(HotplugRefusal(problem)) }
        let existing = list(config)
        if existing.contains(where: { $0.name == name }) {
            return .failure(HotplugRefusal("\(config.profile.name) already has a snapshot \(name)"))
        }
        if existing.count >= maxSnapshots {
            return .failure(HotplugRefusal("\(config.profile.name) has \(existing.count) snapshots, the most corral "
                + "keeps; remove one first (corral snapshot rm)"))
        }
        let writable = disks(config).filter { !$0.readonly }
        if writable.isEmpty { return .failure(HotplugRefusal("\(config.profile.name) has no writable disk to snapshot")) }
        let tag = "s-" + name
        return .success(writable.map { disk in
            Overlay(diskID: disk.id, file: overlayPath(disk, snapshot: name), backingFile: disk.file,
                    backingFormat: disk.format, tag: tag)
        })
    }

    /// `DIR/STEM.SNAP.qcow2` beside the disk's own image.
    static func overlayPath(_ disk: Disk, snapshot: String) -> String {
        let own = disk.chain?.frozen.first?.file ?? disk.file
        let slash = own.lastIndex(of: "/")
        let folder = slash.map { String(own[..<$0]) } ?? "."
        var stem = slash.map { String(own[own.index(after: $0)...]) } ?? own
        if let dot = stem.lastIndex(of: "."), dot != stem.startIndex { stem = String(stem[..<dot]) }
        return folder + "/" + stem + "." + snapshot + ".qcow2"
    }

    /// The configuration once the overlays are the disks' active images.
    public static func applying(_ overlays: [Overlay], snapshot: String, at created: Int64,
                                to config: LiveConfig) -> LiveConfig {
        var config = config
        for overlay in overlays {
            config.updateDisk(overlay.diskID) { disk in
                var chain = disk.chain ?? DiskChain(frozen: [], activeTag: "")
                chain.frozen.append(DiskLayer(file: disk.file, format: disk.format, tag: disk.chain?.activeNodeTag,
                                              snapshot: snapshot, created: created))
                chain.activeTag = overlay.tag
                disk.chain = chain
                disk.file = overlay.file
                disk.format = .qcow2
            }
        }
        return config
    }

    /// On a running VM: each overlay's nodes (`filenames`: the fd sets an unprivileged QEMU opens, by disk id), made
    /// without a backing, then one transaction that puts them on the active nodes. Undo deletes the new nodes.
    public static func liveSteps(_ overlays: [Overlay], config: LiveConfig,
                                 filenames: [String: String] = [:]) -> [QMPStep] {
        var steps: [QMPStep] = []
        var actions: [JSONValue] = []
        for overlay in overlays {
            guard let disk = config.disk(overlay.diskID) else { continue }
            var next = disk
            next.file = overlay.file
            next.format = .qcow2
            next.backing = nil
            next.chain = DiskChain(frozen: [], activeTag: overlay.tag)
            let nodes = DeviceProps.diskNodes(next, filename: filenames[overlay.diskID])
            guard var file = nodes.first, var format = nodes.last, nodes.count == 2 else { continue }
            file["read-only"] = false
            format["read-only"] = false
            format["backing"] = .null
            for node in [file, format] {
                let nodeName = node["node-name"]?.stringValue ?? ""
                steps.append(QMPStep("blockdev-add", node,
                                     undo: [QMPStep("blockdev-del", ["node-name": .string(nodeName)],
                                                    retryWhileInUse: true)]))
            }
            actions.append(["type": "blockdev-snapshot",
                            "data": ["node": .string(DeviceProps.formatNodeName(disk)),
                                     "overlay": .string(DeviceProps.formatNodeName(next))]])
        }
        steps.append(QMPStep("transaction", ["actions": .array(actions)]))
        return steps
    }

    // MARK: Revert

    /// What reverting to `name` on a stopped VM does: the files to delete, the overlays to make, the new config.
    public struct Revert: Sendable, Equatable {
        public var delete: [String]
        public var overlays: [Overlay]
        public var config: LiveConfig
        /// Disks the snapshot does not cover (added later): left as they are.
        public var untouched: [String]
        /// Snapshots taken after `name`, gone with the images they froze.
        public var dropped: [String]
    }

    public static func revert(_ name: String, config: LiveConfig) -> Result<Revert, HotplugRefusal> {
        let all = list(config)
        guard let position = all.firstIndex(where: { $0.name == name }) else {
            return .failure(HotplugRefusal(missing(name, all, vm: config.profile.name)))
        }
        var next = config
        var delete: [String] = []
        var overlays: [Overlay] = []
        var untouched: [String] = []
        for disk in disks(config) {
            guard let chain = disk.chain, let index = chain.frozen.firstIndex(where: { $0.snapshot == name }) else {
                if !disk.readonly { untouched.append(disk.id) }
                continue
            }
            let kept = chain.frozen[index]
            delete += chain.frozen[(index + 1)...].map(\.file) + [disk.file]
            let overlay = Overlay(diskID: disk.id, file: overlayPath(disk, snapshot: name), backingFile: kept.file,
                                  backingFormat: kept.format, tag: "s-" + name)
            overlays.append(overlay)
            next.updateDisk(disk.id) { disk in
                disk.chain = DiskChain(frozen: Array(chain.frozen[...index]), activeTag: overlay.tag)
                disk.file = overlay.file
                disk.format = .qcow2
            }
        }
        let dropped = all[(position + 1)...].map(\.name)
        return .success(Revert(delete: delete, overlays: overlays, config: next, untouched: untouched,
                               dropped: dropped))
    }

    static func missing(_ name: String, _ all: [SnapshotInfo], vm: String) -> String {
        let names = all.map(\.name)
        return "\(vm) has no snapshot \(name)" + (names.isEmpty ? " (it has none)" : " (it has: "
            + names.joined(separator: ", ") + ")")
    }

    // MARK: Remove

    /// The merges removing `name` needs (one per disk it covers) and the configuration afterwards.
    public static func remove(_ name: String, config: LiveConfig) -> Result<([Merge], LiveConfig), HotplugRefusal> {
        let all = list(config)
        guard all.contains(where: { $0.name == name }) else {
            return .failure(HotplugRefusal(missing(name, all, vm: config.profile.name)))
        }
        var next = config
        var merges: [Merge] = []
        for disk in disks(config) {
            guard let chain = disk.chain, let index = chain.frozen.firstIndex(where: { $0.snapshot == name }) else {
                continue
            }
            let base = chain.frozen[index]
            let topIsActive = index == chain.frozen.count - 1
            let top: (file: String, format: DiskFormat, node: String, fileNode: String) = topIsActive
                ? (disk.file, disk.format, DeviceProps.formatNodeName(disk), DeviceProps.fileNodeName(disk))
                : (chain.frozen[index + 1].file, chain.frozen[index + 1].format,
                   DeviceProps.formatNodeName(disk, layer: chain.frozen[index + 1]),
                   DeviceProps.fileNodeName(disk, layer: chain.frozen[index + 1]))
            let above: String? = topIsActive ? nil
                : (index + 2 < chain.frozen.count ? chain.frozen[index + 2].file : disk.file)
            merges.append(Merge(diskID: disk.id, top: top.file, topFormat: top.format, topNode: top.node,
                                topFileNode: top.fileNode, base: base.file, baseFormat: base.format,
                                baseNode: DeviceProps.formatNodeName(disk, layer: base),
                                activeNode: DeviceProps.formatNodeName(disk), active: topIsActive, above: above))
            next.updateDisk(disk.id) { disk in
                var frozen = chain.frozen
                if topIsActive {
                    // The frozen image becomes the active one again.
                    frozen.removeLast()
                    disk.file = base.file
                    disk.format = base.format
                    // The bottom image (tag nil) is the disk's own: without frozen images left there is no chain.
                    disk.chain = frozen.isEmpty ? nil : DiskChain(frozen: frozen, activeTag: base.tag ?? "")
                } else {
                    // The image above takes the frozen one's snapshot, now merged into the frozen image's file.
                    var merged = base
                    merged.snapshot = frozen[index + 1].snapshot
                    merged.created = frozen[index + 1].created
                    frozen[index] = merged
                    frozen.remove(at: index + 1)
                    disk.chain = DiskChain(frozen: frozen, activeTag: chain.activeTag)
                }
            }
        }
        return .success((merges, next))
    }

    /// The `block-commit` of one merge (a job the caller waits for, then `job-complete`s when `active`).
    public static func commitStep(_ merge: Merge) -> QMPStep {
        var args: JSONObject = [
            "job-id": .string(jobID(merge)), "device": .string(merge.activeNode),
            "top-node": .string(merge.topNode), "base-node": .string(merge.baseNode),
            "auto-finalize": true, "auto-dismiss": false,
        ]
        // QEMU would write its own name for the base (an fd set path) into the image above.
        if !merge.active { args["backing-file"] = .string(merge.base) }
        return QMPStep("block-commit", args)
    }

    public static func jobID(_ merge: Merge) -> String { "commit-" + merge.diskID }

    /// The offline commands of one merge: `qemu-img` argument lists, in order.
    public static func offlineCommands(_ merge: Merge) -> [[String]] {
        var commands = [["commit", "-q", "-f", merge.topFormat.rawValue, "-b", merge.base, "-d", merge.top]]
        if let above = merge.above {
            commands.append(["rebase", "-u", "-f", "qcow2", "-b", merge.base, "-F", merge.baseFormat.rawValue, above])
        }
        return commands
    }
}

extension LiveConfig {
    /// The disk `id`, from the profile or hotplugged.
    public func disk(_ id: String) -> Disk? {
        profile.disks.first { $0.id == id } ?? hotplugged.disks.first { $0.disk.id == id }?.disk
    }

    /// Changes the disk `id` wherever it is.
    public mutating func updateDisk(_ id: String, _ change: (inout Disk) -> Void) {
        if let index = profile.disks.firstIndex(where: { $0.id == id }) {
            change(&profile.disks[index])
        } else if let index = hotplugged.disks.firstIndex(where: { $0.disk.id == id }) {
            change(&hotplugged.disks[index].disk)
        }
    }
}
