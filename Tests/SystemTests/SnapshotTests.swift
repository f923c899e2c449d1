import CorralModel
import Foundation
import GuestAgent
import JSON
import Supervisor
import Testing
import TestSupport

/// External snapshots with real QEMU (unprivileged, disks handed over as descriptors) and the test guest, which
/// writes and reads its disk through qemu-ga (`guest-exec` of busybox `dd`, synced to the disk).
@Suite(.serialized, .bootsGuests) struct SnapshotTests {
    /// Runs `script` in the guest's shell; its standard output.
    static func guestShell(_ agent: GuestAgentClient, _ script: String) async throws -> String {
        let started = try await agent.call("guest-exec", arguments: ["path": "/bin/sh", "arg": ["-c", .string(script)],
                                                          "capture-output": true])
        let pid = try #require(started["pid"]?.intValue)
        for _ in 0..<100 {
            let status = try await agent.call("guest-exec-status", arguments: ["pid": .int(pid)])
            if status["exited"]?.boolValue == true {
                #expect(status["exitcode"]?.intValue == 0, "\(script): \(status)")
                let data = status["out-data"]?.stringValue.flatMap { Data(base64Encoded: $0) } ?? Data()
                return String(decoding: data, as: UTF8.self)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("\(script) did not finish in the guest")
        return ""
    }

    static func write(_ agent: GuestAgentClient, _ text: String) async throws {
        _ = try await guestShell(agent, "printf '\(text)' | dd of=/dev/vda bs=512 conv=notrunc,fsync 2>/dev/null")
    }

    static func read(_ agent: GuestAgentClient) async throws -> String {
        try await guestShell(agent, "dd if=/dev/vda bs=8 count=1 2>/dev/null")
    }

    /// An agent that answers (qemu-ga starts a little after the guest's first heartbeats).
    static func agent(_ socket: String) async throws -> GuestAgentClient {
        let agent = GuestAgentClient(socketPath: socket, timeout: .seconds(10))
        for _ in 0..<120 {
            if (try? await agent.call("guest-ping")) != nil { return agent }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw GuestAgentError.unavailable(path: socket, reason: "qemu-ga did not answer in 60 s")
    }

    /// Snapshot (live) → the guest writes → another snapshot → its removal commits the active overlay while the guest
    /// runs (the write stays) → stop, revert to the first → the guest's write is gone; removing the last snapshot
    /// brings the disk back to its own image; a disk with snapshots cannot be unplugged.
    @Test(.timeLimit(.minutes(6))) func aRevertedSnapshotForgetsTheGuestsWritesAndARemovedOneKeepsThem() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("snap")
        defer { Guest.cleanUp(root) }
        let profile = try Guest.writeProfile(in: root, name: "snappy", extra: """
            agent: true
            hotplug: { slots: 1 }
            disks: [ { id: data, size: 16M, cache: writeback } ]

            """)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        let disks = root + "/state/vms/snappy/disks"
        var up = try await manager.up(UpRequest(profile: profile))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks == ["vda"] }
        var agent = try await Self.agent(root + "/state/vms/snappy/agent.sock")
        try await Self.write(agent, "before..")
        #expect(try await Self.read(agent) == "before..")

        let first = try await manager.createSnapshot("snappy", SnapshotCreateRequest(name: "s1"))
        #expect(first == SnapshotResult(vm: "snappy", snapshot: "s1", action: "created", disks: ["data"], live: true))
        #expect(FileManager.default.fileExists(atPath: disks + "/data.s1.qcow2"))
        try await Self.write(agent, "after-s1")
        _ = try await manager.createSnapshot("snappy", SnapshotCreateRequest(name: "s2"))
        #expect(try await manager.snapshots("snappy").map(\.name) == ["s1", "s2"])
        #expect(try await manager.status("snappy").disks.map(\.file) == [disks + "/data.s2.qcow2"])
        await #expect(throws: ControlError.self) {
            try await manager.createSnapshot("snappy", SnapshotCreateRequest(name: "s2"))
        }

        // A live commit of the active overlay: the guest keeps its data and goes on.
        let removed = try await manager.removeSnapshot("snappy", snapshot: "s2")
        #expect(removed.live && removed.disks == ["data"])
        #expect(!FileManager.default.fileExists(atPath: disks + "/data.s2.qcow2"))
        #expect(try await manager.snapshots("snappy").map(\.name) == ["s1"])
        #expect(try await Self.read(agent) == "after-s1")
        try await Self.write(agent, "latest..")
        let nodes = try await manager.qmp("snappy", command: "query-named-block-nodes", arguments: ["flat": true])
        let names = Set((nodes.arrayValue ?? []).compactMap { $0["node-name"]?.stringValue })
        #expect(!names.contains("fmt-data.s-s2") && names.contains("fmt-data.s-s1"), "\(names.sorted())")

        // Revert needs a stopped VM; then the writes after s1 are gone.
        await #expect(throws: ControlError.self) { try await manager.revertSnapshot("snappy", snapshot: "s1") }
        _ = try await manager.stop("snappy", timeout: .seconds(1))
        let reverted = try await manager.revertSnapshot("snappy", snapshot: "s1")
        #expect(reverted.action == "reverted" && reverted.disks == ["data"] && !reverted.live)
        up = try await manager.start("snappy")
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks == ["vda"] }
        agent = try await Self.agent(root + "/state/vms/snappy/agent.sock")
        #expect(try await Self.read(agent) == "before..", "the writes after s1 are gone")

        // Removing the last snapshot offline folds its overlay into the disk's own image.
        _ = try await manager.stop("snappy", timeout: .seconds(1))
        let last = try await manager.removeSnapshot("snappy", snapshot: "s1")
        #expect(!last.live)
        #expect(try await manager.snapshots("snappy").isEmpty)
        #expect(try await manager.status("snappy").disks.map(\.file) == [disks + "/data.qcow2"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: disks) == ["data.qcow2"], "no overlay left")
        up = try await manager.start("snappy")
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks == ["vda"] }
        agent = try await Self.agent(root + "/state/vms/snappy/agent.sock")
        #expect(try await Self.read(agent) == "before..")
        _ = try await manager.kill("snappy")
    }
}
