import Foundation
import JSON
import QMP
import Synchronization
import Testing
import UnixSockets

#if canImport(Glibc)
import Glibc
#endif

/// A strict, scripted stand-in for QEMU's QMP monitor.
///
/// It listens on a Unix socket in a fresh temp directory, accepts one client, sends a greeting and then walks its
/// script in order: an `expect` step reads the next command and checks its name and arguments, then replies (now,
/// never, or later when a `releaseDelayed` step says so, in any order); `event` and `raw` steps write to the client;
/// `closeConnection` hangs up. It records a failure for every command that does not match the script, for every
/// command after the script ran out, and, at `finish()`, for every step never reached.
///
/// Usage: build the script, `start()`, connect a client, exercise it, close the client, `await finish()`.
final class FakeQMPServer: Sendable {
    enum Response: Sendable {
        case reply(JSONValue)
        case error(class: String, desc: String)
        /// Never answer.
        case noReply
        /// Answer with this reply when a later `releaseDelayed` step releases it.
        case delayed(JSONValue)
    }

    enum Arguments: Sendable {
        case any
        /// The command must have no `arguments` member.
        case none
        case equal(JSONObject)
        case matching(@Sendable (JSONObject?) -> Bool)
    }

    enum ReleaseOrder: Sendable {
        case received
        case reversed
        /// Which delayed replies to send, by the order their commands were received in (0 = first ever delayed).
        case explicit([Int])
    }

    private enum Step: Sendable, CustomStringConvertible {
        case expect(name: String, arguments: Arguments, response: Response)
        case event(name: String, data: JSONValue)
        case raw(String)
        case releaseDelayed(ReleaseOrder)
        case closeConnection

        var description: String {
            switch self {
            case .expect(let name, _, _): return "expect '\(name)'"
            case .event(let name, _): return "event \(name)"
            case .raw(let text): return "raw \(text.debugDescription)"
            case .releaseDelayed: return "release delayed replies"
            case .closeConnection: return "close the connection"
            }
        }
    }

    private struct State {
        var greeting: String
        var steps: [Step] = []
        var nextStep = 0
        var failures: [String] = []
        /// Descriptors, -1 once closed. Closed and shut down only under the lock, so `stop()` can never hit a
        /// descriptor number that was closed and reused by another test.
        var listener: Int32 = -1
        var connection: Int32 = -1
        var started = false
    }

    static let eventSeconds: Int64 = 1_700_000_000
    static let eventMicroseconds: Int64 = 250_000
    static let defaultGreeting: JSONValue = [
        "QMP": [
            "version": ["qemu": ["micro": 1, "minor": 2, "major": 7], "package": "fake-qmp"],
            "capabilities": ["oob"],
        ]
    ]

