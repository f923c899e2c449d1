import CorralModel

/// The migration choreography as a value: observations in, actions out (no I/O, no clocks).
///
/// Invariants:
/// - `owner` is the source until the destination has been told to commit *and* either confirmed it or
///   postcopy has moved the guest there; never both hosts are told to run the guest.
/// - A failure before the commit: the destination aborts and the source resumes (if it was running).
/// - A failure after postcopy switch-over is fatal (`.guestLost`); nothing is resumed.
public struct MigrationStateMachine: Sendable, Equatable {
    public private(set) var state: MigrationState = .idle
    public let options: MigrationOptions
    /// Format node names of the disks mirrored with `--with-storage`.
    public let disks: [String]
    /// Whether the guest was running when migration began; a paused VM stays paused after a rollback.
    public let sourceWasRunning: Bool

    public private(set) var uri: String?
    public private(set) var lastStatus: MigrationStatus?
    public private(set) var lastProgress: MigrationProgress?
    private var readyDisks: Set<String> = []
    private var finishedDisks: Set<String> = []
    private var destinationPrepared = false
    private var mirrorsStarted = false
    private var migrationStarted = false
    private var postcopyRequested = false
    private var postcopySwitched = false
    private var commitSent = false
    private var committed = false
    /// Set while `cancelling` because of a failure (nil: the user cancelled).
    private var pendingFailure: String?

    public init(options: MigrationOptions, disks: [String] = [], sourceWasRunning: Bool = true) {
        self.options = options
        self.disks = options.withStorage ? disks : []
        self.sourceWasRunning = sourceWasRunning
    }

    public var owner: MigrationOwner {
        if committed || postcopySwitched { return .destination }
        return .source
    }

