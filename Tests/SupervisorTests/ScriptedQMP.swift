import Foundation
import JSON
import QMP
import CorralControl
import CorralCore
import Supervisor
import Synchronization
import Testing

/// A strict in-memory QMP monitor: commands must arrive exactly in script order; an unexpected
/// command or an expectation never used is a test failure (checked by `verify()`). A reply can
/// be followed by events (e.g. DEVICE_DELETED), delivered to current subscribers whose name filter
/// takes them, as `QMPClient.events(_:)` does.
final class ScriptedQMP: QMPMonitor, Sendable {
    enum Reply: Sendable {
        case ok(JSONValue = [:])
        case error(String, String)  // class, desc
        /// No answer for this long, whatever the call's timeout (a hung monitor), then a timeout error.
        case stall(Duration)
    }

    struct Expectation: Sendable {
        var command: String
        var arguments: JSONObject?
        var reply: Reply
        var events: [QMPEvent]
        /// Runs when the command arrives, before the reply (e.g. QEMU exits on `quit`).
        var effect: (@Sendable () -> Void)?
    }

    private struct State {
        var script: [Expectation] = []
        var failures: [String] = []
        var sent: [String] = []
        var passed: [Int32] = []
        var subscribers: [Subscriber] = []
    }

    private struct Subscriber {
        /// nil: every event.
        var names: Set<String>?
        var continuation: AsyncStream<QMPEvent>.Continuation
    }

    private let state = Mutex(State())
    let greeting: QMPGreeting

    init(version: QMPVersion = QMPVersion(major: 7, minor: 2, micro: 0)) {
        greeting = QMPGreeting(version: version, capabilities: [])
    }

    /// Closing ends every event stream, as the real connection does.
    func close() async { disconnect() }

    /// Expect `command` (with exactly these arguments when given), answer `reply`, then emit `events`.
    func expect(_ command: String, _ arguments: JSONObject? = nil, _ reply: Reply = .ok(),
                then events: [QMPEvent] = [], effect: (@Sendable () -> Void)? = nil) {
        state.withLock {
            $0.script.append(Expectation(command: command, arguments: arguments, reply: reply, events: events,
                                         effect: effect))
        }
    }

    static func deviceDeleted(_ device: String) -> QMPEvent {
        QMPEvent(name: "DEVICE_DELETED", data: ["device": .string(device), "path": .string("/machine/peripheral/\(device)")],
                 timestamp: 0)
    }

    /// Commands in the order they were sent, as "name" or "name id".
    var sent: [String] { state.withLock { $0.sent } }

    func execute(_ command: String, _ arguments: JSONObject?, timeout: Duration?) async throws(QMPError) -> JSONValue {
        let id = arguments?["id"]?.stringValue ?? arguments?["node-name"]?.stringValue
        let (expectation, failure): (Expectation?, String?) = state.withLock { state in
            state.sent.append(id.map { "\(command) \($0)" } ?? command)
            guard !state.script.isEmpty else {
                state.failures.append("unexpected command '\(command)' after the script ended")
                return (nil, "unexpected")
            }
            let next = state.script.removeFirst()
            if next.command != command {
                state.failures.append("unexpected command '\(command)', expected '\(next.command)'")
                return (nil, "unexpected")
            }
            if let wanted = next.arguments, wanted != (arguments ?? [:]) {
                state.failures.append("'\(command)' arguments \(JSONValue.object(arguments ?? [:])) != \(JSONValue.object(wanted))")
            }
            return (next, nil)
        }
        guard let expectation, failure == nil else {
            throw .commandFailed(command: command, errorClass: "CommandNotFound", desc: "not in the script")
        }
        expectation.effect?()
        emit(expectation.events)
        switch expectation.reply {
        case .ok(let value): return value
        case .error(let cls, let desc): throw .commandFailed(command: command, errorClass: cls, desc: desc)
        case .stall(let duration):
            try? await Task.sleep(for: duration)
            throw .timeout(command: command, after: duration)
        }
    }

    func events(_ names: Set<String>?) -> AsyncStream<QMPEvent> {
        let (stream, continuation) = AsyncStream<QMPEvent>.makeStream(bufferingPolicy: .unbounded)
        state.withLock { $0.subscribers.append(Subscriber(names: names, continuation: continuation)) }
        return stream
    }

    /// Descriptors sent with commands (`getfd`), in order, as the numbers the caller passed.
    var passed: [Int32] { state.withLock { $0.passed } }

    func execute(_ command: String, _ arguments: JSONObject?, timeout: Duration?, passing fds: [Int32])
        async throws(QMPError) -> JSONValue
    {
        state.withLock { $0.passed += fds }
        return try await execute(command, arguments, timeout: timeout)
    }

    /// Delivers events now, as QEMU does between replies.
    func emit(_ events: [QMPEvent]) {
        let subscribers = state.withLock { $0.subscribers }
        for event in events {
            for s in subscribers where s.names?.contains(event.name) ?? true { s.continuation.yield(event) }
        }
    }

    /// The monitor goes away (QEMU exited): every event stream finishes.
    func disconnect() {
        let subscribers = state.withLock { state in
            defer { state.subscribers = [] }
            return state.subscribers
        }
        for s in subscribers { s.continuation.finish() }
    }

    /// Records a test issue for every unexpected command and every expectation left unused.
    func verify(sourceLocation: SourceLocation = #_sourceLocation) {
        let (failures, unused) = state.withLock { ($0.failures, $0.script.map(\.command)) }
        for failure in failures { Issue.record(Comment(rawValue: failure), sourceLocation: sourceLocation) }
        for command in unused { Issue.record("expected '\(command)' was never sent", sourceLocation: sourceLocation) }
    }
}