    let directory: URL
    let path: String
    private let state: Mutex<State>
    private let writeLock = Mutex(())
    private let done = Mutex<(finished: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    /// Names of commands as the server reads them, so tests can wait until a command is in flight.
    let received: AsyncStream<String>
    private let receivedContinuation: AsyncStream<String>.Continuation

    /// - Parameter handshake: when true the script starts with `expect("qmp_capabilities", arguments: .none)`.
    init(at directory: URL? = nil, greeting: String = FakeQMPServer.defaultGreeting.compactText + "\r\n",
         handshake: Bool = true) throws {
        self.directory = directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("fake-qmp-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        path = self.directory.appendingPathComponent("qmp.sock").path
        var initial = State(greeting: greeting)
        initial.listener = try UnixStreamListen.listen(path: path)
        state = Mutex(initial)
        (received, receivedContinuation) = AsyncStream<String>.makeStream(bufferingPolicy: .unbounded)
        if handshake { expect("qmp_capabilities", arguments: .none, .reply([:])) }
    }

    // MARK: Script

    func expect(_ name: String, arguments: Arguments = .any, _ response: Response) {
        append(.expect(name: name, arguments: arguments, response: response))
    }

    func event(_ name: String, data: JSONValue = [:]) {
        append(.event(name: name, data: data))
    }

    /// Writes `text` followed by CRLF.
    func raw(_ text: String) {
        append(.raw(text))
    }

    func releaseDelayed(_ order: ReleaseOrder = .received) {
        append(.releaseDelayed(order))
    }

    func closeConnection() {
        append(.closeConnection)
    }

    private func append(_ step: Step) {
        state.withLock { state in
            precondition(!state.started, "build the script before start()")
            state.steps.append(step)
        }
    }

    // MARK: Running

    func start() {
        state.withLock { $0.started = true }
        let thread = Thread { [self] in
            run()
            receivedContinuation.finish()
            let waiters = done.withLock { done in
                done.finished = true
                defer { done.waiters.removeAll() }
                return done.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
        thread.start()
    }

    /// Writes an event right now, outside the script.
    func sendEvent(_ name: String, data: JSONValue = [:]) {
        // Write under the state lock so the descriptor cannot be closed (and its number reused) meanwhile.
        state.withLock { state in
            if state.connection >= 0 { write(state.connection, Self.eventText(name, data)) }
        }
    }

    /// Waits for the server to see the client hang up (or hang up itself), then checks the script was used up.
    /// Records an issue for each failure.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) async {
        let finished = await waitUntilDone()
        if !finished {
            Issue.record("the fake QMP server never saw the connection end", sourceLocation: sourceLocation)
            stop()
        }
        for failure in failures() {
            Issue.record(Comment(rawValue: failure), sourceLocation: sourceLocation)
        }
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Waits until the server thread has ended; false if that did not happen within the hang guard.
    func waitUntilDone() async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let already = self.done.withLock { done in
                        if !done.finished { done.waiters.append(continuation) }
                        return done.finished
                    }
                    if already { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(15))  // hang guard only
                return false
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }

    /// Everything that went against the script so far, including steps not yet reached.
    func failures() -> [String] {
        state.withLock { state in
            state.failures + state.steps[state.nextStep...].map { "fake QMP: expectation never used: \($0)" }
        }
    }

    /// Unblocks the server thread (accept or read) so it ends.
    func stop() {
        state.withLock { state in
            if state.listener >= 0 { Glibc.shutdown(state.listener, Int32(SHUT_RDWR)) }
            if state.connection >= 0 { Glibc.shutdown(state.connection, Int32(SHUT_RDWR)) }
        }
    }

    private func fail(_ message: String) {
        state.withLock { $0.failures.append("fake QMP: " + message) }
    }

    private func run() {
        let listener = state.withLock { $0.listener }
        let fd = accept(listener, nil, nil)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // never leak into processes other tests spawn
        state.withLock { state in
            Glibc.close(state.listener)
            state.listener = -1
            if fd >= 0 { state.connection = fd }
        }
        guard fd >= 0 else { return }
        let greeting = state.withLock { $0.greeting }
        defer {
            state.withLock { state in
                Glibc.close(state.connection)
                state.connection = -1
            }
        }
        write(fd, greeting)

        var reader = CommandReader(fd: fd)
        // Delayed replies not sent yet, keyed by the order they were received in (0, 1, 2, …).
        var delayed: [Int: (id: JSONValue?, reply: JSONValue)] = [:]
        var delayedCount = 0
        while let step = nextStep() {
            switch step {
            case .expect(let name, let arguments, let response):
                guard let command = nextCommand(&reader, fd: fd, expecting: name) else {
                    return  // client hung up; the unused steps are reported by finish()
                }
                advance()
                receivedContinuation.yield(name)
                check(arguments, command: command, name: name)
                switch response {
                case .reply(let value):
                    write(fd, Self.replyText(["return": value], id: command["id"]))
                case .error(let errorClass, let desc):
                    write(fd, Self.replyText(["error": ["class": .string(errorClass), "desc": .string(desc)]], id: command["id"]))
                case .noReply:
                    break
                case .delayed(let value):
                    delayed[delayedCount] = (command["id"], value)
                    delayedCount += 1
                }
            case .event(let name, let data):
                advance()
                write(fd, Self.eventText(name, data))
            case .raw(let text):
                advance()
                write(fd, text + "\r\n")
            case .releaseDelayed(let order):
                advance()
                let indexes: [Int]
                switch order {
                case .received: indexes = delayed.keys.sorted()
                case .reversed: indexes = delayed.keys.sorted().reversed()
                case .explicit(let list): indexes = list
                }
                for index in indexes {
                    guard let reply = delayed.removeValue(forKey: index) else {
                        fail("script error: no delayed reply #\(index) to release")
                        continue
                    }
                    write(fd, Self.replyText(["return": reply.reply], id: reply.id))
                }
            case .closeConnection:
                advance()
                return
            }
        }
        // Script done: anything else the client sends is unexpected. Answer so the client does not hang.
        while let command = reader.next() {
            let name = command["execute"]?.stringValue ?? command.compactText
            fail("unexpected command '\(name)' after the script ended")
            write(fd, Self.replyText(["error": ["class": "CommandNotFound", "desc": "not in the fake's script"]],
                                     id: command["id"]))
        }
    }

    /// Reads commands until one named `name` arrives; every other command is a failure (and gets an error reply).
    private func nextCommand(_ reader: inout CommandReader, fd: Int32, expecting name: String) -> JSONValue? {
        while let command = reader.next() {
            let actual = command["execute"]?.stringValue ?? ""
            if actual == name { return command }
            fail("expected '\(name)' but the client sent \(command.compactText)")
            write(fd, Self.replyText(["error": ["class": "CommandNotFound", "desc": "unexpected command"]],
                                     id: command["id"]))
        }
        return nil
    }

    private func check(_ arguments: Arguments, command: JSONValue, name: String) {
        let actual = command["arguments"]?.objectValue
        let ok: Bool
        switch arguments {
        case .any: ok = true
        case .none: ok = command["arguments"] == nil
        case .equal(let expected): ok = actual == expected
        case .matching(let predicate): ok = predicate(actual)
        }
        if !ok { fail("'\(name)' sent with unexpected arguments: \(command.compactText)") }
    }

    private func nextStep() -> Step? {
        state.withLock { $0.nextStep < $0.steps.count ? $0.steps[$0.nextStep] : nil }
    }

    private func advance() {
        state.withLock { $0.nextStep += 1 }
    }

    private func write(_ fd: Int32, _ text: String) {
        writeLock.withLock { _ in
            var bytes = Array(text.utf8)[...]
            while !bytes.isEmpty {
                let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent < 0 && errno == EINTR { continue }
                if sent <= 0 { return }
                bytes = bytes.dropFirst(sent)
            }
        }
    }

    static func replyText(_ body: JSONObject, id: JSONValue?) -> String {
        var object = body
        if let id { object["id"] = id }
        return JSONValue.object(object).compactText + "\r\n"
    }

    static func eventText(_ name: String, _ data: JSONValue) -> String {
        let event: JSONValue = [
            "timestamp": ["seconds": .int(eventSeconds), "microseconds": .int(eventMicroseconds)],
            "event": .string(name),
            "data": data,
        ]
        return event.compactText + "\r\n"
    }
}

/// Reads QMP commands from a blocking socket with the module's own stream decoder.
struct CommandReader: ~Copyable {
    let fd: Int32
    var decoder = QMPStreamDecoder()
    var queue: [JSONValue] = []

    init(fd: Int32) {
        self.fd = fd
    }

    mutating func next() -> JSONValue? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while queue.isEmpty {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            guard let messages = try? decoder.feed(buffer[0..<count]) else { return nil }
            queue.append(contentsOf: messages)
        }
        return queue.removeFirst()
    }
}