    public mutating func handle(_ input: MigrationInput) throws(MigrationStateError) -> [MigrationAction] {
        if state.isTerminal { return try handleAfterEnd(input) }
        if state == .postcopy || (state == .completing && postcopySwitched) { return try handleAfterSwitchover(input) }

        switch input {
        case .start:
            guard state == .idle else { throw refusal(input, allowed: ["idle"]) }
            state = .preparingDestination
            destinationPrepared = true
            return [.prepareDestination]

        case .destinationReady(let uri):
            guard state == .preparingDestination else { throw refusal(input, allowed: ["preparingDestination"]) }
            self.uri = uri
            if options.withStorage && !disks.isEmpty {
                state = .mirroringStorage
                mirrorsStarted = true
                return [.configureSource, .startMirrors]
            }
            return [.configureSource] + beginMigration()

        case .destinationFailed(let reason):
            try requireStarted(input)
            if state == .completing {
                // The destination could not resume: it killed its QEMU, so the source takes the guest back.
                return finishRollback(failure: "destination could not take over: \(reason)",
                                      destinationAlreadyGone: true)
            }
            return fail("destination failed: \(reason)", destinationAlreadyGone: true)

        case .storageReady(let disk):
            try requireStorage(input, disk: disk)
            readyDisks.insert(disk)
            switch state {
            case .mirroringStorage:
                return readyDisks.isSuperset(of: disks) ? beginMigration() : []
            case .settingUp, .migrating, .switchingOver, .cancelling:
                return []  // a repeated READY after the mirror went to standby and back
            default:
                throw refusal(input, allowed: ["mirroringStorage"])
            }

        case .allStorageReady:
            guard options.withStorage, state == .mirroringStorage else {
                throw refusal(input, allowed: ["mirroringStorage"],
                              hint: options.withStorage ? nil : "this migration has no --with-storage")
            }
            readyDisks.formUnion(disks)
            return beginMigration()

        case .storageFinished(let disk):
            try requireStorage(input, disk: disk)
            if state == .cancelling { return [] }
            guard state == .switchingOver else { throw refusal(input, allowed: ["switchingOver"]) }
            finishedDisks.insert(disk)
            return finishedDisks.isSuperset(of: disks) ? [.continueSwitchover] : []

        case .storageFailed(let disk, let reason):
            try requireStorage(input, disk: disk)
            if state == .cancelling { return [] }
            guard [.mirroringStorage, .settingUp, .migrating, .switchingOver].contains(state) else {
                throw refusal(input, allowed: ["mirroringStorage", "settingUp", "migrating", "switchingOver"])
            }
            return fail("mirror of \(disk) failed: \(reason)")

        case .migrationEvent(let status):
            try requireQEMUMigration(input)
            return try observe(status, progress: nil, input: input)

        case .queryResult(let progress):
            try requireStarted(input)
            lastProgress = progress
            guard migrationStarted else { return [.reportProgress(progress)] }
            var actions: [MigrationAction] = [.reportProgress(progress)]
            if let status = progress.status {
                actions += try observe(status, progress: progress, input: input)
            }
            if state == .migrating, options.postcopy, !postcopyRequested, (progress.dirtySyncCount ?? 0) >= 2 {
                postcopyRequested = true
                actions.append(.startPostcopy)
            }
            return actions

        case .commandFailed(let command, let reason):
            try requireStarted(input)
            let text = "\(command) failed: \(reason)"
            if state == .completing {
                state = .failed(text)
                return [.fail(reason: text, consequence: .ownerUnknown)]
            }
            if state == .cancelling { return finishRollback(failure: pendingFailure ?? text) }
            if state == .settingUp && lastStatus == nil {
                // The source setup or `migrate` itself was refused (QEMU answers `migrate` at once): QEMU is
                // not migrating, so there is nothing to cancel and nothing it could have paused.
                migrationStarted = false
                return finishRollback(failure: text)
            }
            return fail(text)

        case .destinationCommitted:
            guard state == .completing else { throw refusal(input, allowed: ["completing", "postcopy"]) }
            committed = true
            state = .completed
            return [.stopSource]

        case .timeout:
            try requireStarted(input)
            let text = "timed out after \(options.timeoutSeconds.map { "\($0) s" } ?? "the time limit")"
            switch state {
            case .completing:
                state = .failed(text + " waiting for the destination to resume")
                return [.fail(reason: text + " waiting for the destination to resume", consequence: .ownerUnknown)]
            case .cancelling:
                return finishRollback(failure: (pendingFailure ?? "cancel") + "; QEMU did not confirm the cancel")
            default:
                return fail(text)
            }

        case .cancelRequested:
            switch state {
            case .idle:
                throw refusal(input, allowed: cancellableStates, hint: "nothing to cancel")
            case .cancelling:
                throw refusal(input, allowed: cancellableStates, hint: "already cancelling")
            case .completing:
                throw refusal(input, allowed: cancellableStates,
                              hint: "too late: QEMU has completed and the destination is taking over")
            case .migrating where postcopyRequested:
                throw refusal(input, allowed: cancellableStates,
                              hint: "the postcopy switch-over was already requested and cannot be undone")
            default:
                return rollback(failure: nil)
            }

        case .sourceQEMUExited:
            try requireStarted(input)
            switch state {
            case .completing:
                return []  // its job was done: the destination holds the whole state
            case .cancelling where pendingFailure == nil:
                return exitedRollback("source QEMU exited while cancelling")
            default:
                return exitedRollback("source QEMU exited")
            }

        case .destinationLost:
            try requireStarted(input)
            if state == .completing {
                state = .failed("destination lost while taking over")
                return [.fail(reason: "destination lost while taking over", consequence: .ownerUnknown)]
            }
            return fail("destination lost")

        case .linkError(let detail):
            try requireStarted(input)
            let text = "link to the destination broke: \(detail)"
            if state == .completing {
                state = .failed(text)
                return [.fail(reason: text, consequence: .ownerUnknown)]
            }
            return fail(text)
        }
    }

    // MARK: - Transitions

    private static let qemuStates: [MigrationState] = [.settingUp, .migrating, .switchingOver, .cancelling]
    private var cancellableStates: [String] {
        ["preparingDestination", "mirroringStorage", "settingUp", "migrating", "switchingOver"]
    }

    private mutating func beginMigration() -> [MigrationAction] {
        state = .settingUp
        migrationStarted = true
        return [.startMigration(uri: uri ?? "")]
    }

