import CorralModel
import CorralCore
import Testing

/// Runs inputs in order and returns every action; fails the test on a refusal.
private func run(_ machine: inout MigrationStateMachine, _ inputs: [MigrationInput],
                 sourceLocation: SourceLocation = #_sourceLocation) -> [MigrationAction] {
    var all: [MigrationAction] = []
    for input in inputs {
        do { all += try machine.handle(input) } catch {
            Issue.record("refused \(input.name): \(error)", sourceLocation: sourceLocation)
        }
    }
    return all
}

private func refusal(_ machine: inout MigrationStateMachine, _ input: MigrationInput) -> MigrationStateError? {
    do {
        _ = try machine.handle(input)
        return nil
    } catch {
        return error
    }
}

private let uri = "tcp:192.0.2.2:49152"
private let precopyToActive: [MigrationInput] = [
    .start, .destinationReady(uri: uri), .migrationEvent(.setup), .migrationEvent(.active),
]

private func failure(_ actions: [MigrationAction]) -> (String, MigrationFailureConsequence)? {
    for case .fail(let reason, let consequence) in actions { return (reason, consequence) }
    return nil
}

@Suite struct MigrationStateMachineHappyPaths {
    @Test func precopyCompletesAndHandsOwnershipOver() throws {
        var m = MigrationStateMachine(options: MigrationOptions())
        #expect(m.state == .idle && m.owner == .source)
        #expect(try m.handle(.start) == [.prepareDestination])
        #expect(m.state == .preparingDestination)
        #expect(try m.handle(.destinationReady(uri: uri)) == [.configureSource, .startMigration(uri: uri)])
        #expect(m.state == .settingUp)
        #expect(try m.handle(.migrationEvent(.setup)) == [])
        #expect(try m.handle(.migrationEvent(.active)) == [])
        #expect(m.state == .migrating)
        let progress = MigrationProgress(status: .active, ramTransferred: 10, ramRemaining: 90)
        #expect(try m.handle(.queryResult(progress)) == [.reportProgress(progress)])
        #expect(try m.handle(.migrationEvent(.completed)) == [.tellDestinationToCommit])
        #expect(m.state == .completing && m.owner == .source)
        // A late query reply saying the same thing changes nothing.
        let done = MigrationProgress(status: .completed)
        #expect(try m.handle(.queryResult(done)) == [.reportProgress(done)])
        #expect(try m.handle(.destinationCommitted) == [.stopSource])
        #expect(m.state == .completed && m.owner == .destination)
        // The source QEMU exiting afterwards is what we asked for.
        #expect(try m.handle(.sourceQEMUExited) == [])
    }

