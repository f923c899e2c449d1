import CorralCore
import CorralModel
import JSON
import Profiles
import QEMUCommand
import Testing

/// External snapshots as plans (pure): overlays, the live transaction, revert and removal.
struct SnapshotPlanTests {
    static func config() -> LiveConfig {
        let profile = Profile(name: "web", memory: Memory(size: .mib(512)), disks: [
            Disk(id: "root", file: "/srv/web/root.raw", format: .raw),
            Disk(id: "cd", file: "/srv/web/tools.iso", format: .raw, readonly: true),
        ])
        var config = LiveConfig(profile: profile)
        config.hotplugged.disks = [PluggedDisk(disk: Disk(id: "data", file: "/srv/data.qcow2"), port: "hp0")]
        return config
    }

    static func taking(_ names: [String], from start: LiveConfig = config()) throws -> LiveConfig {
        var config = start
        for (index, name) in names.enumerated() {
            let overlays = try SnapshotPlan.create(name, config: config).get()
            config = SnapshotPlan.applying(overlays, snapshot: name, at: Int64(1000 + index), to: config)
        }
        return config
    }

    @Test func createPutsAQcow2OverlayBesideEachWritableDisk() throws {
        let overlays = try SnapshotPlan.create("s1", config: Self.config()).get()
        #expect(overlays.map(\.diskID) == ["root", "data"], "the read-only disk is not snapshotted")
        #expect(overlays[0] == SnapshotPlan.Overlay(diskID: "root", file: "/srv/web/root.s1.qcow2",
                                                    backingFile: "/srv/web/root.raw", backingFormat: .raw, tag: "s-s1"))
        let config = SnapshotPlan.applying(overlays, snapshot: "s1", at: 1000, to: Self.config())
        let root = try #require(config.disk("root"))
        #expect(root.file == "/srv/web/root.s1.qcow2" && root.format == .qcow2)
        #expect(root.chain == DiskChain(frozen: [DiskLayer(file: "/srv/web/root.raw", format: .raw, tag: nil,
                                                           snapshot: "s1", created: 1000)], activeTag: "s-s1"))
        #expect(root.imageFiles == ["/srv/web/root.raw", "/srv/web/root.s1.qcow2"])
        // A second snapshot's overlay sits beside the disk's own image too, on top of the first overlay.
        let second = try SnapshotPlan.create("s2", config: config).get()
        #expect(second[0].file == "/srv/web/root.s2.qcow2" && second[0].backingFile == "/srv/web/root.s1.qcow2")
        #expect(SnapshotPlan.list(try Self.taking(["s1", "s2"])).map(\.name) == ["s1", "s2"])
        #expect(SnapshotPlan.list(try Self.taking(["s1", "s2"]))[0].disks == ["root", "data"])
    }

    @Test func createRefusesBadAndDuplicateNamesAndTooMany() throws {
        for bad in ["", "-x", "a/b", "../x", "a b", String(repeating: "a", count: 41), "é"] {
            guard case .failure(let refusal) = SnapshotPlan.create(bad, config: Self.config()) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(refusal.message.contains("1 to 40 characters"))
        }
        let taken = try Self.taking(["s1"])
        #expect(throws: HotplugRefusal("web already has a snapshot s1")) { try SnapshotPlan.create("s1", config: taken).get() }
        let many = try Self.taking((0..<SnapshotPlan.maxSnapshots).map { "s\($0)" })
        #expect(throws: HotplugRefusal.self) { try SnapshotPlan.create("one-more", config: many).get() }
        var readonly = Self.config()
        readonly.profile.disks.removeFirst()
        readonly.hotplugged.disks = []
        #expect(throws: HotplugRefusal("web has no writable disk to snapshot")) {
            try SnapshotPlan.create("s1", config: readonly).get()
        }
    }

    @Test func theLiveStepsOpenTheOverlaysWithoutBackingThenSwitchAllDisksInOneTransaction() throws {
        let config = try Self.taking(["s1"])
        let overlays = try SnapshotPlan.create("s2", config: config).get()
        let steps = SnapshotPlan.liveSteps(overlays, config: config, filenames: ["root": "/dev/fdset/9"])
        #expect(steps.map(\.command) == ["blockdev-add", "blockdev-add", "blockdev-add", "blockdev-add", "transaction"])
        #expect(steps[0].arguments["node-name"] == "file-root.s-s2" && steps[0].arguments["filename"] == "/dev/fdset/9")
        #expect(steps[1].arguments["node-name"] == "fmt-root.s-s2" && steps[1].arguments["backing"] == .null)
        #expect(steps[2].arguments["filename"] == "/srv/data.s2.qcow2")
        #expect(steps[1].undo.map(\.command) == ["blockdev-del"])
        #expect(steps[4].arguments["actions"] == [
            ["type": "blockdev-snapshot", "data": ["node": "fmt-root.s-s1", "overlay": "fmt-root.s-s2"]],
            ["type": "blockdev-snapshot", "data": ["node": "fmt-data.s-s1", "overlay": "fmt-data.s-s2"]],
        ])
    }

    @Test func theArgvOfADiskWithSnapshotsOpensTheWholeChain() throws {
        let root = try #require(try Self.taking(["s1", "s2"]).disk("root"))
        let nodes = DeviceProps.diskNodes(root, filename: "/dev/fdset/3", layerFilenames: ["/dev/fdset/4", "/dev/fdset/5"])
        #expect(nodes.map { $0["node-name"]?.stringValue ?? "" }
            == ["file-root", "fmt-root", "file-root.s-s1", "fmt-root.s-s1", "file-root.s-s2", "fmt-root.s-s2"])
        #expect(nodes.map { $0["filename"]?.stringValue ?? "-" }
            == ["/dev/fdset/4", "-", "/dev/fdset/5", "-", "/dev/fdset/3", "-"])
        #expect(nodes[1]["backing"] == nil && nodes[3]["backing"] == "fmt-root" && nodes[5]["backing"] == "fmt-root.s-s1")
        #expect(nodes[0]["read-only"] == false, "frozen images are opened read-write, for a later commit")
        #expect(DeviceProps.formatNodeName(root) == "fmt-root.s-s2")
        #expect(DeviceProps.diskDevice(root, bus: "hp0").last?["drive"] == "fmt-root.s-s2")
        // The hand-over plan gives each frozen image its own fd set, named by its tag.
        let config = try Self.taking(["s1", "s2"])
        let plan = HandOverPlan.make(config, serialLog: false, firstFD: 10)
        #expect(plan.layers["root"]?.count == 2 && plan.layers["data"]?.count == 2 && plan.layers["cd"] == nil)
        let opaques = plan.addFDArguments(config, markerText: "m").filter { $0.contains("opaque=disk-root") }
        #expect(opaques.map { $0.split(separator: ",").last ?? "" }
            == ["opaque=disk-root.s-s2", "opaque=disk-root", "opaque=disk-root.s-s1"])
    }

    @Test func revertKeepsTheSnapshotDropsLaterOnesAndLeavesNewerDisksAlone() throws {
        var config = try Self.taking(["s1"])
        config.hotplugged.disks.append(PluggedDisk(disk: Disk(id: "late", file: "/srv/late.qcow2"), port: "hp1"))
        config = try Self.taking(["s2"], from: config)
        let revert = try SnapshotPlan.revert("s1", config: config).get()
        #expect(revert.dropped == ["s2"] && revert.untouched == ["late"])
        #expect(revert.delete.contains("/srv/web/root.s2.qcow2") && revert.delete.contains("/srv/web/root.s1.qcow2"))
        #expect(!revert.delete.contains("/srv/web/root.raw"))
        let root = try #require(revert.config.disk("root"))
        #expect(root.file == "/srv/web/root.s1.qcow2" && root.chain?.frozen.map(\.snapshot) == ["s1"])
        #expect(revert.overlays.first { $0.diskID == "root" }?.backingFile == "/srv/web/root.raw")
        #expect(revert.config.disk("late")?.chain?.frozen.map(\.snapshot) == ["s2"], "s2 stays on the later disk's…")
        #expect(throws: HotplugRefusal("web has no snapshot s9 (it has: s1, s2)")) {
            try SnapshotPlan.revert("s9", config: config).get()
        }
    }

    @Test func removingTheNewestSnapshotCommitsTheActiveOverlayAndPivots() throws {
        let config = try Self.taking(["s1", "s2"])
        let (merges, next) = try SnapshotPlan.remove("s2", config: config).get()
        let root = try #require(merges.first { $0.diskID == "root" })
        #expect(root.active && root.top == "/srv/web/root.s2.qcow2" && root.base == "/srv/web/root.s1.qcow2")
        #expect(root.topNode == "fmt-root.s-s2" && root.baseNode == "fmt-root.s-s1" && root.activeNode == "fmt-root.s-s2")
        let step = SnapshotPlan.commitStep(root)
        #expect(step.command == "block-commit" && step.arguments["backing-file"] == nil)
        #expect(step.arguments["top-node"] == "fmt-root.s-s2" && step.arguments["base-node"] == "fmt-root.s-s1")
        let after = try #require(next.disk("root"))
        #expect(after.file == "/srv/web/root.s1.qcow2" && DeviceProps.formatNodeName(after) == "fmt-root.s-s1")
        #expect(after.chain?.frozen.map(\.snapshot) == ["s1"])
        #expect(SnapshotPlan.offlineCommands(root) == [["commit", "-q", "-f", "qcow2", "-b", "/srv/web/root.s1.qcow2",
                                                        "-d", "/srv/web/root.s2.qcow2"]])
        // Removing the last one brings the disk back to its own image and node names.
        let (_, bare) = try SnapshotPlan.remove("s1", config: next).get()
        #expect(bare.disk("root") == Self.config().disk("root"))
    }

    @Test func removingAnOlderSnapshotCommitsItsOverlayDownAndRebasesTheOneAbove() throws {
        let config = try Self.taking(["s1", "s2", "s3"])
        let (merges, next) = try SnapshotPlan.remove("s1", config: config).get()
        let root = try #require(merges.first { $0.diskID == "root" })
        #expect(!root.active && root.top == "/srv/web/root.s1.qcow2" && root.base == "/srv/web/root.raw")
        #expect(root.above == "/srv/web/root.s2.qcow2")
        #expect(SnapshotPlan.commitStep(root).arguments["backing-file"] == "/srv/web/root.raw",
                "the image above records the base's real path, not an fd set")
        #expect(SnapshotPlan.offlineCommands(root).last == ["rebase", "-u", "-f", "qcow2", "-b", "/srv/web/root.raw",
                                                            "-F", "raw", "/srv/web/root.s2.qcow2"])
        let after = try #require(next.disk("root"))
        #expect(after.chain?.frozen.map(\.snapshot) == ["s2", "s3"])
        #expect(after.chain?.frozen.map(\.file) == ["/srv/web/root.raw", "/srv/web/root.s2.qcow2"])
        #expect(after.chain?.frozen.first?.tag == nil && after.file == "/srv/web/root.s3.qcow2")
        #expect(SnapshotPlan.list(next).map(\.name) == ["s2", "s3"])
    }
}
