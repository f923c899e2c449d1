import CorralCore
import CorralModel
import JSON
import Profiles
import Testing

/// The VM lifecycle as a value: every transition, with the actions that come out, without QEMU.
@Suite struct VMLifecycleTests {
    static let engine = RestartPolicyEngine(maxRestarts: 2, window: 60, firstDelay: .milliseconds(200),
                                            maxDelay: .seconds(8))

    static func fresh(_ policy: RestartPolicy = .onFailure) -> VMLifecycle {
        VMLifecycle(recorded: .stopped, desiredRunning: false, lastExit: nil, restartCount: 0, restartTimes: [],
                    policy: policy, engine: engine)
    }

    /// A lifecycle whose QEMU (generation 1) runs.
    static func running(_ policy: RestartPolicy = .onFailure) throws -> VMLifecycle {
        var life = fresh(policy)
        _ = try life.handle(.start(.run), now: 0)
        _ = try life.handle(.started(pid: 42, qemuStatus: "running"), now: 0)
        return life
    }

    @Test func aStartRunsAndIsRecordedAsMeantToRun() throws {
        var life = Self.fresh()
        #expect(try life.handle(.start(.run), now: 0) == [])
        #expect(life.vmState == .starting && life.recordedState == .running)
        let actions = try life.handle(.started(pid: 42, qemuStatus: "running"), now: 0)
        #expect(actions == [.persist, .publish(.started, ["pid": 42])])
        #expect(life.state == .up(generation: 1, phase: .running, ending: .unexpected))
        #expect(life.desiredRunning)
    }

    @Test func aFailedStartGoesBackToWhereItWasAndSaysWhy() throws {
        var life = VMLifecycle(recorded: .crashed, desiredRunning: false, lastExit: nil, restartCount: 0,
                               restartTimes: [], policy: .always, engine: Self.engine)
        _ = try life.handle(.start(.run), now: 0)
        let actions = try life.handle(.startFailed(reason: "no such kernel"), now: 0)
        #expect(actions == [.publish(.startFailed, ["reason": "no such kernel"]), .persist])
        #expect(life.vmState == .crashed && life.lastExit == "start failed: no such kernel" && !life.desiredRunning)
    }

    /// The bug `ManagedVM` had: a pause whose STOP event arrived after the reply left `vm.json` saying running.
    /// Here the pause itself is recorded, and the late event changes nothing more.
    @Test func aPauseIsRecordedWhicheverComesFirstReplyOrEvent() throws {
        var life = try Self.running()
        #expect(try life.handle(.pausedByRequest, now: 0) == [.persist])
        #expect(life.vmState == .paused && life.recordedState == .paused)
        #expect(try life.handle(.qmpEvent(name: "STOP", guest: nil), now: 0) == [])
        #expect(life.recordedState == .paused)

        var other = try Self.running()
        #expect(try other.handle(.qmpEvent(name: "STOP", guest: nil), now: 0) == [.persist])
        #expect(try other.handle(.pausedByRequest, now: 0) == [])
        #expect(other.recordedState == .paused)
        #expect(try other.handle(.resumedByRequest, now: 0) == [.persist])
        #expect(other.recordedState == .running)
    }

