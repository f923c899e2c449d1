import CorralModel

// The migration state machine's vocabulary: its states, inputs, actions, owners and refusals (the machine
// itself, the transitions, is in MigrationStateMachine.swift).

/// Where a migration stands, seen from the source daemon (which runs this machine).
public enum MigrationState: Sendable, Equatable, CustomStringConvertible {
    case idle
    /// The destination daemon is starting QEMU with `-incoming defer -S` (and NBD exports).
    case preparingDestination
    /// Source capabilities/parameters being set, `migrate` sent, QEMU in `setup`.
    case settingUp
    /// `--with-storage`: mirrors running, waiting for every BLOCK_JOB_READY before `migrate`.
    case mirroringStorage
    /// QEMU precopy is `active`.
    case migrating
    /// Postcopy switch-over has happened: the guest's home is the destination, nothing can be rolled back.
    case postcopy
    /// The source is stopped for the last pass (`pre-switchover`/`device`); mirrors are finished here.
    case switchingOver
    /// QEMU reports `completed`; the destination was told to resume and own the VM, waiting for its answer.
    case completing
    case completed
    case failed(String)
    /// `migrate_cancel` sent; waiting for QEMU to say `cancelled` (or `failed`) before rolling back.
    case cancelling
    case cancelled

    public var name: String {
        switch self {
        case .idle: "idle"
        case .preparingDestination: "preparingDestination"
        case .settingUp: "settingUp"
        case .mirroringStorage: "mirroringStorage"
        case .migrating: "migrating"
        case .postcopy: "postcopy"
        case .switchingOver: "switchingOver"
        case .completing: "completing"
        case .completed: "completed"
        case .failed: "failed"
        case .cancelling: "cancelling"
        case .cancelled: "cancelled"
        }
    }

    public var description: String {
        if case .failed(let reason) = self { return "failed(\(reason))" }
        return name
    }

    public var isTerminal: Bool {
        switch self {
        case .completed, .failed, .cancelled: true
        default: false
        }
    }
}

/// What the source daemon observed or was asked.
public enum MigrationInput: Sendable, Equatable {
    case start
    /// The destination's QEMU listens at `uri` (`tcp:HOST:PORT`), exports are up when `--with-storage`.
    case destinationReady(uri: String)
    /// The destination daemon reports a failure; it has cleaned up after itself (or the resume failed).
    case destinationFailed(reason: String)
    /// BLOCK_JOB_READY for the mirror of this disk (format node name).
    case storageReady(disk: String)
    /// Every mirror is ready (the executor may send this instead of one `storageReady` per disk).
    case allStorageReady
    /// BLOCK_JOB_COMPLETED for this disk's mirror after `finishMirrors` at `pre-switchover`.
    case storageFinished(disk: String)
    /// A mirror failed (BLOCK_JOB_ERROR, or BLOCK_JOB_COMPLETED with an error).
    case storageFailed(disk: String, reason: String)
    /// A MIGRATION event from the source QEMU.
    case migrationEvent(MigrationStatus)
    /// A parsed `query-migrate` reply from the source QEMU.
    case queryResult(MigrationProgress)
    /// A QMP command the executor sent on the source failed.
    case commandFailed(command: String, reason: String)
    /// The destination resumed its QEMU and owns the VM.
    case destinationCommitted
    /// `--timeout` elapsed.
    case timeout
    case cancelRequested
    case sourceQEMUExited
    /// The destination daemon stopped answering, or its QEMU died.
    case destinationLost
    /// The migration or peer connection broke (e.g. the network link is cut).
    case linkError(String)

    public var name: String {
        switch self {
        case .start: "start"
        case .destinationReady: "destinationReady"
        case .destinationFailed: "destinationFailed"
        case .storageReady: "storageReady"
        case .allStorageReady: "allStorageReady"
        case .storageFinished: "storageFinished"
        case .storageFailed: "storageFailed"
        case .migrationEvent(let s): "migrationEvent(\(s.rawValue))"
        case .queryResult: "queryResult"
        case .commandFailed: "commandFailed"
        case .destinationCommitted: "destinationCommitted"
        case .timeout: "timeout"
        case .cancelRequested: "cancelRequested"
        case .sourceQEMUExited: "sourceQEMUExited"
        case .destinationLost: "destinationLost"
        case .linkError: "linkError"
        }
    }
}

/// What a failure leaves behind; every `.fail` action says it.
public enum MigrationFailureConsequence: String, Sendable, Equatable, Codable {
    /// Rolled back: the destination aborted, the VM runs on the source as before (or stays paused if it was).
    case sourceKeepsRunning
    /// The source QEMU itself exited: nothing left to resume; the destination aborted.
    case sourceExited
    /// The destination was told to resume but its answer never came: the source stays paused and the
    /// destination may be running the guest. An operator must check the destination before resuming the source.
    case ownerUnknown
    /// Failure after postcopy switch-over: the guest's memory is split between hosts and neither can run it.
    case guestLost
}

/// What the daemon must do next, in order.
public enum MigrationAction: Sendable, Equatable {
    /// Send the live config and options to the destination daemon.
    case prepareDestination
    /// Run `MigrationPlan.sourceSetup` (capabilities and parameters) on the source.
    case configureSource
    /// `--with-storage`: `MigrationPlan.startMirrors` for every disk.
    case startMirrors
    /// `MigrationPlan.start(uri:)`.
    case startMigration(uri: String)
    /// At `pre-switchover`: `MigrationPlan.finishMirrors(force: false)`, then report `storageFinished` per disk.
    case finishMirrors
    /// `MigrationPlan.continueAfterPreSwitchover()`.
    case continueSwitchover
    /// `MigrationPlan.postcopyStart()`.
    case startPostcopy
    /// `MigrationPlan.cancel()`; then wait for MIGRATION `cancelled`/`failed`.
    case cancelMigration
    /// `finishMirrors(force: true)` and `removeNBDClients` (ignoring jobs that are already gone).
    case abandonMirrors
    /// Ask the destination daemon to kill its QEMU and delete what it created (best effort, idempotent).
    case tellDestinationToAbort
    /// `cont` on the source if `query-status` says it is paused/postmigrate (QEMU often resumed it itself).
    case resumeSource
    /// Ask the destination daemon to `cont` its QEMU and take ownership of the VM.
    case tellDestinationToCommit
    /// Stop (quit) the source QEMU and release the VM there: the destination owns it.
    case stopSource
    case reportProgress(MigrationProgress)
    case fail(reason: String, consequence: MigrationFailureConsequence)
}

/// Which host the VM belongs to.
public enum MigrationOwner: String, Sendable, Equatable {
    case source, destination
}

/// An input the machine cannot take in its current state.
public struct MigrationStateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var state: String
    public var input: String
    /// States in which the input would have been taken.
    public var allowedStates: [String]
    public var hint: String?

    public var description: String {
        var text = "migration cannot take \(input) while \(state)"
        if !allowedStates.isEmpty { text += " (it needs \(allowedStates.joined(separator: " or ")))" }
        if let hint { text += ": \(hint)" }
        return text
    }
}
