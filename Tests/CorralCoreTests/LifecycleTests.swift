import CorralCore
import Testing

@Suite struct LifecycleTests {
    @Test func allowedTransitionsPass() {
        #expect(Lifecycle.refusal(.pause, vm: "web", state: .running) == nil)
        #expect(Lifecycle.refusal(.resume, vm: "web", state: .paused) == nil)
        #expect(Lifecycle.refusal(.start, vm: "web", state: .crashed) == nil)
        #expect(Lifecycle.refusal(.stop, vm: "web", state: .paused) == nil)
        #expect(Lifecycle.refusal(.kill, vm: "web", state: .starting) == nil)
    }

    @Test func refusalsNameCurrentAndRequiredStates() {
        #expect(Lifecycle.refusal(.pause, vm: "web", state: .stopped)
            == "cannot pause web: it is stopped (pause needs running)")
        #expect(Lifecycle.refusal(.start, vm: "web", state: .running)
            == "cannot start web: it is running (start needs stopped or crashed); it is already up")
        #expect(Lifecycle.refusal(.remove, vm: "db", state: .paused)
            == "cannot remove db: it is paused (remove needs stopped or crashed); stop it first or use --force")
        #expect(Lifecycle.refusal(.qmp, vm: "db", state: .stopped)
            == "cannot qmp db: it is stopped (qmp needs running or paused or migrating or incoming)")
    }

    @Test func qmpEventsMoveTheState() {
        #expect(Lifecycle.state(after: "STOP", from: .running) == .paused)
        #expect(Lifecycle.state(after: "RESUME", from: .paused) == .running)
        #expect(Lifecycle.state(after: "RESUME", from: .incoming) == nil,
                "an incoming VM runs only once committed, whatever QEMU reports first")
        #expect(Lifecycle.state(after: "STOP", from: .stopped) == nil)
        #expect(Lifecycle.state(after: "BALLOON_CHANGE", from: .running) == nil)
    }
}

@Suite struct RestartPolicyTests {
    let engine = RestartPolicyEngine(maxRestarts: 5, window: 60, firstDelay: .milliseconds(200), maxDelay: .seconds(8))

    @Test func requestedExitsNeverRestart() {
        for policy in [RestartPolicyKind.no, .onFailure, .always] {
            #expect(engine.decide(policy: policy.value, cause: .requested, recentRestarts: [], now: 100) == .stayDown(.stopped))
        }
    }

    @Test func failureFollowsThePolicy() {
        #expect(engine.decide(policy: .no, cause: .failure("x"), recentRestarts: [], now: 100) == .stayDown(.crashed))
        #expect(engine.decide(policy: .onFailure, cause: .failure("x"), recentRestarts: [], now: 100)
            == .restart(after: .milliseconds(200)))
        #expect(engine.decide(policy: .always, cause: .failure("x"), recentRestarts: [], now: 100)
            == .restart(after: .milliseconds(200)))
    }

    @Test func guestShutdownIsNotAFailure() {
        #expect(engine.decide(policy: .onFailure, cause: .guestShutdown, recentRestarts: [], now: 100) == .stayDown(.stopped))
        #expect(engine.decide(policy: .no, cause: .guestShutdown, recentRestarts: [], now: 100) == .stayDown(.stopped))
        #expect(engine.decide(policy: .always, cause: .guestShutdown, recentRestarts: [], now: 100)
            == .restart(after: .milliseconds(200)))
    }

    @Test func backoffDoublesAndIsCapped() {
        #expect(engine.decide(policy: .onFailure, cause: .failure("x"), recentRestarts: [90, 95], now: 100)
            == .restart(after: .milliseconds(800)))
        #expect(engine.delay(forAttempt: 0) == .milliseconds(200))
        #expect(engine.delay(forAttempt: 3) == .milliseconds(1600))
        #expect(engine.delay(forAttempt: 10) == .seconds(8))
    }

    @Test func capWithinTheWindowGivesUp() {
        let recent: [Double] = [50, 60, 70, 80, 90]
        #expect(engine.decide(policy: .onFailure, cause: .failure("x"), recentRestarts: recent, now: 100)
            == .giveUp("5 restarts within 60 s; giving up (restart: on-failure)"))
        // Restarts older than the window no longer count.
        #expect(engine.decide(policy: .onFailure, cause: .failure("x"), recentRestarts: [1, 2, 3, 4, 90], now: 100)
            == .restart(after: .milliseconds(400)))
    }
}

import Profiles

/// Lets the tests loop over policies without naming Profiles' enum cases twice.
enum RestartPolicyKind {
    case no, onFailure, always
    var value: RestartPolicy {
        switch self {
        case .no: return .no
        case .onFailure: return .onFailure
        case .always: return .always
        }
    }
}
