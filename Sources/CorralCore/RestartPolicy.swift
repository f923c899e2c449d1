import CorralModel
import Profiles

/// Why a QEMU process ended, as far as the supervisor can tell.
public enum ExitCause: Sendable, Equatable {
    /// The guest powered itself off (QMP SHUTDOWN with guest=true): not a failure.
    case guestShutdown
    /// corral (stop/kill/rm) ended it on purpose.
    case requested
    /// Anything else: QEMU crashed, was killed from outside, or died while the daemon was away.
    case failure(String)
}

/// What to do after an exit.
public enum RestartDecision: Sendable, Equatable {
    /// Stay down, in this state.
    case stayDown(VMState)
    /// Start again after `delay`.
    case restart(after: Duration)
    /// Too many restarts within the window: give up.
    case giveUp(String)
}

/// `restart: no | on-failure | always` with exponential backoff and a cap
/// (by default 5 restarts within 60 s, then the VM is marked crashed). Pure.
public struct RestartPolicyEngine: Sendable, Equatable {
    public var maxRestarts: Int
    public var window: Double
    public var firstDelay: Duration
    public var maxDelay: Duration

    public init(maxRestarts: Int = 5, window: Double = 60, firstDelay: Duration = .milliseconds(200),
                maxDelay: Duration = .seconds(8)) {
        self.maxRestarts = maxRestarts
        self.window = window
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
    }

    /// `recentRestarts`: times (seconds since epoch) of earlier automatic restarts.
    public func decide(policy: RestartPolicy, cause: ExitCause, recentRestarts: [Double], now: Double) -> RestartDecision {
        switch cause {
        case .requested:
            return .stayDown(.stopped)
        case .guestShutdown:
            guard policy == .always else { return .stayDown(.stopped) }
        case .failure:
            guard policy != .no else { return .stayDown(.crashed) }
        }
        let inWindow = recentRestarts.filter { now - $0 < window }.count
        if inWindow >= maxRestarts {
            return .giveUp("\(inWindow) restarts within \(Int(window)) s; giving up (restart: \(policy.rawValue))")
        }
        return .restart(after: delay(forAttempt: inWindow))
    }

    /// 0 → firstDelay, then doubling, capped at maxDelay.
    public func delay(forAttempt attempt: Int) -> Duration {
        var delay = firstDelay
        for _ in 0..<attempt {
            delay *= 2
            if delay >= maxDelay { return maxDelay }
        }
        return delay
    }
}
