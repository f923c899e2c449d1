import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import QMP
import CorralControl
import CorralCore
import Supervisor
import Synchronization
import Testing

// MigrationRun (the executor of MigrationStateMachine) against the strict scripted QMP monitor and a fake
// destination daemon: which commands reach the source QEMU in which order, what the destination is told,
// who owns the VM at the end and whether the source was resumed.

private func migrationEvent(_ status: String) -> QMPEvent {
    QMPEvent(name: "MIGRATION", data: ["status": .string(status)], timestamp: 0)
}

private func jobEvent(_ name: String, _ job: String, error: String? = nil) -> QMPEvent {
    var data: JSONObject = ["device": .string(job), "type": "mirror", "len": 100, "offset": 100, "speed": 0]
    if let error { data["error"] = .string(error) }
    return QMPEvent(name: name, data: .object(data), timestamp: 0)
}

/// QEMU's report of a failed read or write of a block job, sent as it happens.
private func jobError(_ job: String, operation: String, action: String) -> QMPEvent {
    QMPEvent(name: "BLOCK_JOB_ERROR",
             data: ["device": .string(job), "operation": .string(operation), "action": .string(action)], timestamp: 0)
}

/// The destination daemon: records what it is told; each call can be made to wait or fail.
final class FakePeer: MigrationPeer, Sendable {
    struct State {
        var calls: [String] = []
        /// The source's commands sent before each call, by call.
        var commandsBefore: [String: [String]] = [:]
        var prepareResult: Result<IncomingReply, ControlError> = .success(IncomingReply(uri: "tcp:127.0.0.1:4444"))
        var commitError: ControlError?
        var prepareGate: AsyncStream<Void>?
        var commitGate: AsyncStream<Void>?
        var onCommit: (@Sendable () -> Void)?
    }

    let state = Mutex(State())
    let qmp: ScriptedQMP

    init(_ qmp: ScriptedQMP) { self.qmp = qmp }

    var calls: [String] { state.withLock { $0.calls } }

    private func note(_ call: String) {
        let sent = qmp.sent
        state.withLock {
            $0.calls.append(call)
            $0.commandsBefore[call] = sent
        }
    }

    /// Makes `prepareIncoming` (or `commitIncoming`) wait until the returned continuation yields.
    func gate(commit: Bool) -> AsyncStream<Void>.Continuation {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        state.withLock { if commit { $0.commitGate = stream } else { $0.prepareGate = stream } }
        return continuation
    }

    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        note("prepare")
        if let gate = state.withLock({ $0.prepareGate }) { for await _ in gate { break } }
        return try state.withLock { $0.prepareResult }.get()
    }

    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        note("commit")
        if let gate = state.withLock({ $0.commitGate }) { for await _ in gate { break } }
        state.withLock { $0.onCommit }?()
        if let error = state.withLock({ $0.commitError }) { throw error }
        return VMStatus(name: name, state: .running, pid: 1, accel: "tcg", uptimeSeconds: 0,
                        cpus: .init(online: 1, max: 1), memory: .init(sizeBytes: 1, maxBytes: 1, balloonBytes: nil),
                        disks: [], nics: [], qmpSocket: "", serialLog: "", restartCount: 0, lastExit: nil,
                        unplugPending: [])
    }

    func abortIncoming(_ name: String) async throws(ControlError) {
        note("abort")
    }
}

/// A value shared with the executor's callbacks.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// One executor with its fakes.
struct Harness {
    let qmp = ScriptedQMP()
    let peer: FakePeer
    let run: MigrationRun
    let ticks: AsyncStream<Void>.Continuation
    let stopHookCalls = Shared(0)
    let reported = Shared<[MigrationProgress]>([])