    @Test func completionSeenOnlyThroughQueryMigrate() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start, .destinationReady(uri: uri)])
        let actions = run(&m, [.queryResult(MigrationProgress(status: .completed))])
        #expect(actions == [.reportProgress(MigrationProgress(status: .completed)), .tellDestinationToCommit])
        #expect(m.state == .completing)
        // The event arriving afterwards does not commit twice.
        #expect(run(&m, [.migrationEvent(.completed)]) == [])
    }

    @Test func storageMirrorsThenPausesBeforeSwitchover() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root", "fmt-data"])
        #expect(run(&m, [.start]) == [.prepareDestination])
        #expect(run(&m, [.destinationReady(uri: uri)]) == [.configureSource, .startMirrors])
        #expect(m.state == .mirroringStorage)
        #expect(run(&m, [.storageReady(disk: "fmt-root")]) == [])
        #expect(m.state == .mirroringStorage)
        #expect(run(&m, [.storageReady(disk: "fmt-data")]) == [.startMigration(uri: uri)])
        #expect(run(&m, [.migrationEvent(.setup), .migrationEvent(.active)]) == [])
        // A repeated READY (mirror went to standby and back when the guest stopped) is harmless.
        #expect(run(&m, [.storageReady(disk: "fmt-root")]) == [])
        #expect(run(&m, [.migrationEvent(.preSwitchover)]) == [.finishMirrors])
        #expect(m.state == .switchingOver)
        #expect(run(&m, [.storageFinished(disk: "fmt-data")]) == [])
        #expect(run(&m, [.storageFinished(disk: "fmt-root")]) == [.continueSwitchover])
        #expect(run(&m, [.migrationEvent(.device), .migrationEvent(.completed)]) == [.tellDestinationToCommit])
        #expect(run(&m, [.destinationCommitted]) == [.stopSource])
        #expect(m.state == .completed)
    }

    @Test func allStorageReadyShortcut() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-a"])
        #expect(run(&m, [.start, .destinationReady(uri: uri), .allStorageReady])
            == [.prepareDestination, .configureSource, .startMirrors, .startMigration(uri: uri)])
    }

    @Test func withStorageButNoDisksSkipsMirroring() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: [])
        #expect(run(&m, [.start, .destinationReady(uri: uri)])
            == [.prepareDestination, .configureSource, .startMigration(uri: uri)])
        #expect(run(&m, [.migrationEvent(.active), .migrationEvent(.preSwitchover)]) == [.continueSwitchover])
    }

    @Test func postcopyStartsAfterFirstPassAndDestinationOwnsAtSwitchover() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive)
        let firstPass = MigrationProgress(status: .active, dirtySyncCount: 1)
        #expect(run(&m, [.queryResult(firstPass)]) == [.reportProgress(firstPass)])
        let secondPass = MigrationProgress(status: .active, dirtySyncCount: 2)
        #expect(run(&m, [.queryResult(secondPass)]) == [.reportProgress(secondPass), .startPostcopy])
        // Asked once only.
        #expect(run(&m, [.queryResult(secondPass)]) == [.reportProgress(secondPass)])
        #expect(run(&m, [.migrationEvent(.postcopyActive)]) == [.tellDestinationToCommit])
        #expect(m.state == .postcopy && m.owner == .destination)
        #expect(run(&m, [.destinationCommitted]) == [])
        #expect(run(&m, [.migrationEvent(.completed)]) == [.stopSource])
        #expect(m.state == .completed)
    }

    @Test func postcopyCommitIsAskedOnceWhilePollsRepeatTheStatus() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive)
        let switched = MigrationProgress(status: .postcopyActive, dirtySyncCount: 2)
        var actions: [MigrationAction] = []
        for _ in 0..<5 { actions += run(&m, [.queryResult(switched)]) }
        actions += run(&m, [.migrationEvent(.postcopyActive)])
        #expect(actions.filter { $0 == .tellDestinationToCommit }.count == 1)
        #expect(!actions.contains(.startPostcopy))  // QEMU switched already; asking again would fail
        #expect(m.state == .postcopy)
    }

    @Test func postcopyCompletedBeforeCommitAcknowledged() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive + [.migrationEvent(.postcopyActive), .migrationEvent(.completed)])
        #expect(m.state == .completing && m.owner == .destination)
        #expect(run(&m, [.destinationCommitted]) == [.stopSource])
        #expect(m.state == .completed)
    }

    @Test func precopyCanFinishBeforePostcopyIsNeeded() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive)
        #expect(run(&m, [.migrationEvent(.completed)]) == [.tellDestinationToCommit])
        #expect(run(&m, [.destinationCommitted]) == [.stopSource])
    }

    @Test func timeoutDuringPostcopyIsIgnored() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true, timeoutSeconds: 5))
        _ = run(&m, precopyToActive + [.migrationEvent(.postcopyActive)])
        #expect(run(&m, [.timeout]) == [])
        #expect(m.state == .postcopy)
    }
}

