import CorralModel
import JSON
import Profiles

/// What a running VM is doing, as far as its lifecycle cares.
public enum RunPhase: Sendable, Equatable {
    case running, paused
    /// A migration destination: QEMU waits for the stream and runs nothing until the commit.
    case incoming
    /// Being migrated away; `wasPaused` says what it goes back to when the migration is rolled back.
    case migrating(wasPaused: Bool)

    public var vmState: VMState {
        switch self {
        case .running: return .running
        case .paused: return .paused
        case .incoming: return .incoming
        case .migrating: return .migrating
        }
    }
}

/// How the current QEMU is expected to end: folded into the run instead of loose flags.
public enum RunEnding: Sendable, Equatable {
    /// Nobody asked: an exit is a failure (unless the guest powered off).
    case unexpected
    /// The guest powered itself off (QMP SHUTDOWN with guest=true): not a failure.
    case guestPoweredOff
    /// corral ended it on purpose (stop, kill, rm, an aborted incoming migration, a completed outgoing one); the
    /// note is what `lastExit` will say.
    case requested(note: String)
}

/// What a start is for.
public enum StartKind: Sendable, Equatable {
    case run, paused, incoming
    /// An automatic restart after a failure (its failure feeds the restart policy again).
    case restart
}

/// The lifecycle of one VM as a value: observations in, actions out, no I/O and no clocks (`now` is passed in).
/// `ManagedVM` feeds it what happened (QEMU spawned, an event, an exit, a command's reply) and performs what comes
/// out (write `vm.json`, publish an event, clean up a run, schedule a restart).
///
/// Invariants:
/// - Exactly one QEMU per `generation`; an exit or a restart timer of an older generation changes nothing.
/// - `desiredRunning` is true from a successful start until corral ends the VM on purpose or the restart policy
///   gives up; the restart policy applies only to exits nobody asked for.
/// - Every state change that must survive a daemon restart comes with `.persist`; the record is derived from this
///   value, so `vm.json` cannot disagree with the state (a paused VM is recorded paused).
public struct VMLifecycle: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// No QEMU: `.stopped` or `.crashed`.
        case down(VMState)
        /// QEMU is being launched; a failure returns to `returnTo`.
        case starting(kind: StartKind, returnTo: VMState)
        /// QEMU runs (generation `generation`).
        case up(generation: Int, phase: RunPhase, ending: RunEnding)
    }

    public enum Input: Sendable, Equatable {
        /// An operation (or the restart timer) is about to launch QEMU.
        case start(StartKind)
        /// QEMU answered QMP after a launch; `qemuStatus` is `query-status`'s run state.
        case started(pid: Int32, qemuStatus: String?)
        case startFailed(reason: String)
        /// A QEMU that survived a daemon restart was taken over (found by its recorded pid or by its pid file).
        case reattached(pid: Int32, qemuStatus: String?)
        /// The recorded QEMU is gone (it died while no daemon watched).
        case foundDead
        /// A QMP event of the current QEMU (`guest` is SHUTDOWN's flag).
        case qmpEvent(name: String, guest: Bool?)
        /// `stop`/`cont` sent by corral succeeded.
        case pausedByRequest, resumedByRequest
        /// corral is about to end this QEMU on purpose (the coming exit is not a failure).
        case endRequested(note: String)
        /// Once the QEMU ended on request: how it went ("stopped by corral (powerdown)") replaces the note.
        case exitExplained(note: String)
        case migrationStarted
        /// A migration was rolled back; `ownerUnknown` leaves the guest paused (the destination may run it).
        case migrationRolledBack(ownerUnknown: Bool)
        /// The destination's guest now runs here.
        case incomingCommitted
        /// QEMU of `generation` ended; `status` says how ("exited with status 1", "killed by signal 9").
        case exited(generation: Int, status: String)
        /// The delayed restart of `generation`'s failure is due.
        case restartDue(generation: Int)
    }

    public enum Action: Sendable, Equatable {
        /// Write `vm.json` (derived from this value).
        case persist
        case publish(CorralEventName, JSONValue?)
        /// The run is over: close its monitor, remove its socket and pid file, its cgroup, its per-run state.
        case endRun(note: String)
        /// Call back with `.restartDue(generation)` after `delay`.
        case scheduleRestart(after: Duration, generation: Int)
        /// Launch QEMU again now (an automatic restart).
        case relaunch
        /// An incoming VM lost its QEMU before the commit: the manager forgets it.
        case forgetIncoming
    }

    public private(set) var state: State
    /// Bumped for every QEMU started or adopted.
    public private(set) var generation: Int
    public private(set) var desiredRunning: Bool
    public private(set) var lastExit: String?
    public private(set) var restartCount: Int
    /// Times (seconds since the epoch) of recent automatic restarts, for the restart cap.
    public private(set) var restartTimes: [Double]
    public var policy: RestartPolicy
    public let engine: RestartPolicyEngine

    /// A VM as its record left it. A recorded running/paused/migrating state means nothing without a QEMU: the
    /// VM starts out down and reattach (or the restart policy) decides.
    public init(recorded: VMState, desiredRunning: Bool, lastExit: String?, restartCount: Int, restartTimes: [Double],
                policy: RestartPolicy, engine: RestartPolicyEngine = RestartPolicyEngine()) {
        self.state = .down(recorded == .crashed ? .crashed : .stopped)
        self.generation = 0
        self.desiredRunning = desiredRunning
        self.lastExit = lastExit
        self.restartCount = restartCount
        self.restartTimes = restartTimes
        self.policy = policy
        self.engine = engine
    }

    /// The state users see.
    public var vmState: VMState {
        switch state {
        case .down(let down): return down
        case .starting: return .starting
        case .up(_, let phase, _): return phase.vmState
        }
    }

    /// What `vm.json` records: the state a restarted daemon should expect to find.
    public var recordedState: VMState {
        switch state {
        case .starting(let kind, _):
            switch kind {
            case .incoming: return .incoming
            case .paused: return .paused
            case .run, .restart: return .running
            }
        default: return vmState
        }
    }

    public var isUp: Bool {
        if case .up = state { return true }
        return false
    }

    /// nil when `operation` may run now; otherwise the message to show.
    public func refusal(_ operation: VMOperation, vm: String) -> String? {
        Lifecycle.refusal(operation, vm: vm, state: vmState)
    }

    public mutating func handle(_ input: Input, now: Double) throws(VMLifecycleError) -> [Action] {
        switch (input, state) {
        case (.start(let kind), .down(let down)):
            state = .starting(kind: kind, returnTo: down)
            return []

        case (.started(let pid, let status), .starting(let kind, _)):
            let phase: RunPhase
            switch kind {
            case .incoming: phase = .incoming
            case .run, .paused, .restart: phase = status == "running" ? .running : .paused
            }
            adopt(phase)
            var actions: [Action] = [.persist, .publish(.started, ["pid": .int(Int64(pid))])]
            if kind == .restart {
                restartCount += 1
                actions.append(.publish(.restarted, ["restartCount": .int(Int64(restartCount))]))
            }
            return actions

        case (.startFailed(let reason), .starting(let kind, let returnTo)):
            state = .down(returnTo)
            lastExit = "start failed: \(reason)"
            var actions: [Action] = [.publish(.startFailed, ["reason": .string(reason)])]
            if kind == .restart { actions += decide(.failure(reason), now: now) } else { actions.append(.persist) }
            return actions

        case (.reattached(let pid, let status), .down):
            // Also when only its pid file named it: the start got that far, so the VM is meant to run.
            adopt(status == "paused" || status == "prelaunch" ? .paused : .running)
            return [.persist, .publish(.reattached, ["pid": .int(Int64(pid))])]

        case (.foundDead, .down):
            lastExit = "QEMU exited while the daemon was not running"
            return decide(.failure(lastExit!), now: now)

        case (.qmpEvent(let name, let guest), .up(let generation, let phase, let ending)):
            if name == "SHUTDOWN", guest == true, ending == .unexpected {
                state = .up(generation: generation, phase: phase, ending: .guestPoweredOff)
            }
            guard let next = Lifecycle.state(after: name, from: phase.vmState) else { return [] }
            state = .up(generation: generation, phase: next == .paused ? .paused : .running, ending: endingNow)
            return [.persist]

        case (.pausedByRequest, .up(let generation, .running, let ending)):
            state = .up(generation: generation, phase: .paused, ending: ending)
            return [.persist]
        case (.pausedByRequest, .up(_, .paused, _)):
            return []  // the STOP event came first
        case (.resumedByRequest, .up(let generation, .paused, let ending)):
            state = .up(generation: generation, phase: .running, ending: ending)
            return [.persist]
        case (.resumedByRequest, .up(_, .running, _)):
            return []

        case (.endRequested(let note), .up(let generation, let phase, _)):
            state = .up(generation: generation, phase: phase, ending: .requested(note: note))
            return []

        case (.exitExplained(let note), .down):
            lastExit = note
            return [.persist]

        case (.migrationStarted, .up(let generation, let phase, let ending)) where phase == .running || phase == .paused:
            state = .up(generation: generation, phase: .migrating(wasPaused: phase == .paused), ending: ending)
            return []

        case (.migrationRolledBack(let ownerUnknown), .up(let generation, .migrating(let wasPaused), let ending)):
            state = .up(generation: generation, phase: ownerUnknown || wasPaused ? .paused : .running, ending: ending)
            return [.persist]
        case (.migrationRolledBack, .down), (.migrationRolledBack, .up):
            return []

        case (.incomingCommitted, .up(let generation, .incoming, let ending)):
            state = .up(generation: generation, phase: .running, ending: ending)
            desiredRunning = true
            return [.persist, .publish(.migratedIn, nil)]

        case (.exited(let exited, let status), .up(let current, let phase, let ending)):
            guard exited == current else { return [] }
            return ended(phase: phase, ending: ending, status: status, now: now)
        case (.exited, _):
            return []

        case (.restartDue(let due), .down):
            guard due == generation else { return [] }
            state = .starting(kind: .restart, returnTo: vmState)
            return [.relaunch]
        case (.restartDue, _):
            return []

        default:
            throw VMLifecycleError(input: input, state: state)
        }
    }

    private var endingNow: RunEnding {
        if case .up(_, _, let ending) = state { return ending }
        return .unexpected
    }

    private mutating func adopt(_ phase: RunPhase) {
        generation += 1
        state = .up(generation: generation, phase: phase, ending: .unexpected)
        if phase != .incoming { desiredRunning = true }
    }

    /// The run of the current generation ended.
    private mutating func ended(phase: RunPhase, ending: RunEnding, status: String, now: Double) -> [Action] {
        if phase == .incoming {
            // A destination that lost its stream (or was aborted): nothing to restart, nothing to keep.
            let note: String
            if case .requested(let asked) = ending { note = asked } else { note = "incoming migration failed (QEMU \(status))" }
            state = .down(.stopped)
            lastExit = note
            return [.endRun(note: note), .persist, .publish(.stopped, ["reason": .string(note)]), .forgetIncoming]
        }
        let cause: ExitCause
        let note: String
        switch ending {
        case .requested(let asked):
            cause = .requested
            note = asked
        case .guestPoweredOff:
            cause = .guestShutdown
            note = "guest powered off"
        case .unexpected:
            cause = .failure("QEMU \(status)")
            note = "QEMU \(status)"
        }
        state = .down(.stopped)
        lastExit = note
        var actions: [Action] = [.endRun(note: note)]
        if cause == .requested {
            desiredRunning = false
            return actions + [.persist, .publish(.stopped, ["reason": .string(note)])]
        }
        actions.append(.publish(.stopped, ["reason": .string(note)]))
        return actions + decide(cause, now: now)
    }

    /// The restart policy's decision after an exit nobody asked for (or a failed automatic restart).
    private mutating func decide(_ cause: ExitCause, now: Double) -> [Action] {
        switch engine.decide(policy: policy, cause: cause, recentRestarts: restartTimes, now: now) {
        case .stayDown(let final):
            state = .down(final)
            desiredRunning = false
            if final == .crashed { return [.persist, .publish(.crashed, ["reason": .string(lastExit ?? "")])] }
            return [.persist]
        case .giveUp(let why):
            state = .down(.crashed)
            desiredRunning = false
            lastExit = (lastExit.map { $0 + "; " } ?? "") + why
            return [.persist, .publish(.crashed, ["reason": .string(why)])]
        case .restart(let delay):
            if case .starting(_, let returnTo) = state { state = .down(returnTo) }
            restartTimes = restartTimes.filter { now - $0 < engine.window } + [now]
            return [.persist, .scheduleRestart(after: delay, generation: generation)]
        }
    }
}

/// An input the lifecycle cannot take in its state: a bug in the caller, reported with both.
public struct VMLifecycleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var input: VMLifecycle.Input
    public var state: VMLifecycle.State

    public init(input: VMLifecycle.Input, state: VMLifecycle.State) {
        self.input = input
        self.state = state
    }

    public var description: String { "lifecycle: \(input) is not expected in \(state)" }
}
