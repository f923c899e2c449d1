import JSON
import Logging
import Synchronization
import UnixSockets

/// Layer 3's engine: one QMP socket, a reader thread, and the table of calls waiting for replies.
///
/// The reader thread resumes the waiting call's continuation directly, under a `Mutex`, instead of hopping onto the
/// `QMPClient` actor first: a reply costs one thread wake-up, not two. Everything here is safe from any thread.
final class QMPConnection: Sendable {
    /// Events a subscriber may fall behind by before the oldest are dropped.
    static let eventBuffer = 4096
    typealias Reply = Result<JSONValue, QMPError>

    private struct Pending {
        var command: String
        var continuation: CheckedContinuation<Reply, Never>
        var timer: Task<Void, Never>?
    }

    private struct Subscriber {
        var names: Set<String>?
        var continuation: AsyncStream<QMPEvent>.Continuation
    }

    private struct State {
        var nextID: Int64 = 1
        var pending: [Int64: Pending] = [:]
        /// Ids whose caller gave up (timeout, cancellation), so their late reply is logged as such and dropped.
        var abandoned: Set<Int64> = []
        var subscribers: [UInt64: Subscriber] = [:]
        var nextSubscriber: UInt64 = 0
        var greetingSeen = false
        /// Set once the connection is over; the first reason wins.
        var endReason: String?
    }

    let socket: StreamSocket
    /// The monitor socket's path.
    let path: String
    private let logger: Logger
    private let transcript: (@Sendable (QMPTranscriptEntry) -> Void)?
    private let state = Mutex(State())

    /// The first message on the socket (or why there was none).
    let greeting = OneShot<Result<JSONValue, QMPError>>()
    /// Fulfilled with the reason as soon as the connection is over (EOF, error or close).
    let ended = OneShot<String>()
    /// Fulfilled when the reader thread has closed the descriptor and is about to exit.
    let readerFinished = OneShot<Void>()

    static let readBufferSize = 64 * 1024
    static let maximumAbandonedIDs = 4096

    init(socket: StreamSocket, path: String, logger: Logger, transcript: (@Sendable (QMPTranscriptEntry) -> Void)?) {
        self.socket = socket
        self.path = path
        self.logger = logger
        self.transcript = transcript
    }

    var isConnected: Bool { state.withLock { $0.endReason == nil } }

    // MARK: Reader thread

    func startReader() {
        startDetachedThread { [self] in
            let reason = readLoop()
            socket.close()
            end(reason: reason)
            readerFinished.fulfill(())
        }
    }

    /// Reads until EOF or an error and returns why it stopped.
    private func readLoop() -> String {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var decoder = QMPStreamDecoder()
        var messages: [JSONValue] = []
        while true {
            let count: Int
            do throws(StreamSocket.Failure) {
                count = try socket.read(into: buffer)
            } catch {
                guard case .io(let code) = error else { return "the QMP socket was shut down" }
                return "reading the QMP socket failed (\(errnoText(code)))"
            }
            if count == 0 {
                if !greeting.isFulfilled {
                    greeting.fulfill(.failure(.connectFailed(
                        path: path,
                        reason: "QEMU closed the connection before sending the QMP greeting")))
                }
                return "QEMU closed the QMP connection (EOF)"
            }
            messages.removeAll(keepingCapacity: true)
            let bytes = UnsafeBufferPointer(start: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count)
            var failure: QMPError?
            do {
                try decoder.feed(buffer: bytes, into: &messages)
            } catch {
                failure = error
            }
            for message in messages { handle(message) }
            if let failure {
                logger.error("malformed data on the QMP socket; disconnecting", metadata: ["qmp.error": "\(failure)"])
                greeting.fulfill(.failure(failure))
                socket.shutdown()
                return "QEMU sent malformed QMP data (\(failure))"
            }
        }
    }

    private func handle(_ message: JSONValue) {
        let isFirst = state.withLock { state in
            defer { state.greetingSeen = true }
            return !state.greetingSeen
        }
        if isFirst {
            record(.received, message)
            greeting.fulfill(.success(message))
            return
        }
        if let event = QMPEvent(message: message) {
            record(.event, message)
            deliver(event)
            return
        }
        record(.received, message)
        guard message["return"] != nil || message["error"] != nil else {
            logger.warning("dropping a QMP message that is neither a reply nor an event",
                           metadata: ["qmp.message": "\(message.compactText.qmpTruncated)"])
            return
        }
        guard let id = Self.replyID(message) else {
            logger.warning("dropping a QMP reply without a usable id",
                           metadata: ["qmp.message": "\(message.compactText.qmpTruncated)"])
            return
        }
        let (pending, wasAbandoned) = state.withLock { state in
            (state.pending.removeValue(forKey: id), state.abandoned.remove(id) != nil)
        }
        guard let pending else {
            if wasAbandoned {
                logger.debug("dropping the late reply of a call that timed out or was cancelled", metadata: ["qmp.id": "\(id)"])
            } else {
                logger.warning("dropping a QMP reply with an unknown id", metadata: ["qmp.id": "\(id)"])
            }
            return
        }
        pending.timer?.cancel()
        if let value = message["return"] {
            pending.continuation.resume(returning: .success(value))
        } else {
            let error = message["error"]
            pending.continuation.resume(returning: .failure(.commandFailed(
                command: pending.command,
                errorClass: error?["class"]?.stringValue ?? "GenericError",
                desc: error?["desc"]?.stringValue ?? error.map(\.compactText) ?? "no description")))
        }
    }

    /// Our ids are integers; QEMU echoes them unchanged. A numeric string is accepted too.
    private static func replyID(_ message: JSONValue) -> Int64? {
        switch message["id"] {
        case .int(let id): return id
        case .string(let text): return Int64(text)
        default: return nil
        }
    }