@Suite struct MigrationStateMachineFailures {
    @Test func destinationFailsToStart() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start])
        let actions = run(&m, [.destinationFailed(reason: "qemu: could not open disk")])
        // The destination cleaned up itself; nothing was done on the source.
        #expect(actions == [.fail(reason: "destination failed: qemu: could not open disk",
                                  consequence: .sourceKeepsRunning)])
        #expect(m.state == .failed("destination failed: qemu: could not open disk"))
        #expect(m.owner == .source)
    }

    @Test func cancelWhilePreparingDestination() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start])
        #expect(run(&m, [.cancelRequested]) == [.tellDestinationToAbort])
        #expect(m.state == .cancelled)
    }

    @Test func cancelDuringSetupWaitsForQEMU() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start, .destinationReady(uri: uri), .migrationEvent(.setup)])
        #expect(run(&m, [.cancelRequested]) == [.cancelMigration])
        #expect(m.state == .cancelling)
        #expect(run(&m, [.migrationEvent(.cancelling)]) == [])
        #expect(run(&m, [.migrationEvent(.cancelled)]) == [.tellDestinationToAbort, .resumeSource])
        #expect(m.state == .cancelled && m.owner == .source)
    }

    @Test func cancelDuringMirroring() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root"])
        _ = run(&m, [.start, .destinationReady(uri: uri)])
        // QEMU was not asked to migrate yet: no migrate_cancel, and the source was never paused.
        #expect(run(&m, [.cancelRequested]) == [.abandonMirrors, .tellDestinationToAbort])
        #expect(m.state == .cancelled)
    }

    @Test func cancelWhileMigratingWithStorage() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root"])
        _ = run(&m, [.start, .destinationReady(uri: uri), .allStorageReady, .migrationEvent(.active)])
        #expect(run(&m, [.cancelRequested]) == [.cancelMigration])
        #expect(run(&m, [.migrationEvent(.cancelled)])
            == [.abandonMirrors, .tellDestinationToAbort, .resumeSource])
        #expect(m.state == .cancelled)
    }

    @Test func cancelAtPreSwitchover() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root"])
        _ = run(&m, [.start, .destinationReady(uri: uri), .allStorageReady, .migrationEvent(.active),
                     .migrationEvent(.preSwitchover)])
        #expect(run(&m, [.cancelRequested]) == [.cancelMigration])
        // The mirror finishing while the cancel is in flight is ignored.
        #expect(run(&m, [.storageFinished(disk: "fmt-root")]) == [])
        #expect(run(&m, [.migrationEvent(.cancelled)])
            == [.abandonMirrors, .tellDestinationToAbort, .resumeSource])
    }

    @Test func cancelLosesTheRaceToCompletion() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive + [.cancelRequested])
        // QEMU completed anyway, but the destination was never told to resume: it is aborted, the source resumes.
        #expect(run(&m, [.migrationEvent(.completed)]) == [.tellDestinationToAbort, .resumeSource])
        #expect(m.state == .cancelled && m.owner == .source)
    }

    @Test func destinationDiesWhileMigrating() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive)
        #expect(run(&m, [.destinationLost]) == [.cancelMigration])
        #expect(m.state == .cancelling)
        let actions = run(&m, [.migrationEvent(.failed)])
        #expect(actions == [.tellDestinationToAbort, .resumeSource,
                            .fail(reason: "destination lost", consequence: .sourceKeepsRunning)])
        #expect(m.state == .failed("destination lost"))
    }

    @Test func linkCutWhileMigrating() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive)
        #expect(run(&m, [.linkError("connection reset")]) == [.cancelMigration])
        let actions = run(&m, [.queryResult(MigrationProgress(status: .failed, errorDescription: "Broken pipe"))])
        #expect(failure(actions)! == ("link to the destination broke: connection reset", .sourceKeepsRunning))
        #expect(actions.contains(.resumeSource))
        #expect(actions.contains(.tellDestinationToAbort))
    }

    @Test func qemuReportsFailureWithErrorDesc() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive)
        let failed = MigrationProgress(status: .failed, errorDescription: "Unable to write to socket: Connection reset")
        // QEMU's migration is already over: no migrate_cancel, straight to the rollback.
        let actions = run(&m, [.queryResult(failed)])
        #expect(actions == [
            .reportProgress(failed), .tellDestinationToAbort, .resumeSource,
            .fail(reason: "QEMU reported the migration failed: Unable to write to socket: Connection reset",
                  consequence: .sourceKeepsRunning),
        ])
    }

    @Test func timeoutWhileMigrating() {
        var m = MigrationStateMachine(options: MigrationOptions(timeoutSeconds: 30))
        _ = run(&m, precopyToActive)
        #expect(run(&m, [.timeout]) == [.cancelMigration])
        let actions = run(&m, [.migrationEvent(.cancelled)])
        #expect(failure(actions)! == ("timed out after 30 s", .sourceKeepsRunning))
        #expect(actions.contains(.resumeSource))
    }

    @Test func cancelNeverConfirmedThenTimeout() {
        var m = MigrationStateMachine(options: MigrationOptions(timeoutSeconds: 30))
        _ = run(&m, precopyToActive + [.linkError("EPIPE")])
        let actions = run(&m, [.timeout])
        #expect(failure(actions)!.0 == "link to the destination broke: EPIPE; QEMU did not confirm the cancel")
        #expect(actions.contains(.resumeSource) && actions.contains(.tellDestinationToAbort))
    }

    @Test func timeoutWhilePreparingDestination() {
        var m = MigrationStateMachine(options: MigrationOptions(timeoutSeconds: 10))
        _ = run(&m, [.start])
        #expect(run(&m, [.timeout]) == [.tellDestinationToAbort,
                                        .fail(reason: "timed out after 10 s", consequence: .sourceKeepsRunning)])
    }

    @Test func mirrorFailsWhileMirroring() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root"])
        _ = run(&m, [.start, .destinationReady(uri: uri)])
        let actions = run(&m, [.storageFailed(disk: "fmt-root", reason: "No space left on device")])
        #expect(actions == [.abandonMirrors, .tellDestinationToAbort,
                            .fail(reason: "mirror of fmt-root failed: No space left on device",
                                  consequence: .sourceKeepsRunning)])
    }

    @Test func sourceSetupCommandFails() {
        // QEMU was never asked to migrate (or refused `migrate`): no migrate_cancel, no resume, the destination aborts.
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start, .destinationReady(uri: uri)])
        #expect(run(&m, [.commandFailed(command: "migrate-set-capabilities", reason: "boom")])
            == [.tellDestinationToAbort, .fail(reason: "migrate-set-capabilities failed: boom", consequence: .sourceKeepsRunning)])
        #expect(m.state == .failed("migrate-set-capabilities failed: boom") && m.owner == .source)
    }

    @Test func refusedMigrateWithStorageAbandonsTheMirrors() {
        var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root"])
        _ = run(&m, [.start, .destinationReady(uri: uri), .storageReady(disk: "fmt-root")])
        #expect(m.state == .settingUp)
        #expect(run(&m, [.commandFailed(command: "migrate", reason: "busy")])
            == [.abandonMirrors, .tellDestinationToAbort, .fail(reason: "migrate failed: busy", consequence: .sourceKeepsRunning)])
    }

    @Test func commandFailureOnceQEMUReportedAStatusStillCancelsFirst() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start, .destinationReady(uri: uri), .migrationEvent(.setup)])
        #expect(run(&m, [.commandFailed(command: "query-migrate", reason: "boom")]) == [.cancelMigration])
        let actions = run(&m, [.commandFailed(command: "migrate_cancel", reason: "no migration")])
        #expect(failure(actions)! == ("query-migrate failed: boom", .sourceKeepsRunning))
        #expect(actions.contains(.resumeSource))
    }

    @Test func sourceQEMUExitsMidMigration() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive)
        #expect(run(&m, [.sourceQEMUExited]) == [.tellDestinationToAbort,
                                                 .fail(reason: "source QEMU exited", consequence: .sourceExited)])
    }

    @Test func pausedVMIsNotResumedOnRollback() {
        var m = MigrationStateMachine(options: MigrationOptions(), sourceWasRunning: false)
        _ = run(&m, precopyToActive + [.cancelRequested])
        #expect(run(&m, [.migrationEvent(.cancelled)]) == [.tellDestinationToAbort])
    }

    @Test func destinationCannotResumeAfterCompletion() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive + [.migrationEvent(.completed)])
        let actions = run(&m, [.destinationFailed(reason: "cont: device error")])
        // The destination killed its QEMU (it reported the failure): the source takes the guest back.
        #expect(actions == [.resumeSource, .fail(reason: "destination could not take over: cont: device error",
                                                 consequence: .sourceKeepsRunning)])
        #expect(m.owner == .source)
    }

    @Test func linkLostWhileDestinationTakesOverLeavesSourcePaused() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive + [.migrationEvent(.completed)])
        let actions = run(&m, [.linkError("no route to host")])
        #expect(actions == [.fail(reason: "link to the destination broke: no route to host", consequence: .ownerUnknown)])
        #expect(!actions.contains(.resumeSource))
        // The answer arrives after all: the destination owns the VM, the source is stopped.
        #expect(run(&m, [.destinationCommitted]) == [.stopSource])
        #expect(m.state == .completed && m.owner == .destination)
    }

    @Test func timeoutWaitingForCommit() {
        var m = MigrationStateMachine(options: MigrationOptions(timeoutSeconds: 60))
        _ = run(&m, precopyToActive + [.migrationEvent(.completed)])
        #expect(failure(run(&m, [.timeout]))!.1 == .ownerUnknown)
    }

    @Test func failureAfterPostcopySwitchoverIsFatal() {
        for input: MigrationInput in [.linkError("reset"), .destinationLost, .migrationEvent(.failed),
                                      .migrationEvent(.postcopyPaused), .sourceQEMUExited,
                                      .destinationFailed(reason: "oom")] {
            var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
            _ = run(&m, precopyToActive + [.migrationEvent(.postcopyActive)])
            let actions = run(&m, [input])
            #expect(actions.count == 1, "\(input.name)")
            #expect(failure(actions)?.1 == .guestLost, "\(input.name)")
            #expect(failure(actions)?.0.contains("the guest is lost") == true, "\(input.name)")
            // Nothing is resumed, cancelled or aborted: neither side can run the guest alone.
            #expect(!actions.contains(.resumeSource) && !actions.contains(.cancelMigration)
                && !actions.contains(.tellDestinationToAbort), "\(input.name)")
        }
    }

    @Test func postcopySwitchDuringCancelIsFatal() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive + [.linkError("reset")])
        let actions = run(&m, [.migrationEvent(.postcopyActive)])
        #expect(failure(actions)?.1 == .guestLost)
    }

    @Test func failuresBeforeCommitNeverLeaveTwoOwners() {
        // Every failure input in every pre-commit state ends with the source owning the VM and never
        // both resume-source and commit-destination in one run.
        let failures: [MigrationInput] = [.cancelRequested, .timeout, .destinationLost, .linkError("x"),
                                          .sourceQEMUExited, .destinationFailed(reason: "x"),
                                          .commandFailed(command: "c", reason: "r")]
        let prefixes: [[MigrationInput]] = [
            [.start], [.start, .destinationReady(uri: uri)],
            [.start, .destinationReady(uri: uri), .storageReady(disk: "d")],
            [.start, .destinationReady(uri: uri), .storageReady(disk: "d"), .migrationEvent(.active)],
            [.start, .destinationReady(uri: uri), .storageReady(disk: "d"), .migrationEvent(.active),
             .migrationEvent(.preSwitchover)],
        ]
        for prefix in prefixes {
            for input in failures {
                var m = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["d"])
                var actions = run(&m, prefix + [input])
                if m.state == .cancelling { actions += run(&m, [.migrationEvent(.cancelled)]) }
                #expect(m.state.isTerminal, "\(prefix.map(\.name)) + \(input.name)")
                #expect(m.owner == .source)
                #expect(!actions.contains(.tellDestinationToCommit))
                #expect(!actions.contains(.stopSource))
            }
        }
    }
}