    init(_ options: MigrationOptions = MigrationOptions(), disks: [String] = [], sourceWasRunning: Bool = true,
         stallLimit: Duration = .seconds(20)) {
        peer = FakePeer(qmp)
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        ticks = continuation
        let profile = Profile(name: "mover", cpu: CPU(count: 1, max: 1), memory: Memory(size: .mib(64)))
        let incoming = IncomingRequest(config: LiveConfig(profile: profile), accel: .tcg, options: options,
                                       listenHost: "127.0.0.1")
        let setup = MigrationRunSetup(name: "mover", options: options, incoming: incoming,
                                      disks: disks.map(MigrationDisk.init(formatNode:)), tlsDirectory: "/tls",
                                      tlsHostname: "127.0.0.1", sourceWasRunning: sourceWasRunning,
                                      stallLimit: stallLimit)
        let counter = stopHookCalls
        let reported = self.reported
        run = MigrationRun(setup, qmp: qmp, peer: peer, ticks: stream,
                           progress: { p in reported.withLock { $0.append(p) } },
                           willStopSource: { counter.withLock { $0 += 1 } })
    }

    /// A `--with-storage` migration of `disks`: the destination exports them over NBD; the source setup is expected.
    static func withStorage(_ disks: [String]) -> Harness {
        let h = Harness(MigrationOptions(withStorage: true), disks: disks)
        h.peer.state.withLock {
            $0.prepareResult = .success(IncomingReply(uri: "tcp:127.0.0.1:4444", nbdHost: "127.0.0.1", nbdPort: 10809))
        }
        h.expectSourceSetup(MigrationOptions(withStorage: true))
        return h
    }

    func start() -> Task<MigrationRunOutcome, Never> {
        let run = self.run
        return Task { await run.run() }
    }