    @Test func anExitCorralAskedForStaysDownAndIsNotMeantToRun() throws {
        var life = try Self.running(.always)
        _ = try life.handle(.endRequested(note: "stopped by corral"), now: 0)
        let actions = try life.handle(.exited(generation: 1, status: "exited with status 0"), now: 0)
        #expect(actions == [.endRun(note: "stopped by corral"), .persist,
                            .publish(.stopped, ["reason": "stopped by corral"])])
        #expect(life.vmState == .stopped && !life.desiredRunning && life.lastExit == "stopped by corral")
        #expect(try life.handle(.exitExplained(note: "stopped by corral (powerdown)"), now: 0) == [.persist])
        #expect(life.lastExit == "stopped by corral (powerdown)")
    }

    @Test func aGuestPowerOffIsNotAFailureUnlessThePolicyIsAlways() throws {
        var onFailure = try Self.running(.onFailure)
        #expect(try onFailure.handle(.qmpEvent(name: "SHUTDOWN", guest: true), now: 0) == [])
        let actions = try onFailure.handle(.exited(generation: 1, status: "exited with status 0"), now: 0)
        #expect(actions == [.endRun(note: "guest powered off"), .publish(.stopped, ["reason": "guest powered off"]),
                            .persist])
        #expect(onFailure.vmState == .stopped && !onFailure.desiredRunning)

        var always = try Self.running(.always)
        _ = try always.handle(.qmpEvent(name: "SHUTDOWN", guest: true), now: 0)
        let restart = try always.handle(.exited(generation: 1, status: "exited with status 0"), now: 10)
        #expect(restart.last == .scheduleRestart(after: .milliseconds(200), generation: 1))
    }

    @Test func aCrashRestartsAfterTheDelayAndCountsTheRestart() throws {
        var life = try Self.running()
        let actions = try life.handle(.exited(generation: 1, status: "killed by signal 9"), now: 10)
        #expect(actions == [.endRun(note: "QEMU killed by signal 9"),
                            .publish(.stopped, ["reason": "QEMU killed by signal 9"]),
                            .persist, .scheduleRestart(after: .milliseconds(200), generation: 1)])
        #expect(life.restartTimes == [10] && life.desiredRunning)
        #expect(try life.handle(.restartDue(generation: 1), now: 10.2) == [.relaunch])
        #expect(life.vmState == .starting)
        let started = try life.handle(.started(pid: 43, qemuStatus: "running"), now: 10.5)
        #expect(started == [.persist, .publish(.started, ["pid": 43]), .publish(.restarted, ["restartCount": 1])])
        #expect(life.restartCount == 1 && life.generation == 2)
    }

    @Test func aStaleRestartOrExitChangesNothing() throws {
        var life = try Self.running()
        _ = try life.handle(.exited(generation: 1, status: "killed by signal 9"), now: 10)
        // The operator started it by hand before the timer fired.
        _ = try life.handle(.start(.run), now: 10.1)
        _ = try life.handle(.started(pid: 50, qemuStatus: "running"), now: 10.1)
        #expect(try life.handle(.restartDue(generation: 1), now: 10.2) == [], "the old timer is ignored")
        #expect(try life.handle(.exited(generation: 1, status: "exited"), now: 10.3) == [], "so is the old QEMU")
        #expect(life.state == .up(generation: 2, phase: .running, ending: .unexpected))
    }

    @Test func tooManyRestartsGiveUpAsCrashed() throws {
        var life = try Self.running()
        for attempt in 0..<2 {
            let now = Double(attempt)
            let exit = try life.handle(.exited(generation: life.generation, status: "killed by signal 9"), now: now)
            #expect(exit.last == .scheduleRestart(after: Self.engine.delay(forAttempt: attempt),
                                                  generation: life.generation))
            _ = try life.handle(.restartDue(generation: life.generation), now: now)
            _ = try life.handle(.started(pid: 60, qemuStatus: "running"), now: now)
        }
        let last = try life.handle(.exited(generation: life.generation, status: "killed by signal 9"), now: 3)
        #expect(last.contains(.publish(.crashed, ["reason": "2 restarts within 60 s; giving up (restart: on-failure)"])))
        #expect(life.vmState == .crashed && !life.desiredRunning)
        #expect(life.lastExit == "QEMU killed by signal 9; 2 restarts within 60 s; giving up (restart: on-failure)")
    }

    @Test func aFailedAutomaticRestartFeedsThePolicyAgain() throws {
        var life = try Self.running()
        _ = try life.handle(.exited(generation: 1, status: "killed by signal 9"), now: 0)
        _ = try life.handle(.restartDue(generation: 1), now: 0.2)
        let failed = try life.handle(.startFailed(reason: "QEMU exited with status 1 during start"), now: 0.3)
        #expect(failed.last == .scheduleRestart(after: .milliseconds(400), generation: 1))
        #expect(life.vmState == .stopped && life.restartTimes.count == 2)
    }

    @Test func withoutARestartPolicyACrashStaysCrashed() throws {
        var life = try Self.running(.no)
        let actions = try life.handle(.exited(generation: 1, status: "killed by signal 11"), now: 0)
        #expect(actions.suffix(2) == [.persist, .publish(.crashed, ["reason": "QEMU killed by signal 11"])])
        #expect(life.vmState == .crashed && !life.desiredRunning)
    }

    @Test func aQEMUThatDiedWhileNoDaemonWatchedGoesToThePolicy() throws {
        var life = VMLifecycle(recorded: .running, desiredRunning: true, lastExit: nil, restartCount: 3,
                               restartTimes: [], policy: .onFailure, engine: Self.engine)
        #expect(life.vmState == .stopped, "a recorded running state means nothing without a QEMU")
        let actions = try life.handle(.foundDead, now: 0)
        #expect(actions == [.persist, .scheduleRestart(after: .milliseconds(200), generation: 0)])
        #expect(life.lastExit == "QEMU exited while the daemon was not running")
    }

    @Test func reattachTakesTheStateQEMUReports() throws {
        var life = VMLifecycle(recorded: .paused, desiredRunning: true, lastExit: nil, restartCount: 0,
                               restartTimes: [], policy: .onFailure, engine: Self.engine)
        let actions = try life.handle(.reattached(pid: 7, qemuStatus: "paused"), now: 0)
        #expect(actions == [.persist, .publish(.reattached, ["pid": 7])])
        #expect(life.recordedState == .paused && life.desiredRunning)
    }

    @Test func anIncomingVMThatLosesItsQEMUIsForgottenNotRestarted() throws {
        var life = Self.fresh(.always)
        _ = try life.handle(.start(.incoming), now: 0)
        #expect(life.recordedState == .incoming)
        _ = try life.handle(.started(pid: 9, qemuStatus: "inmigrate"), now: 0)
        #expect(life.vmState == .incoming && !life.desiredRunning, "not meant to run before the commit")
        let actions = try life.handle(.exited(generation: 1, status: "exited with status 1"), now: 0)
        #expect(actions.last == .forgetIncoming)
        #expect(!actions.contains { if case .scheduleRestart = $0 { return true } else { return false } })

        var committed = Self.fresh()
        _ = try committed.handle(.start(.incoming), now: 0)
        _ = try committed.handle(.started(pid: 9, qemuStatus: "inmigrate"), now: 0)
        #expect(try committed.handle(.incomingCommitted, now: 0) == [.persist, .publish(.migratedIn, nil)])
        #expect(committed.vmState == .running && committed.desiredRunning)
    }

    @Test func aRolledBackMigrationGoesBackOrStaysPausedWhenTheOwnerIsUnknown() throws {
        var life = try Self.running()
        _ = try life.handle(.migrationStarted, now: 0)
        #expect(life.vmState == .migrating)
        _ = try life.handle(.migrationRolledBack(ownerUnknown: false), now: 0)
        #expect(life.vmState == .running)
        _ = try life.handle(.migrationStarted, now: 0)
        _ = try life.handle(.migrationRolledBack(ownerUnknown: true), now: 0)
        #expect(life.vmState == .paused && life.recordedState == .paused)
    }

    @Test func anInputThatDoesNotFitIsRefusedNamingBoth() throws {
        var life = Self.fresh()
        #expect(throws: VMLifecycleError(input: .pausedByRequest, state: .down(.stopped))) {
            try life.handle(.pausedByRequest, now: 0)
        }
        #expect(life.refusal(.pause, vm: "web") == "cannot pause web: it is stopped (pause needs running)")
    }
}
