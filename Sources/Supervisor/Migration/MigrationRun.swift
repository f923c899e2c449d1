import CorralControl
import CorralCore
import Foundation
import CorralModel
import JSON
import QMP

/// What a source-side migration needs that is not the state machine: where it goes and with what.
public struct MigrationRunSetup: Sendable {
    public var name: String
    public var options: MigrationOptions
    /// Sent to the destination daemon by `prepareDestination`.
    public var incoming: IncomingRequest
    /// The disks mirrored with `--with-storage` (ignored without it).
    public var disks: [MigrationDisk]
    /// The source daemon's TLS folder (client certificates) for `--tls`.
    public var tlsDirectory: String
    /// The destination's address as the source reached it: `tls-hostname`.
    public var tlsHostname: String
    /// A guest that was paused before the migration stays paused after a rollback.
    public var sourceWasRunning: Bool
    /// An `active` migration that moves no data for this long is treated as a cut link.
    public var stallLimit: Duration
    /// After `migrate_cancel`, how long QEMU gets to confirm before the rollback goes on without it.
    public var cancelGrace: Duration

    public init(name: String, options: MigrationOptions, incoming: IncomingRequest, disks: [MigrationDisk] = [],
                tlsDirectory: String, tlsHostname: String, sourceWasRunning: Bool = true,
                stallLimit: Duration = .seconds(20), cancelGrace: Duration = .seconds(30)) {
        self.name = name
        self.options = options
        self.incoming = incoming
        self.disks = options.withStorage ? disks : []
        self.tlsDirectory = tlsDirectory
        self.tlsHostname = tlsHostname
        self.sourceWasRunning = sourceWasRunning
        self.stallLimit = stallLimit
        self.cancelGrace = cancelGrace
    }
}

/// How a migration ended, as the executor saw it.
public struct MigrationRunOutcome: Sendable {
    /// The machine's final state: `completed`, `failed(reason)` or `cancelled`.
    public var state: MigrationState
    public var owner: MigrationOwner
    /// From the machine's `.fail` action.
    public var failure: (reason: String, consequence: MigrationFailureConsequence)?
    /// The first error a peer call or a QMP command returned, kept as it came (the peer's refusal keeps its kind).
    public var cause: ControlError?
    /// The source's `query-migrate` after completion (totals and downtime).
    public var final: MigrationProgress?
    /// The destination refused or failed to prepare (`cause` is its answer): nothing was started on the source.
    public var destinationRefused: Bool
}