    /// A status from a MIGRATION event or `query-migrate`, in settingUp/migrating/switchingOver/cancelling/completing.
    private mutating func observe(_ status: MigrationStatus, progress: MigrationProgress?,
                                  input: MigrationInput) throws(MigrationStateError) -> [MigrationAction] {
        let previous = lastStatus
        lastStatus = status
        if state == .cancelling {
            switch status {
            case .cancelled, .failed, .completed:
                // `completed` means the cancel lost the race; the destination was never told to resume, so it
                // is aborted and the source takes the guest back all the same.
                return finishRollback(failure: pendingFailure)
            case .postcopyActive:
                postcopySwitched = true
                state = .failed("postcopy switch-over happened while cancelling")
                return [.fail(reason: "postcopy switch-over happened while cancelling; " + Self.postcopyLoss,
                              consequence: .guestLost)]
            default:
                return []
            }
        }
        if state == .completing { return [] }  // late duplicates of `completed`
        guard status != previous || state == .settingUp else { return [] }

        switch status {
        case .none, .setup, .colo, .cancelling:
            return []
        case .active, .waitUnplug:
            if state == .settingUp { state = .migrating }
            return []
        case .preSwitchover:
            guard options.withStorage else {
                throw refusal(input, allowed: [], hint: "pre-switchover without --with-storage "
                    + "(pause-before-switchover was not set by corral)")
            }
            if state == .switchingOver { return [] }
            state = .switchingOver
            return disks.isEmpty ? [.continueSwitchover] : [.finishMirrors]
        case .device:
            state = .switchingOver
            return []
        case .postcopyActive:
            guard options.postcopy else {
                throw refusal(input, allowed: [], hint: "postcopy-active without --postcopy")
            }
            state = .postcopy
            postcopySwitched = true
            commitSent = true
            return [.tellDestinationToCommit]
        case .postcopyPaused, .postcopyRecover:
            return fail("QEMU reported \(status.rawValue) before postcopy was started")
        case .completed:
            state = .completing
            commitSent = true
            return [.tellDestinationToCommit]
        case .failed:
            let desc = progress?.errorDescription ?? lastProgress?.errorDescription
            return fail("QEMU reported the migration failed" + (desc.map { ": \($0)" } ?? ""))
        case .cancelled:
            return fail("the migration was cancelled outside corral")
        }
    }

    /// After postcopy switch-over (state postcopy, or completing with postcopy): the destination runs the guest.
    private mutating func handleAfterSwitchover(_ input: MigrationInput) throws(MigrationStateError) -> [MigrationAction] {
        func lost(_ reason: String) -> [MigrationAction] {
            state = .failed(reason)
            return [.fail(reason: reason + "; " + Self.postcopyLoss, consequence: .guestLost)]
        }
        func observeAfterSwitchover(_ status: MigrationStatus) -> [MigrationAction] {
            lastStatus = status
            switch status {
            case .completed:
                if state == .completing { return [] }
                if committed {
                    state = .completed
                    return [.stopSource]
                }
                state = .completing
                return []
            case .failed, .postcopyPaused, .cancelled:
                if state == .completing { return [] }  // QEMU already completed; a late report
                return lost("postcopy migration \(status.rawValue)")
            default:
                return []
            }
        }
        switch input {
        case .migrationEvent(let status):
            return observeAfterSwitchover(status)
        case .queryResult(let progress):
            lastProgress = progress
            return [.reportProgress(progress)] + (progress.status.map(observeAfterSwitchover) ?? [])
        case .destinationCommitted:
            committed = true
            if state == .completing || lastStatus == .completed {
                state = .completed
                return [.stopSource]
            }
            return []
        case .timeout:
            return []  // nothing can be rolled back after switch-over; let postcopy finish
        case .sourceQEMUExited:
            return state == .completing ? [] : lost("source QEMU exited during postcopy")
        case .destinationLost:
            return lost("destination lost during postcopy")
        case .destinationFailed(let reason):
            return lost("destination failed during postcopy: \(reason)")
        case .linkError(let detail):
            if state == .completing {
                state = .failed("link to the destination broke: \(detail)")
                return [.fail(reason: "link to the destination broke after postcopy completed: \(detail)",
                              consequence: .ownerUnknown)]
            }
            return lost("link to the destination broke during postcopy: \(detail)")
        case .commandFailed(let command, let reason):
            return lost("\(command) failed during postcopy: \(reason)")
        case .cancelRequested:
            throw refusal(input, allowed: cancellableStates,
                          hint: "a postcopy migration cannot be cancelled after switch-over")
        case .start, .destinationReady, .storageReady, .allStorageReady, .storageFinished, .storageFailed:
            throw refusal(input, allowed: [], hint: "postcopy has switched over")
        }
    }

