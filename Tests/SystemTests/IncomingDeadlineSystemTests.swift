import CorralControl
import CorralModel
import Foundation
import Supervisor
import Testing
import TestSupport

/// The destination's commit deadline with real QEMU: a source that vanishes without a word leaves nothing behind
/// when the guest never arrived, and a complete copy is kept (paused, with a problem) rather than lost.
@Suite(.serialized, .bootsGuests) struct IncomingDeadlineSystemTests {
    /// A source that goes silent: the stream is pointed nowhere (`sendNothing`) or the commit never arrives, and the
    /// abort that would clean the destination is never sent.
    struct SilentSource: MigrationPeer {
        let destination: LocalMigrationPeer
        let sendNothing: Bool

        func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
            var reply = try await destination.prepareIncoming(request)
            if sendNothing { reply.uri = "tcp:127.0.0.1:1" }
            return reply
        }
        func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
            throw .unreachable("the source died before committing \(name)")
        }
        func abortIncoming(_ name: String) async throws(ControlError) {}
        func state(of name: String) async throws(ControlError) -> VMState? {
            throw .unreachable("the source is gone")
        }
    }

    func pair(_ tag: String, sendNothing: Bool) async throws -> (VMManager, VMManager, String) {
        let root = Guest.tempFolder(tag)
        let source = try await VMManager.open(stateRoot: root + "/a")
        let destination = try await VMManager.open(
            stateRoot: root + "/b", options: DaemonOptions(manageKSM: false, incomingDeadline: .seconds(3)))
        await source.setPeerConnector { _, _ in SilentSource(destination: LocalMigrationPeer(destination), sendNothing: sendNothing) }
        return (source, destination, root)
    }

    func waitFor(_ limit: Duration = .seconds(60), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return await condition()
    }

    @Test func anIncomingCopyThatNeverReceivedTheGuestIsRemovedAtTheDeadline() async throws {
        try Guest.requireBuilt()
        let (source, destination, root) = try await pair("dl1", sendNothing: true)
        defer { Guest.cleanUp(root) }
        let up = try await source.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "lone")))
        _ = try? await source.migrateAndWait("lone", MigrateRequest(to: "127.0.0.1:7000"))
        // The source failed to send and kept its guest; the destination heard nothing more.
        #expect(try await source.status("lone").state == .running)
        #expect(try await destination.status("lone").state == .incoming, "the incoming copy waits for its source")
        let gone = await waitFor {
            await destination.list().isEmpty && (FileManager.default.subpaths(atPath: root + "/b/vms") ?? []).isEmpty
        }
        #expect(gone, "removed at the deadline")
        let left = FileManager.default.subpaths(atPath: root + "/b/vms") ?? []
        #expect(left.isEmpty, "no folder left: \(left)")
        #expect(try processesMentioning(root + "/b/").isEmpty, "no QEMU left")
        #expect(try await source.status("lone").pid == up.pid, "the source's guest never moved")
        _ = try await source.kill("lone")
        await source.shutdown()
        await destination.shutdown()
    }

    @Test func aCompleteButUncommittedCopyIsKeptPausedWithAProblem() async throws {
        try Guest.requireBuilt()
        let (source, destination, root) = try await pair("dl2", sendNothing: false)
        defer { Guest.cleanUp(root) }
        let up = try await source.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "orphan")))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 1 }
        _ = try? await source.migrateAndWait("orphan", MigrateRequest(to: "127.0.0.1:7000"))
        let flagged = await waitFor {
            (try? await destination.status("orphan").problem)??.contains("did not commit this copy") == true
        }
        let status = try await destination.status("orphan")
        #expect(flagged, "\(String(describing: status.problem))")
        #expect(status.state == .incoming && status.pid != nil, "kept, paused, with its QEMU")
        #expect(status.problem?.contains("stream: completed") == true, "\(String(describing: status.problem))")
        // Still there a deadline later: a complete copy is never removed automatically.
        try await Task.sleep(for: .seconds(4))
        #expect(try await destination.status("orphan").pid == status.pid)
        // The operator removes it.
        try await destination.remove("orphan", force: true)
        #expect(await destination.list().isEmpty)
        _ = try? await source.kill("orphan")
        await source.shutdown()
        await destination.shutdown()
    }
}
