import CorralModel
import Foundation
import Supervisor
import Testing
import TestSupport

/// Managed volumes with real QEMU and the guest: a profile disk given only a size, and a disk plugged with only a
/// size, are created in the VM's folder, the guest sees both, `volumes()` lists them with qemu-img's sizes.
@Suite(.serialized, .bootsGuests) struct ManagedVolumeTests {
    @Test(.timeLimit(.minutes(4))) func volumesFromASizeAloneAreMadeInTheVMsFolderAndListed() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("vol")
        defer { Guest.cleanUp(root) }
        let profile = try Guest.writeProfile(in: root, name: "vols", extra: """
            hotplug: { slots: 2 }
            disks: [ { id: data, size: 64M } ]

            """)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        let up = try await manager.up(UpRequest(profile: profile))
        let folder = root + "/state/vms/vols/disks"
        #expect(up.disks.map(\.file) == [folder + "/data.qcow2"])
        #expect(FileManager.default.fileExists(atPath: folder + "/data.qcow2"))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks.count == 1 }

        let plugged = try await manager.addDisk("vols", DiskAddRequest(id: "scratch", file: nil, size: "32M"))
        #expect(plugged.disks.map(\.file) == [folder + "/data.qcow2", folder + "/scratch.qcow2"])
        let seen = try await HeartbeatWait.first(in: up.serialLog) { $0.disks.count == 2 }
        #expect(seen.disks.count == 2)

        let volumes = try await manager.volumes()
        #expect(volumes.map(\.id) == ["data", "scratch"])
        #expect(volumes.map(\.managed) == [true, true] && volumes.map(\.plugged) == [false, true])
        #expect(volumes.map(\.virtualBytes) == [64 << 20, 32 << 20])
        #expect(volumes.allSatisfy { ($0.allocatedBytes ?? 0) > 0 && $0.problem == nil }, "\(volumes)")
        _ = try await manager.kill("vols")
    }
}

extension ManagedVolumeTests {
    /// `rm` of a VM with managed volumes: refused without a choice; `keep` moves them out, `delete` deletes them.
    @Test func removalKeepsOrDeletesManagedVolumesOnlyWhenTold() async throws {
        let root = Guest.tempFolder("vol-rm")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        for name in ["kept", "gone"] {
            let profile = try Guest.writeProfile(in: root, name: name, extra: "disks: [ { id: data, size: 16M } ]\n")
            _ = try await manager.up(UpRequest(profile: profile, paused: true))
            _ = try await manager.kill(name)
        }
        let refused = await #expect(throws: ControlError.self) { try await manager.remove("kept", force: false) }
        #expect(String(describing: refused).contains("kept has managed volumes (data.qcow2): corral rm kept --delete-volumes"),
                "\(String(describing: refused))")
        #expect(FileManager.default.fileExists(atPath: root + "/state/vms/kept/disks/data.qcow2"), "nothing removed")

        try await manager.remove("kept", force: false, volumes: .keep)
        #expect(FileManager.default.fileExists(atPath: root + "/state/volumes/kept/data.qcow2"))
        #expect(!FileManager.default.fileExists(atPath: root + "/state/vms/kept"))
        try await manager.remove("gone", force: false, volumes: .delete)
        #expect(!FileManager.default.fileExists(atPath: root + "/state/vms/gone"))
        #expect(!FileManager.default.fileExists(atPath: root + "/state/volumes/gone"))
        #expect(await manager.list().isEmpty)
    }
}

extension ManagedVolumeTests {
    /// A disk on a base image: corral makes the qcow2 overlay in the VM's folder, the (unprivileged) QEMU reads the
    /// base through a descriptor, the guest sees the disk, and the base is never written.
    @Test(.timeLimit(.minutes(4))) func anOverlayOnABaseImageLeavesTheBaseAsItWas() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("backing")
        defer { Guest.cleanUp(root) }
        let base = root + "/base.qcow2"
        _ = try await ProcessLauncher.run("qemu-img", ["create", "-q", "-f", "qcow2", base, "32M"])
        let wrote = try await ProcessLauncher.run("qemu-io", ["-c", "write -P 0xab 0 1M", base])
        try #require(wrote.status.isSuccess, "\(wrote.output)")
        let before = try Data(contentsOf: URL(fileURLWithPath: base))
        let profile = try Guest.writeProfile(in: root, name: "ov", extra: """
            hotplug: { slots: 2 }
            disks: [ { id: root, backing: base.qcow2 } ]

            """)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        let up = try await manager.up(UpRequest(profile: profile))
        let overlay = root + "/state/vms/ov/disks/root.qcow2"
        #expect(up.disks.map(\.file) == [overlay])
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks.count == 1 }
        let volumes = try await manager.volumes()
        #expect(volumes.first?.backing == base && volumes.first?.virtualBytes == 32 << 20, "\(volumes)")
        // The overlay reads the base's data through.
        let read = try await ProcessLauncher.run("qemu-io", ["-r", "-U", "-c", "read -P 0xab 0 1M", overlay])
        #expect(read.status.isSuccess && !read.output.contains("Pattern verification failed"), "\(read.output)")
        // `disk add --backing` on the running VM: a second overlay on the same base, handed over the same way.
        let plugged = try await manager.addDisk("ov", DiskAddRequest(id: "clone", file: nil, backing: base))
        let clone = root + "/state/vms/ov/disks/clone.qcow2"
        #expect(plugged.disks.map(\.file) == [overlay, clone])
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks.count == 2 }
        let cloneRead = try await ProcessLauncher.run("qemu-io", ["-r", "-U", "-c", "read -P 0xab 0 1M", clone])
        #expect(cloneRead.status.isSuccess && !cloneRead.output.contains("Pattern verification failed"),
                "\(cloneRead.output)")
        #expect(try await manager.volumes().map(\.backing) == [base, base])
        await #expect(throws: ControlError.self) {
            try await manager.addDisk("ov", DiskAddRequest(id: "nobase", file: nil, backing: root + "/missing.qcow2"))
        }
        _ = try await manager.kill("ov")
        #expect(try Data(contentsOf: URL(fileURLWithPath: base)) == before, "the base image was not written")
        let record = try String(contentsOfFile: root + "/state/vms/ov/live.json", encoding: .utf8)
        #expect(record.replacingOccurrences(of: " ", with: "").contains(#""backingFormat":"qcow2""#),
                "the base's format, read once, is kept")
    }
}