    /// Waits (without a time assertion) until `condition` holds; records an issue if it never does.
    func waitUntil(_ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                   _ condition: () async -> Bool) async {
        for _ in 0..<2000 {
            if await condition() { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("never happened: \(what)", sourceLocation: sourceLocation)
    }

    func waitForState(_ state: MigrationState, sourceLocation: SourceLocation = #_sourceLocation) async {
        await waitUntil("state \(state)", sourceLocation: sourceLocation) { await run.state == state }
    }

    func waitForSent(_ command: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        await waitUntil("\(command) sent", sourceLocation: sourceLocation) { qmp.sent.contains(command) }
    }

    /// What corral sends to configure the source for default options.
    func expectSourceSetup(_ options: MigrationOptions = MigrationOptions()) {
        for step in MigrationPlan.sourceSetup(options: options, tlsCredsID: nil, tlsHostname: "127.0.0.1") {
            qmp.expect(step.command, step.arguments)
        }
    }
}

private let completedReply: JSONValue = [
    "status": "completed", "total-time": 700, "downtime": 12, "setup-time": 1,
    "ram": ["transferred": 1000, "remaining": 0, "total": 1000],
]

@Suite struct MigrationRunHappyPaths {
    @Test func precopyCompletesFromTheMigrationEventAndHandsTheVMOver() async {
        let h = Harness()
        h.expectSourceSetup()
        h.qmp.expect("migrate", ["uri": "tcp:127.0.0.1:4444"], .ok(),
                     then: [migrationEvent("setup"), migrationEvent("active"), migrationEvent("completed")])
        h.qmp.expect("query-migrate", nil, .ok(completedReply))
        h.qmp.expect("quit")
        let outcome = await h.start().value
        #expect(outcome.state == .completed && outcome.owner == .destination)
        #expect(outcome.failure == nil)
        #expect(outcome.final?.downtimeMs == 12 && outcome.final?.totalTimeMs == 700)
        #expect(h.peer.calls == ["prepare", "commit"], "never aborted")
        #expect(h.peer.state.withLock { $0.commandsBefore["prepare"] } == [], "the destination is prepared first")
        // Completion came from the event: no query-migrate before the commit, no polling at all.
        #expect(h.peer.state.withLock { $0.commandsBefore["commit"] }
            == ["migrate-set-capabilities", "migrate-set-parameters", "migrate"])
        #expect(h.stopHookCalls.withLock { $0 } == 1)
        #expect(h.reported.withLock { $0.last?.status } == .completed, "the final figures are reported")
        h.qmp.verify()
    }

    @Test func storageWaitsForEveryMirrorToCompleteBeforeContinuing() async {
        let disks = ["fmt-root", "fmt-data"]
        let h = Harness.withStorage(disks)
        h.qmp.expect("blockdev-add")
        h.qmp.expect("blockdev-mirror", ["job-id": "mirror-fmt-root", "device": "fmt-root", "target": "nbd-root", "sync": "full"],
                     .ok(), then: [jobEvent("BLOCK_JOB_READY", "mirror-fmt-root")])
        h.qmp.expect("blockdev-add")
        h.qmp.expect("blockdev-mirror", nil, .ok(), then: [jobEvent("BLOCK_JOB_READY", "mirror-fmt-data")])
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("setup"), migrationEvent("active"),
                                                  migrationEvent("pre-switchover")])
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-root"], .ok(),
                     then: [jobEvent("BLOCK_JOB_COMPLETED", "mirror-fmt-root")])
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-data"])
        // The poll the test asks for while the data mirror still copies its last writes.
        h.qmp.expect("query-migrate", nil, .ok(["status": "pre-switchover", "ram": ["transferred": 1000, "remaining": 0]]))
        h.qmp.expect("blockdev-del", ["node-name": "nbd-root"])
        h.qmp.expect("blockdev-del", ["node-name": "nbd-data"])
        h.qmp.expect("migrate-continue", ["state": "pre-switchover"], .ok(),
                     then: [migrationEvent("device"), migrationEvent("completed")])
        h.qmp.expect("query-migrate", nil, .ok(completedReply))
        h.qmp.expect("quit")
        // The machine (a value) once it has taken the root mirror's BLOCK_JOB_COMPLETED.
        var rootFinished = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: disks)
        for input: MigrationInput in [.start, .destinationReady(uri: "tcp:127.0.0.1:4444"), .storageReady(disk: "fmt-root"),
                                      .storageReady(disk: "fmt-data"), .migrationEvent(.setup), .migrationEvent(.active),
                                      .migrationEvent(.preSwitchover), .storageFinished(disk: "fmt-root")] {
            _ = try? rootFinished.handle(input)
        }
        let task = h.start()
        await h.waitUntil("the root mirror's completion taken") { await h.run.machine == rootFinished }
        // Inputs are handled one at a time, each with all its actions: once the poll queued now has sent
        // query-migrate, everything the root mirror's completion led to has been sent too.
        h.ticks.yield()
        await h.waitForSent("query-migrate")
        #expect(!h.qmp.sent.contains("migrate-continue"), "the data mirror still copies its last writes: the switch-over waits")
        h.qmp.emit([jobEvent("BLOCK_JOB_COMPLETED", "mirror-fmt-data")])
        let outcome = await task.value
        #expect(outcome.state == .completed && outcome.owner == .destination)
        #expect(h.peer.calls == ["prepare", "commit"])
        h.qmp.verify()
    }

    @Test func postcopyCommitsTheDestinationAtTheSwitchOverAndStopsTheSourceOnCompletion() async {
        let options = MigrationOptions(postcopy: true)
        let h = Harness(options)
        h.expectSourceSetup(options)
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("setup"), migrationEvent("active")])
        // The first RAM pass is done (dirty-sync-count 2): postcopy starts.
        h.qmp.expect("query-migrate", nil, .ok(["status": "active", "ram": ["transferred": 500, "remaining": 500,
                                                                            "dirty-sync-count": 2]]))
        h.qmp.expect("migrate-start-postcopy", nil, .ok(), then: [migrationEvent("postcopy-active")])
        h.qmp.expect("query-migrate", nil, .ok(completedReply))
        h.qmp.expect("quit")
        let task = h.start()
        await h.waitForState(.migrating)
        h.ticks.yield()
        await h.waitUntil("the destination committed") { h.peer.calls == ["prepare", "commit"] }
        await h.waitUntil("ownership moved") { await h.run.machine.owner == .destination }
        #expect(!h.qmp.sent.contains("quit"), "the source still serves pages")
        // Cancelling is refused once the guest runs on the destination.
        await #expect(throws: MigrationStateError.self) { try await h.run.cancel() }
        h.qmp.emit([migrationEvent("completed")])
        let outcome = await task.value
        #expect(outcome.state == .completed && outcome.owner == .destination)
        #expect(h.peer.calls == ["prepare", "commit"], "committed once")
        h.qmp.verify()
    }
}

