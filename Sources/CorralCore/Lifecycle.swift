import CorralModel

/// Which operation may run in which state: a pure rule table, tested without QEMU.
/// A refusal names the current state and the states the operation needs.
public enum VMOperation: String, Sendable, CaseIterable {
    case start, stop, kill, pause, resume, remove, qmp, hotplug, migrate

    /// States in which the operation makes sense.
    public var allowedStates: [VMState] {
        switch self {
        case .start: return [.stopped, .crashed]
        case .stop: return [.running, .paused]
        case .kill: return [.starting, .running, .paused, .migrating, .incoming]
        case .pause: return [.running]
        case .resume: return [.paused]
        case .remove: return [.stopped, .crashed]
        case .qmp: return [.running, .paused, .migrating, .incoming]
        case .hotplug: return [.running, .paused]
        case .migrate: return [.running, .paused]
        }
    }
}

public enum Lifecycle {
    /// nil when `operation` may run on a VM in `state`; otherwise the message to show.
    public static func refusal(_ operation: VMOperation, vm: String, state: VMState) -> String? {
        let allowed = operation.allowedStates
        guard !allowed.contains(state) else { return nil }
        let needs = allowed.map(\.rawValue).joined(separator: " or ")
        var text = "cannot \(operation.rawValue) \(vm): it is \(state.rawValue) (\(operation.rawValue) needs \(needs))"
        switch (operation, state) {
        case (.remove, _): text += "; stop it first or use --force"
        case (.start, .running), (.start, .paused): text += "; it is already up"
        default: break
        }
        return text
    }

    /// The state that follows a QMP event, if the event changes it.
    public static func state(after event: String, from current: VMState) -> VMState? {
        switch (event, current) {
        case ("STOP", .running): return .paused
        // Not from `incoming`: the commit's own `cont` resumes it, and only the commit makes it the owner.
        case ("RESUME", .paused), ("RESUME", .starting): return .running
        default: return nil
        }
    }
}
