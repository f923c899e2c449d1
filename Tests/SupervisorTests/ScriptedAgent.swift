import CorralCore
import GuestAgent
import Synchronization
import Testing

/// A strict in-memory guest agent: each `networkInterfaces()` call takes the next step of the script; a call after
/// the script ended, and a step never used, are test failures (`verify()`). `.hang` answers only when the test calls
/// `release()`, like an agent channel nobody reads in the guest.
final class ScriptedAgent: GuestAgent {
    enum Step: Sendable {
        case answer([GuestInterface])
        case fail(GuestAgentError)
        case hang
    }

    private struct State {
        var script: [Step] = []
        var calls = 0
        var failures: [String] = []
        var hung: [CheckedContinuation<Void, Never>] = []
        var released = false
    }

    private let state = Mutex(State())

    init(_ steps: Step...) {
        state.withLock { $0.script = steps }
    }

    var calls: Int { state.withLock { $0.calls } }

    func networkInterfaces() async throws(GuestAgentError) -> [GuestInterface] {
        let step: Step? = state.withLock { state in
            state.calls += 1
            guard !state.script.isEmpty else {
                state.failures.append("unexpected networkInterfaces() call #\(state.calls) after the script ended")
                return nil
            }
            return state.script.removeFirst()
        }
        switch step {
        case .answer(let interfaces)?:
            return interfaces
        case .fail(let error)?:
            throw error
        case .hang?:
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.released { return true }
                    state.hung.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
            throw .timeout(after: .seconds(3600))
        case nil:
            throw .protocolError("not in the script")
        }
    }

    /// Lets every hanging call end (with a timeout).
    func release() {
        let hung = state.withLock { state in
            state.released = true
            defer { state.hung = [] }
            return state.hung
        }
        for continuation in hung { continuation.resume() }
    }

    func verify(sourceLocation: SourceLocation = #_sourceLocation) {
        let (failures, unused) = state.withLock { ($0.failures, $0.script.count) }
        for failure in failures { Issue.record(Comment(rawValue: failure), sourceLocation: sourceLocation) }
        if unused > 0 { Issue.record("\(unused) scripted agent answer(s) never asked for", sourceLocation: sourceLocation) }
    }
}