@Suite struct MigrationRunCancel {
    @Test func whilePreparingTheDestinationNothingIsSentToTheSource() async {
        let h = Harness()
        let release = h.peer.gate(commit: false)
        let task = h.start()
        await h.waitUntil("prepare called") { h.peer.calls == ["prepare"] }
        try? await h.run.cancel()
        release.yield()
        let outcome = await task.value
        #expect(outcome.state == .cancelled && outcome.owner == .source)
        #expect(h.qmp.sent.isEmpty)
        #expect(h.peer.calls == ["prepare", "abort"])
        h.qmp.verify()
    }

    @Test func whileMirroringTheMirrorsAreAbandonedAndQEMUIsNotAskedToMigrate() async {
        let h = Harness.withStorage(["fmt-root"])
        h.qmp.expect("blockdev-add")
        h.qmp.expect("blockdev-mirror")
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-root", "force": true])
        h.qmp.expect("query-block-jobs", nil, .ok([]))
        h.qmp.expect("blockdev-del", ["node-name": "nbd-root"])
        let task = h.start()
        await h.waitForState(.mirroringStorage)
        await h.waitForSent("blockdev-mirror")
        try? await h.run.cancel()
        let outcome = await task.value
        #expect(outcome.state == .cancelled && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(!h.qmp.sent.contains("migrate") && !h.qmp.sent.contains("cont"))
        h.qmp.verify()
    }

    @Test func whileMigratingQEMUCancelsFirstThenTheDestinationAborts() async {
        let h = Harness()
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("setup"), migrationEvent("active")])
        h.qmp.expect("migrate_cancel", nil, .ok(), then: [migrationEvent("cancelling"), migrationEvent("cancelled")])
        h.qmp.expect("query-status", nil, .ok(["status": "running", "running": true]))
        let task = h.start()
        await h.waitForState(.migrating)
        try? await h.run.cancel()
        let outcome = await task.value
        #expect(outcome.state == .cancelled && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(h.peer.state.withLock { $0.commandsBefore["abort"]?.last } == "migrate_cancel",
                "the destination is aborted only once QEMU confirmed the cancel")
        #expect(!h.qmp.sent.contains("cont"), "QEMU resumed the running source itself")
        h.qmp.verify()
    }

    @Test func whileSwitchingOverTheMirrorsAreAbandonedAndThePausedSourceResumed() async {
        let h = Harness.withStorage(["fmt-root"])
        h.qmp.expect("blockdev-add")
        h.qmp.expect("blockdev-mirror", nil, .ok(), then: [jobEvent("BLOCK_JOB_READY", "mirror-fmt-root")])
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active"), migrationEvent("pre-switchover")])
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-root"])
        h.qmp.expect("migrate_cancel", nil, .ok(), then: [migrationEvent("cancelled")])
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-root", "force": true], .error("GenericError", "no job"))
        h.qmp.expect("query-block-jobs", nil, .ok([]))
        h.qmp.expect("blockdev-del", ["node-name": "nbd-root"])
        h.qmp.expect("query-status", nil, .ok(["status": "finish-migrate", "running": false]))
        h.qmp.expect("query-status", nil, .ok(["status": "paused", "running": false]))
        h.qmp.expect("cont")
        let task = h.start()
        await h.waitForState(.switchingOver)
        await h.waitForSent("block-job-cancel")
        try? await h.run.cancel()
        let outcome = await task.value
        #expect(outcome.state == .cancelled && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(h.qmp.sent.last == "cont", "the source paused for the switch-over is resumed after query-status")
        h.qmp.verify()
    }

    @Test func whileTheDestinationTakesOverItIsRefusedAsTooLate() async {
        let h = Harness()
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active"), migrationEvent("completed")])
        h.qmp.expect("query-migrate", nil, .ok(completedReply))
        h.qmp.expect("quit")
        let release = h.peer.gate(commit: true)
        let task = h.start()
        await h.waitUntil("commit called") { h.peer.calls == ["prepare", "commit"] }
        do {
            try await h.run.cancel()
            Issue.record("cancel accepted while the destination takes over")
        } catch {
            #expect(error.hint?.hasPrefix("too late") == true, "\(error)")
        }
        release.yield()
        let outcome = await task.value
        #expect(outcome.state == .completed && outcome.owner == .destination)
        h.qmp.verify()
    }

    @Test func beforeAnythingStartedOrAfterTheEndThereIsNothingToCancel() async {
        let h = Harness()
        await #expect(throws: MigrationStateError.self) { try await h.run.cancel() }
    }
}

