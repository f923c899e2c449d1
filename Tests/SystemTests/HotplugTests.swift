import Foundation
import CorralModel
import JSON
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport

/// Hotplug on a real guest: every change is checked in what the guest reports (CORRAL-HB).
@Suite(.serialized, .bootsGuests) struct HotplugSystemTests {
    func bootHotpluggable(_ root: String, name: String, unplugTimeout: Duration = .seconds(30))
        async throws -> (VMManager, VMStatus)
    {
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions(unplugTimeout: unplugTimeout))
        let profile = try Guest.writeProfile(
            in: root, name: name, cpu: "{ count: 1, max: 4 }", memory: "{ size: 256M, max: 1G, slots: 2 }",
            extra: "hotplug: { slots: 4 }\n")
        let status = try await manager.up(UpRequest(profile: profile))
        _ = try await HeartbeatWait.first(in: status.serialLog) { $0.n >= 1 }
        return (manager, status)
    }

    @Test func cpusDisksNICsAndMemoryPlugAndUnplug() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("hp1")
        defer { Guest.cleanUp(root) }
        let (manager, up) = try await bootHotpluggable(root, name: "plug")
        let log = up.serialLog

        // vCPUs 1 → 3
        #expect(try await manager.setCPUs("plug", count: 3).cpus.online == 3)
        _ = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.cpus == 3 }

        // a new disk appears in the guest, then goes away
        let added = try await manager.addDisk("plug", DiskAddRequest(id: "extra", file: root + "/extra.qcow2", size: "32M"))
        #expect(added.disks.map(\.id) == ["extra"])
        #expect(FileManager.default.fileExists(atPath: root + "/extra.qcow2"))
        _ = try await HeartbeatWait.first(in: log) { $0.disks == ["vda"] }
        let gone = try await manager.removeDisk("plug", id: "extra", deleteImage: true)
        #expect(gone.disks.isEmpty && gone.unplugPending.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root + "/extra.qcow2"), "--delete-image removed the file")
        let after = try await HeartbeatWait.first(in: log) { $0.disks.isEmpty }
        #expect(after.disks.isEmpty)

        // a NIC
        let withNIC = try await manager.addNIC("plug", NICAddRequest(id: "net1"))
        #expect(withNIC.nics.map(\.id) == ["net0", "net1"])
        #expect(withNIC.nics[1].mac.hasPrefix("52:54:00:"))
        _ = try await HeartbeatWait.first(in: log) { $0.nics == ["eth0", "eth1"] }
        _ = try await manager.removeNIC("plug", id: "net1")
        _ = try await HeartbeatWait.first(in: log) { $0.nics == ["eth0"] }

        // memory: one 128 MiB DIMM
        let before = try await HeartbeatWait.first(in: log) { _ in true }
        let bigger = try await manager.addMemory("plug", MemoryAddRequest(size: "128M"))
        #expect(bigger.memory.sizeBytes == (256 + 128) << 20)
        let grown = try await HeartbeatWait.first(in: log) { $0.memKB >= before.memKB + 120_000 }
        #expect(grown.memKB > before.memKB)

        // vCPUs 3 → 1 (last: QEMU 7.2 under TCG cannot plug anything after a vCPU unplug)
        #expect(try await manager.setCPUs("plug", count: 1).cpus.online == 1)
        _ = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.cpus == 1 }
        do {
            _ = try await manager.addNIC("plug", NICAddRequest(id: "late"))
            Issue.record("a plug after a vCPU unplug was allowed under TCG/QEMU 7")
        } catch {
            #expect(error.message.hasPrefix("plugging a device after a vCPU unplug crashes QEMU 7."))
        }
        #expect(try await manager.status("plug").state == .running, "the VM is still alive")

        _ = try await manager.kill("plug")
        await manager.shutdown()
    }

    @Test func refusalsChangeNothing() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("hp2")
        defer { Guest.cleanUp(root) }
        let (manager, _) = try await bootHotpluggable(root, name: "strict")
        func refusal(_ body: () async throws(ControlError) -> VMStatus) async -> String? {
            do {
                _ = try await body()
                return nil
            } catch {
                return error.message
            }
        }
        #expect(await refusal { () async throws(ControlError) in try await manager.setCPUs("strict", count: 5) }
            == "COUNT: 5 is outside 1…4 (cpu.max of strict)")
        #expect(await refusal { () async throws(ControlError) in
            try await manager.addDisk("strict", DiskAddRequest(id: "x", file: root + "/missing.qcow2"))
        } == "--file: \(root)/missing.qcow2 does not exist; give --size to create it")
        #expect(await refusal { () async throws(ControlError) in
            try await manager.addNIC("strict", NICAddRequest(id: "net0"))
        } == "--id: 'net0' is already used by a device of strict")
        #expect(await refusal { () async throws(ControlError) in
            try await manager.addNIC("strict", NICAddRequest(id: "n2", mac: "01:00:5e:00:00:01"))
        } == "--mac: '01:00:5e:00:00:01' is a multicast address; the first octet must be even")
        #expect(await refusal { () async throws(ControlError) in
            try await manager.addNIC("strict", NICAddRequest(id: "n3", mac: "52:54:zz:00:00:01"))
        } == "--mac: '52:54:zz:00:00:01' is not a MAC address like 52:54:00:12:34:56")
        for i in 0..<4 {
            _ = try await manager.addNIC("strict", NICAddRequest(id: "fill\(i)"))
        }
        #expect(await refusal { () async throws(ControlError) in
            try await manager.addDisk("strict", DiskAddRequest(id: "d", file: root + "/d.qcow2", size: "16M"))
        } == "no free hotplug slot: the profile reserves 4 (hotplug.slots)")
        #expect(!FileManager.default.fileExists(atPath: root + "/d.qcow2"), "no image created for a refused disk")
        #expect(await refusal { () async throws(ControlError) in try await manager.setCPUs("nope", count: 1) }
            == "no VM named nope (known: strict)")
        let status = try await manager.status("strict")
        #expect(status.nics.count == 5 && status.disks.isEmpty && status.cpus.online == 1)

        _ = try await manager.stop("strict", timeout: .seconds(60))
        #expect(await refusal { () async throws(ControlError) in try await manager.setCPUs("strict", count: 2) }
            == "cannot hotplug strict: it is stopped (hotplug needs running or paused)")
        await manager.shutdown()
    }

    @Test func hotpluggedDevicesSurviveDaemonRestartAndStopStart() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("hp3")
        defer { Guest.cleanUp(root) }
        let (first, up) = try await bootHotpluggable(root, name: "keep")
        _ = try await first.addDisk("keep", DiskAddRequest(id: "d1", file: root + "/d1.qcow2", size: "16M"))
        _ = try await first.addDisk("keep", DiskAddRequest(id: "d2", file: root + "/d2.raw", size: "16M"))
        _ = try await first.addNIC("keep", NICAddRequest(id: "net1"))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks == ["vda", "vdb"] && $0.nics.count == 2 }
        await first.shutdown()

        let second = try await VMManager.open(stateRoot: root + "/state")
        let reattached = try await second.status("keep")
        #expect(reattached.pid == up.pid)
        #expect(reattached.disks.map(\.id) == ["d1", "d2"])
        #expect(reattached.nics.map(\.id) == ["net0", "net1"])

        _ = try await second.stop("keep", timeout: .seconds(60))
        // The new QEMU appends to the same serial log: only its own heartbeats count (the first QEMU's include one
        // from between the disk and the NIC plugs, with both disks and one NIC).
        let before = Guest.size(up.serialLog)
        let restarted = try await second.start("keep")
        #expect(restarted.pid != up.pid)
        let seen = try await HeartbeatWait.first(in: up.serialLog, from: before,
                                                 where: { $0.n >= 1 && $0.disks == ["vda", "vdb"] })
        #expect(seen.nics == ["eth0", "eth1"], "the restarted QEMU recreated the hotplugged devices")
        _ = try await second.kill("keep")
        await second.shutdown()
    }

    @Test func anUnplugTheGuestCannotAnswerStaysPending() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("hp4")
        defer { Guest.cleanUp(root) }
        let (manager, up) = try await bootHotpluggable(root, name: "stuck", unplugTimeout: .seconds(8))
        _ = try await manager.addNIC("stuck", NICAddRequest(id: "net1"))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.nics == ["eth0", "eth1"] }
        _ = try await manager.pause("stuck")  // a paused guest cannot release anything
        let message: String?
        do {
            _ = try await manager.removeNIC("stuck", id: "net1")
            message = nil
        } catch {
            message = error.message
        }
        #expect(message == "unplug pending: the guest has not released nic-net1 after 8 s")
        let pending = try await manager.status("stuck")
        #expect(pending.unplugPending == ["nic-net1"])
        #expect(pending.nics.map(\.id) == ["net0", "net1"], "never claimed done")

        // Once the guest runs again it releases the NIC and corral finishes the removal.
        _ = try await manager.resume("stuck")
        _ = try await HeartbeatWait.first(in: up.serialLog, within: .seconds(60)) { $0.nics == ["eth0"] }
        var finished = try await manager.status("stuck")
        for _ in 0..<50 where !finished.unplugPending.isEmpty {
            try await Task.sleep(for: .milliseconds(200))
            finished = try await manager.status("stuck")
        }
        #expect(finished.unplugPending.isEmpty)
        #expect(finished.nics.map(\.id) == ["net0"])
        _ = try await manager.kill("stuck")
        await manager.shutdown()
    }
}