@Suite struct MigrationStateMachineRefusals {
    @Test func refusalNamesCurrentAndRequiredStates() {
        var m = MigrationStateMachine(options: MigrationOptions())
        let error = refusal(&m, .destinationReady(uri: uri))
        #expect(error?.description == "migration cannot take destinationReady while idle (it needs preparingDestination)")
        _ = run(&m, [.start])
        #expect(refusal(&m, .start)?.description == "migration cannot take start while preparingDestination (it needs idle)")
    }

    @Test func cancelRefusedAfterPostcopySwitchover() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive + [.migrationEvent(.postcopyActive)])
        let error = refusal(&m, .cancelRequested)
        #expect(error?.state == "postcopy")
        #expect(error?.hint == "a postcopy migration cannot be cancelled after switch-over")
        #expect(m.state == .postcopy)
    }

    @Test func cancelRefusedOncePostcopyRequested() {
        var m = MigrationStateMachine(options: MigrationOptions(postcopy: true))
        _ = run(&m, precopyToActive + [.queryResult(MigrationProgress(status: .active, dirtySyncCount: 2))])
        #expect(refusal(&m, .cancelRequested)?.hint == "the postcopy switch-over was already requested and cannot be undone")
    }

    @Test func cancelRefusedWhileCompletingAndTwice() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive + [.cancelRequested])
        #expect(refusal(&m, .cancelRequested)?.hint == "already cancelling")
        var n = MigrationStateMachine(options: MigrationOptions())
        _ = run(&n, precopyToActive + [.migrationEvent(.completed)])
        #expect(refusal(&n, .cancelRequested)?.description
            == "migration cannot take cancelRequested while completing (it needs preparingDestination or "
            + "mirroringStorage or settingUp or migrating or switchingOver): too late: QEMU has completed and the "
            + "destination is taking over")
        var idle = MigrationStateMachine(options: MigrationOptions())
        #expect(refusal(&idle, .cancelRequested)?.hint == "nothing to cancel")
    }

    @Test func storageInputsNeedWithStorageAndKnownDisks() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, [.start, .destinationReady(uri: uri)])
        #expect(refusal(&m, .storageReady(disk: "fmt-root"))?.hint == "this migration has no --with-storage")
        var s = MigrationStateMachine(options: MigrationOptions(withStorage: true), disks: ["fmt-root"])
        _ = run(&s, [.start, .destinationReady(uri: uri)])
        #expect(refusal(&s, .storageReady(disk: "fmt-other"))?.hint == "unknown disk fmt-other (mirrored: fmt-root)")
        #expect(refusal(&s, .storageFinished(disk: "fmt-root"))?.state == "mirroringStorage")
    }

    @Test func unexpectedQEMUStatesAreRefused() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive)
        #expect(refusal(&m, .migrationEvent(.postcopyActive))?.hint == "postcopy-active without --postcopy")
        #expect(refusal(&m, .migrationEvent(.preSwitchover))?.hint
            == "pre-switchover without --with-storage (pause-before-switchover was not set by corral)")
        var early = MigrationStateMachine(options: MigrationOptions())
        _ = run(&early, [.start])
        #expect(refusal(&early, .migrationEvent(.active))?.hint == "QEMU was not asked to migrate yet")
        #expect(refusal(&early, .destinationCommitted) != nil)
    }

    @Test func finishedMigrationIgnoresLateReportsButRefusesRequests() {
        var m = MigrationStateMachine(options: MigrationOptions())
        _ = run(&m, precopyToActive + [.migrationEvent(.completed), .destinationCommitted])
        #expect(run(&m, [.migrationEvent(.completed), .timeout, .linkError("late"), .destinationLost]) == [])
        #expect(refusal(&m, .start) != nil)
        #expect(refusal(&m, .cancelRequested)?.hint == "the migration is over")
        #expect(m.state == .completed)
    }
}