@Suite struct MigrationRunFailures {
    @Test func aDestinationRefusalKeepsItsOwnErrorAndTouchesNothing() async {
        let h = Harness()
        h.peer.state.withLock { $0.prepareResult = .failure(.conflict("a VM named mover already exists here (running)")) }
        let outcome = await h.start().value
        #expect(outcome.state == .failed("destination failed: a VM named mover already exists here (running)"))
        #expect(outcome.failure?.consequence == .sourceKeepsRunning)
        #expect(outcome.destinationRefused)
        #expect(outcome.cause == .conflict("a VM named mover already exists here (running)"))
        #expect(h.qmp.sent.isEmpty)
        #expect(h.peer.calls == ["prepare"], "a refusing destination cleaned up itself")
        h.qmp.verify()
    }

    @Test func aDestinationThatCannotResumeGivesTheGuestBackToTheSource() async {
        let h = Harness()
        h.peer.state.withLock { $0.commitError = .qmp(QMPFailure(command: "cont", desc: "the incoming migration failed")) }
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active"), migrationEvent("completed")])
        h.qmp.expect("query-status", nil, .ok(["status": "postmigrate", "running": false]))
        h.qmp.expect("cont")
        let outcome = await h.start().value
        #expect(outcome.state == .failed("destination could not take over: cont: the incoming migration failed"))
        #expect(outcome.failure?.consequence == .sourceKeepsRunning && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "commit"])
        #expect(h.stopHookCalls.withLock { $0 } == 0 && !h.qmp.sent.contains("quit"))
        h.qmp.verify()
    }

    @Test func aLostDestinationAtTheCommitLeavesTheSourcePausedAndSaysSo() async {
        let h = Harness()
        h.peer.state.withLock { $0.commitError = .unreachable("destination 192.0.2.2:7070: connection reset") }
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active"), migrationEvent("completed")])
        let outcome = await h.start().value
        #expect(outcome.failure?.consequence == .ownerUnknown)
        #expect(!h.qmp.sent.contains("cont") && !h.qmp.sent.contains("quit"), "neither resumed nor stopped")
        h.qmp.verify()
    }

    /// A peer that answers with its own internal error has answered: it runs nothing, so the source takes the
    /// guest back (only a transport failure leaves the owner unknown).
    @Test func aDestinationsInternalErrorAtTheCommitIsAnAnswerNotALostPeer() async {
        let h = Harness()
        h.peer.state.withLock { $0.commitError = .internalError("destination 192.0.2.2:7070: cannot write vm.json") }
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active"), migrationEvent("completed")])
        h.qmp.expect("query-status", nil, .ok(["status": "postmigrate", "running": false]))
        h.qmp.expect("cont")
        let outcome = await h.start().value
        #expect(outcome.failure?.consequence == .sourceKeepsRunning && outcome.owner == .source)
        #expect(outcome.cause == .internalError("destination 192.0.2.2:7070: cannot write vm.json"))
        h.qmp.verify()
    }