/// Runs `MigrationStateMachine` against the real world: observations from the source QEMU (MIGRATION and
/// BLOCK_JOB_* events, `query-migrate` replies for progress), the destination daemon's answers, the timeout and
/// cancel requests go in one at a time; the actions that come out are performed in order over QMP and the
/// `MigrationPeer`. Completion is noticed from the MIGRATION event, not from polling; `query-migrate` is polled
/// only for progress figures and to notice a stalled stream.
///
/// One input is handled at a time, to the end of its actions: inputs that arrive meanwhile wait in a FIFO queue.
/// A failing action ends its batch; its failure is queued as the next observation.
public actor MigrationRun {
    /// Called for every `reportProgress` action (the daemon publishes `migration-progress`).
    public typealias ProgressSink = @Sendable (MigrationProgress) async -> Void
    /// Called just before the source QEMU is told to `quit` (the daemon marks the exit as requested).
    public typealias StopHook = @Sendable () async -> Void

    private enum Step: Sendable {
        case input(MigrationInput)
        /// Time to poll `query-migrate` for progress.
        case poll
        /// The source QEMU's event stream ended: its QMP connection is gone.
        case sourceGone
    }

    public let setup: MigrationRunSetup
    private let qmp: any QMPMonitor
    private let peer: any MigrationPeer
    private let ticks: AsyncStream<Void>?
    private let progressSink: ProgressSink
    private let willStopSource: StopHook

    public private(set) var machine: MigrationStateMachine
    private var feed: AsyncStream<Step>.Continuation?
    private var reply: IncomingReply?
    private var tlsAdded = false
    private var failure: (reason: String, consequence: MigrationFailureConsequence)?
    private var cause: ControlError?
    private var final: MigrationProgress?
    private var destinationRefused = false
    private var lastMoved: Int64?
    private var lastMovement = ContinuousClock.now
    private var stallReported = false
    private var cancelTimer: Task<Void, Never>?
    private var timers: [Task<Void, Never>] = []

    /// `ticks`: one `query-migrate` per element while QEMU migrates (`MigrationRun.ticker(every:)`); nil: no polling.
    public init(_ setup: MigrationRunSetup, qmp: any QMPMonitor, peer: any MigrationPeer,
                ticks: AsyncStream<Void>?, progress: @escaping ProgressSink = { _ in },
                willStopSource: @escaping StopHook = {}) {
        self.setup = setup
        self.qmp = qmp
        self.peer = peer
        self.ticks = ticks
        self.progressSink = progress
        self.willStopSource = willStopSource
        self.machine = MigrationStateMachine(options: setup.options, disks: setup.disks.map(\.formatNode),
                                             sourceWasRunning: setup.sourceWasRunning)
    }

    /// A tick every `interval`, for as long as someone listens.
    public static func ticker(every interval: Duration) -> AsyncStream<Void> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    continuation.yield()
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public var state: MigrationState { machine.state }
    public var lastProgress: MigrationProgress? { machine.lastProgress }

    /// Runs the migration to its end. Call once.
    public func run() async -> MigrationRunOutcome {
        let (steps, feed) = AsyncStream<Step>.makeStream(bufferingPolicy: .unbounded)
        self.feed = feed
        // Subscribe before the first command, so no event is missed.
        let events = qmp.events(["MIGRATION", "BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_ERROR"])
        let jobs = Dictionary(uniqueKeysWithValues: setup.disks.map { ($0.mirrorJobID, $0.formatNode) })
        let eventTask = Task {
            for await event in events {
                if let input = Self.input(for: event, jobs: jobs) { feed.yield(.input(input)) }
            }
            feed.yield(.sourceGone)
        }
        let tickTask = ticks.map { ticks in
            Task {
                for await _ in ticks { feed.yield(.poll) }
            }
        }
        if let seconds = setup.options.timeoutSeconds {
            timers.append(Task {
                try? await Task.sleep(for: .seconds(seconds))
                if !Task.isCancelled { feed.yield(.input(.timeout)) }
            })
        }
        feed.yield(.input(.start))
        for await step in steps {
            switch step {
            case .input(.migrationEvent(.failed)) where machine.lastStatus != .failed:
                // The event carries no reason; `query-migrate` has QEMU's `error-desc`.
                if let reply = try? await qmp.execute("query-migrate", nil, timeout: .seconds(3)),
                    MigrationProgress(queryMigrate: reply).status == .failed {
                    await handle(.queryResult(MigrationProgress(queryMigrate: reply)))
                } else {
                    await handle(.migrationEvent(.failed))
                }
            case .input(let input): await handle(input)
            case .poll: await poll()
            case .sourceGone: await handle(.sourceQEMUExited)
            }
            if machine.state.isTerminal { break }
        }
        feed.finish()
        self.feed = nil
        eventTask.cancel()
        tickTask?.cancel()
        cancelTimer?.cancel()
        for timer in timers { timer.cancel() }
        if machine.state != .completed, tlsAdded, failure?.consequence != .sourceExited {
            _ = try? await qmp.execute("object-del", ["id": .string(MigrationPlan.tlsCredsID)], timeout: .seconds(3))
        }
        return MigrationRunOutcome(state: machine.state, owner: machine.owner, failure: failure, cause: cause,
                                   final: final, destinationRefused: destinationRefused)
    }

    /// `corral migrate --cancel`: refused (with the machine's reason) when it is too late or nothing runs.
    public func cancel() throws(MigrationStateError) {
        var probe = machine
        _ = try probe.handle(.cancelRequested)
        feed?.yield(.input(.cancelRequested))
    }

    /// `--timeout` elapsed (the run starts its own timer from `options.timeoutSeconds`; this is for callers
    /// with another clock).
    public func timeOut() {
        feed?.yield(.input(.timeout))
    }

    // MARK: - Inputs

    /// The machine's input for one source QEMU event (nil: not ours, or nothing to tell).
    public static func input(for event: QMPEvent, jobs: [String: String]) -> MigrationInput? {
        switch event.name {
        case "MIGRATION":
            guard let raw = event.data["status"]?.stringValue, let status = MigrationStatus(rawValue: raw) else {
                return nil
            }
            return .migrationEvent(status)
        case "BLOCK_JOB_READY":
            guard let job = event.data["device"]?.stringValue, let disk = jobs[job] else { return nil }
            return .storageReady(disk: disk)
        case "BLOCK_JOB_COMPLETED":
            guard let job = event.data["device"]?.stringValue, let disk = jobs[job] else { return nil }
            if let error = event.data["error"]?.stringValue { return .storageFailed(disk: disk, reason: error) }
            return .storageFinished(disk: disk)
        case "BLOCK_JOB_ERROR":
            guard let job = event.data["device"]?.stringValue, let disk = jobs[job] else { return nil }
            let operation = event.data["operation"]?.stringValue ?? "an I/O"
            return .storageFailed(disk: disk, reason: "\(operation) error on the mirror")
        default:
            return nil
        }
    }

    private func handle(_ input: MigrationInput) async {
        let actions: [MigrationAction]
        do {
            actions = try machine.handle(input)
        } catch {
            // Late or repeated observations the machine does not take (logged in the QMP transcript anyway).
            return
        }
        for action in actions {
            if let next = await perform(action) {
                feed?.yield(.input(next))
                if Self.endsBatch(next) { break }
            }
        }
        if machine.state == .cancelling, cancelTimer == nil {
            let grace = setup.cancelGrace
            let feed = self.feed
            cancelTimer = Task {
                try? await Task.sleep(for: grace)
                if !Task.isCancelled { feed?.yield(.input(.timeout)) }
            }
        }
    }

    private static func endsBatch(_ input: MigrationInput) -> Bool {
        switch input {
        case .commandFailed, .destinationFailed, .destinationLost, .linkError: true
        default: false
        }
    }

    /// `query-migrate` for progress; also notices a stream that stopped moving (a cut link).
    private func poll() async {
        switch machine.state {
        case .settingUp, .migrating, .switchingOver, .postcopy, .completing: break
        default: return
        }
        guard let reply = try? await qmp.execute("query-migrate", nil, timeout: .seconds(5)) else { return }
        let progress = MigrationProgress(queryMigrate: reply)
        await handle(.queryResult(progress))
        guard progress.status == .active, let moved = progress.ramTransferred else { return }
        let now = ContinuousClock.now
        if moved != lastMoved {
            lastMoved = moved
            lastMovement = now
        } else if !stallReported, lastMovement.duration(to: now) >= setup.stallLimit {
            stallReported = true
            await handle(.linkError("no data moved for \(setup.stallLimit) (is the link to the destination down?)"))
        }
    }

    // MARK: - Actions

    /// Performs one action; returns the observation it produced, if any.
    private func perform(_ action: MigrationAction) async -> MigrationInput? {
        switch action {
        case .prepareDestination:
            do {
                let answer = try await peer.prepareIncoming(setup.incoming)
                reply = answer
                return .destinationReady(uri: answer.uri)
            } catch {
                cause = cause ?? error
                destinationRefused = true
                return .destinationFailed(reason: error.message)
            }

        case .configureSource:
            var tlsID: String?
            if setup.options.tls {
                tlsID = MigrationPlan.tlsCredsID
                _ = try? await qmp.execute("object-del", ["id": .string(MigrationPlan.tlsCredsID)], timeout: nil)
                let object = MigrationPlan.tlsCredsObject(id: MigrationPlan.tlsCredsID, endpoint: .client,
                                                          dir: setup.tlsDirectory)
                if let failed = await send(MigrationPlan.objectAdd(object)) { return failed }
                tlsAdded = true
            }
            for step in MigrationPlan.sourceSetup(options: setup.options, tlsCredsID: tlsID,
                                                  tlsHostname: setup.tlsHostname) {
                if let failed = await send(step) { return failed }
            }
            return nil

        case .startMirrors:
            guard let host = reply?.nbdHost, let port = reply?.nbdPort else {
                return mirrorRefused("the destination did not export the disks over NBD")
            }
            let nbd: HostPort
            do { nbd = try HostPort(host: host, port: port) } catch {
                return mirrorRefused("the destination's NBD address: \(error.description)")
            }
            let steps = MigrationPlan.startMirrors(setup.disks, nbd: nbd,
                                                   tlsCredsID: tlsAdded ? MigrationPlan.tlsCredsID : nil)
            for step in steps {
                if let failed = await send(step) { return failed }
            }
            return nil

        case .startMigration(let uri):
            return await send(MigrationPlan.start(uri: uri))

        case .finishMirrors:
            // A READY mirror cancelled without force copies the last writes and ends with BLOCK_JOB_COMPLETED.
            for step in MigrationPlan.finishMirrors(setup.disks, force: false) {
                if let failed = await send(step) { return failed }
            }
            return nil

        case .continueSwitchover:
            for step in MigrationPlan.removeNBDClients(setup.disks) {
                if let failed = await send(step) { return failed }
            }
            return await send(MigrationPlan.continueAfterPreSwitchover())

        case .startPostcopy:
            return await send(MigrationPlan.postcopyStart())

        case .cancelMigration:
            return await send(MigrationPlan.cancel())

        case .abandonMirrors:
            for step in MigrationPlan.finishMirrors(setup.disks, force: true) {
                _ = try? await qmp.send(step)
            }
            await waitForJobsGone(setup.disks.map(\.mirrorJobID))
            for step in MigrationPlan.removeNBDClients(setup.disks) {
                _ = try? await qmp.send(step)
            }
            return nil

        case .tellDestinationToAbort:
            // Best effort: a destination that lost its QEMU has already forgotten the VM.
            try? await peer.abortIncoming(setup.name)
            return nil

        case .resumeSource:
            await resumeSourceIfPaused()
            return nil

        case .tellDestinationToCommit:
            do {
                _ = try await peer.commitIncoming(setup.name)
                return .destinationCommitted
            } catch {
                cause = cause ?? error
                // The peer answered (it could not resume, or has no such VM; even an internal error is an
                // answer): it keeps nothing running. Only a transport failure (unreachable) leaves us not knowing
                // whether its `cont` ran.
                if case .unreachable = error { return .destinationLost }
                return .destinationFailed(reason: error.message)
            }

        case .stopSource:
            // The final figures (total-time, downtime) while the source QEMU still answers.
            if let reply = try? await qmp.execute("query-migrate", nil, timeout: .seconds(3)) {
                let progress = MigrationProgress(queryMigrate: reply)
                final = progress
                await progressSink(progress)
            }
            await willStopSource()
            try? await qmp.quit(timeout: .seconds(3))
            return nil

        case .reportProgress(let progress):
            await progressSink(progress)
            return nil

        case .fail(let reason, let consequence):
            failure = (reason, consequence)
            return nil
        }
    }

    /// The mirrors cannot start: a failure of `blockdev-mirror` before it is sent.
    private func mirrorRefused(_ reason: String) -> MigrationInput {
        cause = cause ?? .qmp(QMPFailure(command: "blockdev-mirror", desc: reason))
        return .commandFailed(command: "blockdev-mirror", reason: reason)
    }

    /// Runs one command; a failure becomes the machine's `commandFailed` (and the first `cause`).
    private func send(_ step: QMPStep) async -> MigrationInput? {
        do {
            try await qmp.send(step)
            return nil
        } catch {
            cause = cause ?? .qmp(QMPFailure(error, command: step.command))
            return .commandFailed(command: step.command, reason: error.description)
        }
    }

    private func waitForJobsGone(_ jobs: [String]) async {
        guard !jobs.isEmpty else { return }
        for _ in 0..<100 {
            guard let listed = try? await qmp.execute("query-block-jobs", nil, timeout: .seconds(3)) else { return }
            if !(listed.arrayValue ?? []).contains(where: { jobs.contains($0["device"]?.stringValue ?? "") }) { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// `cont` only when `query-status` says the migration left the guest stopped: QEMU resumes a source that was
    /// running by itself after a cancel or failure, but not after `completed` (postmigrate). While the last
    /// pass is being torn down (`finish-migrate`) the answer is not final yet: ask again.
    private func resumeSourceIfPaused() async {
        for _ in 0..<100 {
            guard let status = try? await qmp.execute("query-status", nil, timeout: .seconds(3)) else { return }
            let runState = status["status"]?.stringValue ?? ""
            if runState == "finish-migrate" || runState == "inmigrate" {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            if runState != "running" {
                _ = try? await qmp.execute(MigrationPlan.resume().command, nil, timeout: nil)
            }
            return
        }
    }
}