    /// In completed/failed/cancelled: late observations are ignored, requests refused.
    private mutating func handleAfterEnd(_ input: MigrationInput) throws(MigrationStateError) -> [MigrationAction] {
        switch input {
        case .migrationEvent, .queryResult, .timeout, .sourceQEMUExited, .destinationLost, .linkError,
             .destinationFailed, .storageFailed, .storageFinished, .storageReady, .commandFailed:
            return []
        case .destinationCommitted:
            // The answer we gave up on arrived after all: the destination owns the VM.
            if case .failed = state, commitSent, !committed {
                committed = true
                state = .completed
                return [.stopSource]
            }
            return []
        case .start, .destinationReady, .allStorageReady, .cancelRequested:
            throw refusal(input, allowed: input == .start ? ["idle"] : [], hint: "the migration is over")
        }
    }

    /// A failure before the commit: undo whatever was started.
    private mutating func fail(_ reason: String, destinationAlreadyGone: Bool = false) -> [MigrationAction] {
        rollback(failure: reason, destinationAlreadyGone: destinationAlreadyGone)
    }

    /// `failure` nil: the user cancelled. A QEMU migration still running is cancelled first; the rest of the
    /// rollback waits for QEMU to confirm.
    private mutating func rollback(failure: String?, destinationAlreadyGone: Bool = false) -> [MigrationAction] {
        let qemuBusy = migrationStarted && !(lastStatus?.isTerminal ?? false)
        if qemuBusy {
            state = .cancelling
            pendingFailure = failure
            if destinationAlreadyGone { destinationPrepared = false }
            return [.cancelMigration]
        }
        return finishRollback(failure: failure, destinationAlreadyGone: destinationAlreadyGone)
    }

    private mutating func finishRollback(failure: String?, destinationAlreadyGone: Bool = false) -> [MigrationAction] {
        var actions: [MigrationAction] = []
        if mirrorsStarted { actions.append(.abandonMirrors) }
        if destinationPrepared && !destinationAlreadyGone { actions.append(.tellDestinationToAbort) }
        if migrationStarted && sourceWasRunning { actions.append(.resumeSource) }
        if let failure {
            state = .failed(failure)
            actions.append(.fail(reason: failure, consequence: .sourceKeepsRunning))
        } else {
            state = .cancelled
        }
        pendingFailure = nil
        return actions
    }

    private mutating func exitedRollback(_ reason: String) -> [MigrationAction] {
        var actions: [MigrationAction] = []
        if destinationPrepared { actions.append(.tellDestinationToAbort) }
        state = .failed(reason)
        actions.append(.fail(reason: reason, consequence: .sourceExited))
        return actions
    }

    static let postcopyLoss = "after postcopy switch-over the guest's memory is split between the hosts, so the guest is lost"

    // MARK: - Checks

    private func refusal(_ input: MigrationInput, allowed: [String], hint: String? = nil) -> MigrationStateError {
        MigrationStateError(state: state.name, input: input.name, allowedStates: allowed, hint: hint)
    }

    private func requireStarted(_ input: MigrationInput) throws(MigrationStateError) {
        if state == .idle { throw refusal(input, allowed: [], hint: "the migration has not started") }
    }

    private func requireQEMUMigration(_ input: MigrationInput) throws(MigrationStateError) {
        guard migrationStarted, Self.qemuStates.contains(state) || state == .completing else {
            throw refusal(input, allowed: ["settingUp", "migrating", "switchingOver", "cancelling", "completing"],
                          hint: "QEMU was not asked to migrate yet")
        }
    }

    private func requireStorage(_ input: MigrationInput, disk: String) throws(MigrationStateError) {
        guard options.withStorage else {
            throw refusal(input, allowed: [], hint: "this migration has no --with-storage")
        }
        guard disks.contains(disk) else {
            throw refusal(input, allowed: [], hint: "unknown disk \(disk) (mirrored: \(disks.joined(separator: ", ")))")
        }
    }
}