    @Test func qemuFailedRollsBackWithQEMUsReason() async {
        let h = Harness()
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("setup"), migrationEvent("failed")])
        h.qmp.expect("query-migrate", nil, .ok(["status": "failed", "error-desc": "The certificate hasn't got a known issuer"]))
        h.qmp.expect("query-status", nil, .ok(["status": "running", "running": true]))
        let outcome = await h.start().value
        #expect(outcome.failure?.consequence == .sourceKeepsRunning && outcome.owner == .source)
        #expect(outcome.failure?.reason.contains("The certificate hasn't got a known issuer") == true,
                "\(String(describing: outcome.failure))")
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(!h.qmp.sent.contains("migrate_cancel"), "nothing to cancel: QEMU already ended it")
        h.qmp.verify()
    }

    @Test func aCommandFailureEndsTheBatchAndRollsBack() async {
        let h = Harness()
        h.qmp.expect("migrate-set-capabilities", nil, .error("GenericError", "capability postcopy-ram is bad"))
        let outcome = await h.start().value
        #expect(outcome.failure?.consequence == .sourceKeepsRunning)
        #expect(outcome.cause == .qmp(QMPFailure(command: "migrate-set-capabilities", errorClass: "GenericError",
                                                 desc: "capability postcopy-ram is bad")),
                "QMP's class and desc are kept with the command: \(String(describing: outcome.cause))")
        #expect(outcome.failure?.reason.contains("capability postcopy-ram is bad") == true)
        #expect(h.qmp.sent == ["migrate-set-capabilities"], "no parameters, no migrate after the failure")
        #expect(h.peer.calls == ["prepare", "abort"])
        h.qmp.verify()
    }

    @Test func theSourceQEMUExitingAbortsTheDestination() async {
        let h = Harness()
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active")])
        let task = h.start()
        await h.waitForState(.migrating)
        h.qmp.disconnect()
        let outcome = await task.value
        #expect(outcome.state == .failed("source QEMU exited"))
        #expect(outcome.failure?.consequence == .sourceExited && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(h.qmp.sent.last == "migrate", "nothing is sent to a QEMU that is gone")
        h.qmp.verify()
    }

    @Test func aMirrorErrorAbandonsTheMirrorsAndAbortsTheDestination() async {
        let h = Harness.withStorage(["fmt-root"])
        h.qmp.expect("blockdev-add")
        h.qmp.expect("blockdev-mirror", nil, .ok(),
                     then: [jobEvent("BLOCK_JOB_COMPLETED", "mirror-fmt-root", error: "Input/output error")])
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-root", "force": true], .error("DeviceNotActive", "no job"))
        h.qmp.expect("query-block-jobs", nil, .ok([]))
        h.qmp.expect("blockdev-del", ["node-name": "nbd-root"])
        let outcome = await h.start().value
        #expect(outcome.state == .failed("mirror of fmt-root failed: Input/output error"))
        #expect(outcome.failure?.consequence == .sourceKeepsRunning)
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(!h.qmp.sent.contains("migrate"))
        h.qmp.verify()
    }

    @Test func aMirrorWriteErrorIsNoticedFromBLOCK_JOB_ERRORAlone() async {
        // A write to the NBD target fails: QEMU says so at once with BLOCK_JOB_ERROR. BLOCK_JOB_COMPLETED comes
        // only once the job has wound down, which over a dead link can take long: here, not before corral
        // cancels the job.
        let h = Harness.withStorage(["fmt-root"])
        h.qmp.expect("blockdev-add")
        h.qmp.expect("blockdev-mirror", nil, .ok(), then: [jobError("mirror-fmt-root", operation: "write", action: "report")])
        h.qmp.expect("block-job-cancel", ["device": "mirror-fmt-root", "force": true], .ok(),
                     then: [jobEvent("BLOCK_JOB_COMPLETED", "mirror-fmt-root", error: "Input/output error")])
        h.qmp.expect("query-block-jobs", nil, .ok([]))
        h.qmp.expect("blockdev-del", ["node-name": "nbd-root"])
        let task = h.start()
        await h.waitUntil("the mirror error ended the migration") { await h.run.state.isTerminal }
        // A run that missed the error would wait for ever: take its QEMU away so the test ends.
        if await !h.run.state.isTerminal { h.qmp.disconnect() }
        let outcome = await task.value
        #expect(outcome.state == .failed("mirror of fmt-root failed: write error on the mirror"))
        #expect(outcome.failure?.consequence == .sourceKeepsRunning && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "abort"])
        #expect(!h.qmp.sent.contains("migrate"))
        h.qmp.verify()
    }

    @Test func postcopyFailingAfterTheSwitchOverLosesTheGuestAndResumesNothing() async {
        let options = MigrationOptions(postcopy: true)
        let h = Harness(options)
        h.expectSourceSetup(options)
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active")])
        h.qmp.expect("query-migrate", nil, .ok(["status": "active", "ram": ["transferred": 5, "dirty-sync-count": 2]]))
        h.qmp.expect("migrate-start-postcopy", nil, .ok(), then: [migrationEvent("postcopy-active")])
        let task = h.start()
        await h.waitForState(.migrating)
        h.ticks.yield()
        await h.waitUntil("the destination committed") { h.peer.calls == ["prepare", "commit"] }
        h.qmp.emit([migrationEvent("postcopy-paused")])
        let outcome = await task.value
        #expect(outcome.failure?.consequence == .guestLost && outcome.owner == .destination)
        #expect(h.peer.calls == ["prepare", "commit"], "no abort: the destination runs what there is of the guest")
        #expect(!h.qmp.sent.contains("cont") && !h.qmp.sent.contains("migrate_cancel"))
        h.qmp.verify()
    }

    @Test func aTimeoutCancelsAndRollsBack() async {
        let h = Harness(MigrationOptions(timeoutSeconds: 600))
        h.expectSourceSetup(MigrationOptions(timeoutSeconds: 600))
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active")])
        h.qmp.expect("migrate_cancel", nil, .ok(), then: [migrationEvent("cancelled")])
        h.qmp.expect("query-status", nil, .ok(["status": "running", "running": true]))
        let task = h.start()
        await h.waitForState(.migrating)
        await h.run.timeOut()
        let outcome = await task.value
        #expect(outcome.state == .failed("timed out after 600 s"))
        #expect(outcome.failure?.consequence == .sourceKeepsRunning && outcome.owner == .source)
        #expect(h.peer.calls == ["prepare", "abort"])
        h.qmp.verify()
    }

    @Test func aStreamThatStopsMovingIsTreatedAsACutLink() async {
        let h = Harness(stallLimit: .zero)
        h.expectSourceSetup()
        h.qmp.expect("migrate", nil, .ok(), then: [migrationEvent("active")])
        let stuck: JSONValue = ["status": "active", "ram": ["transferred": 4096, "remaining": 100]]
        h.qmp.expect("query-migrate", nil, .ok(stuck))
        h.qmp.expect("query-migrate", nil, .ok(stuck))
        h.qmp.expect("migrate_cancel", nil, .ok(), then: [migrationEvent("cancelled")])
        h.qmp.expect("query-status", nil, .ok(["status": "running", "running": true]))
        let task = h.start()
        await h.waitForState(.migrating)
        h.ticks.yield()
        await h.waitUntil("first poll answered") { h.reported.withLock { $0.count } == 1 }
        h.ticks.yield()
        let outcome = await task.value
        #expect(outcome.failure?.reason.hasPrefix("link to the destination broke: no data moved") == true,
                "\(String(describing: outcome.failure))")
        #expect(outcome.failure?.consequence == .sourceKeepsRunning)
        #expect(h.peer.calls == ["prepare", "abort"])
        h.qmp.verify()
    }

    @Test func eventsOfOtherJobsAndUnknownStatusesAreNotObservations() {
        #expect(MigrationRun.input(for: jobEvent("BLOCK_JOB_READY", "some-backup"), jobs: ["mirror-fmt-a": "fmt-a"]) == nil)
        #expect(MigrationRun.input(for: jobEvent("BLOCK_JOB_READY", "mirror-fmt-a"), jobs: ["mirror-fmt-a": "fmt-a"])
            == .storageReady(disk: "fmt-a"))
        #expect(MigrationRun.input(for: migrationEvent("no-such-status"), jobs: [:]) == nil)
        #expect(MigrationRun.input(for: migrationEvent("pre-switchover"), jobs: [:]) == .migrationEvent(.preSwitchover))
    }
}