    private func deliver(_ event: QMPEvent) {
        let targets = state.withLock { state in
            state.subscribers.values.compactMap { subscriber in
                subscriber.names.map { $0.contains(event.name) } ?? true ? subscriber.continuation : nil
            }
        }
        for target in targets { target.yield(event) }
    }

    private func record(_ direction: QMPTranscriptEntry.Direction, _ message: JSONValue) {
        guard let transcript else { return }
        transcript(QMPTranscriptEntry(direction: direction, text: message.compactText, time: wallClockSeconds()))
    }

    // MARK: Calls

    /// `passing`: descriptors sent with the command (SCM_RIGHTS), for `getfd` and `add-fd`.
    func call(_ command: String, _ arguments: JSONObject?, timeout: Duration, passing fds: [Int32] = []) async -> Reply {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Reply, Never>) in
                start(id: id, command: command, arguments: arguments, timeout: timeout, passing: fds,
                      continuation: continuation)
            }
        } onCancel: {
            abandon(id: id, because: .cancelled(command: command))
        }
    }

    private func start(id: Int64, command: String, arguments: JSONObject?, timeout: Duration, passing fds: [Int32],
                       continuation: CheckedContinuation<Reply, Never>) {
        // Register before writing: the reply may arrive before `write` returns.
        let endReason: String? = state.withLock { state in
            if let reason = state.endReason { return reason }
            state.pending[id] = Pending(command: command, continuation: continuation, timer: nil)
            return nil
        }
        if let endReason {
            continuation.resume(returning: .failure(.disconnected(command: command, reason: endReason)))
            return
        }
        if Task.isCancelled {
            abandon(id: id, because: .cancelled(command: command))
            return
        }

        var message = JSONObject()
        message["execute"] = .string(command)
        if let arguments { message["arguments"] = .object(arguments) }
        message["id"] = .int(id)
        var bytes: [UInt8] = JSONValue.object(message).withWireBytes { Array($0) }
        bytes.append(0x0A)
        if let transcript {
            transcript(QMPTranscriptEntry(direction: .sent, text: String(decoding: bytes.dropLast(), as: UTF8.self),
                                          time: wallClockSeconds()))
        }
        let written = Result { () throws(StreamSocket.Failure) in try socket.write(bytes, passing: fds) }
        if case .failure(let error) = written {
            let reason: String
            if case .io(let code) = error {
                reason = "writing to the QMP socket failed (\(errnoText(code)))"
            } else {
                reason = ended.isFulfilled ? "the QMP connection is closed" : "the QMP socket is closed"
            }
            abandon(id: id, because: .disconnected(command: command, reason: reason))
            return
        }

        let timer = Task.detached { [weak self] in
            do {
                try await Task.sleep(for: timeout)
            } catch {
                return  // the reply came first
            }
            self?.abandon(id: id, because: .timeout(command: command, after: timeout))
        }
        let stillPending = state.withLock { state in
            guard state.pending[id] != nil else { return false }
            state.pending[id]!.timer = timer
            return true
        }
        if !stillPending { timer.cancel() }
    }

    /// Fails one pending call (timeout, cancellation, write error); its late reply will be dropped.
    private func abandon(id: Int64, because error: QMPError) {
        let pending: Pending? = state.withLock { state in
            guard let pending = state.pending.removeValue(forKey: id) else { return nil }
            if state.abandoned.count >= Self.maximumAbandonedIDs { state.abandoned.removeAll() }
            state.abandoned.insert(id)
            return pending
        }
        guard let pending else { return }
        pending.timer?.cancel()
        if case .timeout = error {
            logger.warning("QMP command timed out", metadata: ["qmp.id": "\(id)", "qmp.command": "\(pending.command)"])
        }
        pending.continuation.resume(returning: .failure(error))
    }

    // MARK: Events

    func subscribe(_ names: Set<String>?) -> AsyncStream<QMPEvent> {
        // Bounded: an event storm from a misbehaving QEMU costs a subscriber that falls behind its oldest events,
        // never unbounded memory.
        let (stream, continuation) = AsyncStream<QMPEvent>.makeStream(bufferingPolicy: .bufferingNewest(Self.eventBuffer))
        let key: UInt64? = state.withLock { state in
            guard state.endReason == nil else { return nil }
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = Subscriber(names: names, continuation: continuation)
            return state.nextSubscriber
        }
        guard let key else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) }
        }
        return stream
    }

    // MARK: Ending

    /// Marks the connection over: fails every pending call with `.disconnected` and finishes every event stream.
    /// Idempotent; the first reason is kept.
    func end(reason: String) {
        let taken: (pending: [Int64: Pending], subscribers: [UInt64: Subscriber])? = state.withLock { state in
            guard state.endReason == nil else { return nil }
            state.endReason = reason
            defer {
                state.pending.removeAll()
                state.subscribers.removeAll()
            }
            return (state.pending, state.subscribers)
        }
        guard let taken else { return }
        if !taken.pending.isEmpty {
            logger.info("QMP connection ended with calls pending",
                        metadata: ["qmp.reason": "\(reason)", "qmp.pending": "\(taken.pending.count)"])
        }
        for (_, pending) in taken.pending.sorted(by: { $0.key < $1.key }) {
            pending.timer?.cancel()
            pending.continuation.resume(returning: .failure(.disconnected(command: pending.command, reason: reason)))
        }
        for subscriber in taken.subscribers.values { subscriber.continuation.finish() }
        greeting.fulfill(.failure(.connectFailed(path: path, reason: reason)))
        ended.fulfill(reason)
    }

    /// Ends the connection from our side and waits until the reader thread has closed the descriptor.
    func close(reason: String) async {
        end(reason: reason)
        socket.shutdown()
        _ = await readerFinished.wait()
    }
}
