import JSON
import Logging
import UnixSockets

#if canImport(Glibc)
import Glibc
#endif

/// A QMP client for one QEMU monitor socket.
///
/// Commands may overlap: each gets an increasing integer `id` and its reply is routed back by that id, so one slow
/// command does not hold up the others. Events go to every `events(_:)` stream whose filter matches, without loss.
/// When QEMU closes the socket (it exited, or was killed), every pending call fails with `.disconnected`, every event
/// stream finishes and `waitForDisconnect()` returns.
///
/// The actor is the public face; the routing table lives in `QMPConnection` behind a mutex because the reader thread
/// resumes waiting calls directly (see docs/qmp.md).
public actor QMPClient {
    /// The banner QEMU sent when we connected.
    public nonisolated let greeting: QMPGreeting
    /// The path we connected to.
    public nonisolated let socketPath: String
    /// Timeout for calls that do not pass their own.
    public nonisolated let defaultTimeout: Duration

    let connection: QMPConnection

    private init(greeting: QMPGreeting, connection: QMPConnection, defaultTimeout: Duration) {
        self.greeting = greeting
        self.connection = connection
        self.socketPath = connection.path
        self.defaultTimeout = defaultTimeout
    }

    deinit {
        // Dropped without close(): end the connection so the reader thread exits and the descriptor is released.
        connection.end(reason: "the QMP client was released")
        connection.socket.shutdown()
    }

    /// Connects to QEMU's QMP socket, reads the greeting and leaves capability negotiation with `qmp_capabilities`.
    ///
    /// QEMU creates the socket a moment after it starts, so a missing socket (`ENOENT`) or one nobody listens on yet
    /// (`ECONNREFUSED`) is retried until `connectTimeout` has passed. The greeting must arrive within `defaultTimeout`.
    public static func connect(
        socketPath: String,
        connectTimeout: Duration = .seconds(5),
        defaultTimeout: Duration = .seconds(10),
        logger: Logger? = nil,
        transcript: (@Sendable (QMPTranscriptEntry) -> Void)? = nil
    ) async throws(QMPError) -> QMPClient {
        var logger = logger ?? Logger(label: "corral.qmp", factory: { _ in SwiftLogNoOpLogHandler() })
        logger[metadataKey: "qmp.socket"] = "\(socketPath)"

        let socket = try await connectWithRetry(path: socketPath, timeout: connectTimeout)
        let connection = QMPConnection(socket: socket, path: socketPath, logger: logger, transcript: transcript)
        connection.startReader()

        let greetingTimer = Task.detached {
            try? await Task.sleep(for: defaultTimeout)
            connection.greeting.fulfill(.failure(.connectFailed(
                path: socketPath,
                reason: "no QMP greeting within \(QMPError.seconds(defaultTimeout)); is another client (an earlier"
                    + " corral daemon?) still connected to this socket?")))
        }
        let first = await connection.greeting.wait() ?? .failure(.connectFailed(path: socketPath, reason: "cancelled"))
        greetingTimer.cancel()

        let greeting: QMPGreeting
        do {
            greeting = try QMPGreeting(message: first.get())
        } catch {
            await connection.close(reason: "the QMP handshake failed")
            throw error
        }
        logger.debug("QMP greeting", metadata: ["qmp.version": "\(greeting.version)"])

        let client = QMPClient(greeting: greeting, connection: connection, defaultTimeout: defaultTimeout)
        do {
            // QEMU sends the greeting at once but runs the command on its main loop, which on a host starting many
            // VMs at once can be slow to get a turn (more than 10 s was seen with thirty TCG guests booting on
            // two cores): the handshake gets at least 30 s.
            _ = try await client.execute("qmp_capabilities", nil, timeout: max(defaultTimeout, .seconds(30)))
        } catch {
            await client.close()
            throw error
        }
        return client
    }

    private static func connectWithRetry(path: String, timeout: Duration) async throws(QMPError) -> StreamSocket {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        // QEMU creates its socket some tens of milliseconds after it starts, and a start waits on exactly that:
        // look every millisecond for the first two seconds (a failed connect costs microseconds), then back off.
        let eager = clock.now.advanced(by: .seconds(2))
        var delay = Duration.milliseconds(1)
        while true {
            let code: Int32
            do throws(UnixStreamConnect.Failure) {
                return try StreamSocket.connect(path: path)
            } catch {
                // Worth retrying: the socket does not exist yet, or nobody listens on it yet.
                guard case .connect(let errno) = error, errno == ENOENT || errno == ECONNREFUSED else {
                    throw .connectFailed(path: path, reason: error.message)
                }
                code = errno
            }
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else {
                let hint = code == ENOENT ? "the socket does not exist" : "nothing is listening on it"
                throw .connectFailed(
                    path: path,
                    reason: "\(hint) (\(errnoText(code))) after retrying for \(QMPError.seconds(timeout));"
                        + " is QEMU running with a QMP socket at this path?")
            }
            do {
                try await Task.sleep(for: min(delay, remaining))
            } catch {
                throw .connectFailed(path: path, reason: "cancelled while waiting for the socket")
            }
            if clock.now >= eager { delay = min(delay * 2, .milliseconds(100)) }
        }
    }

    /// Runs one QMP command and returns its `return` value.
    ///
    /// - Throws: `.commandFailed` with QMP's `class` and `desc`; `.timeout` after `timeout` (default:
    ///   `defaultTimeout`), after which a late reply is dropped; `.disconnected` if the connection ends first;
    ///   `.cancelled` if the calling task is cancelled.
    public func execute(_ command: String, _ arguments: JSONObject? = nil, timeout: Duration? = nil)
        async throws(QMPError) -> JSONValue
    {
        try await connection.call(command, arguments, timeout: timeout ?? defaultTimeout).get()
    }

    /// A command with descriptors attached (SCM_RIGHTS): QEMU's `getfd` and `add-fd` take them this way. The
    /// caller keeps (and closes) its own copies.
    public func execute(_ command: String, _ arguments: JSONObject?, timeout: Duration?, passing fds: [Int32])
        async throws(QMPError) -> JSONValue
    {
        try await connection.call(command, arguments, timeout: timeout ?? defaultTimeout, passing: fds).get()
    }

    /// A stream of events, all of them (`nil`) or only those named. Subscribe before triggering what you wait for.
    /// The stream buffers without limit and finishes when the connection ends.
    public nonisolated func events(_ names: Set<String>? = nil) -> AsyncStream<QMPEvent> {
        connection.subscribe(names)
    }

    /// Closes the connection: pending calls fail with `.disconnected`, event streams finish. Returns once the reader
    /// thread has released the socket. Calling it again does nothing.
    public func close() async {
        await connection.close(reason: "the QMP connection was closed by corral")
    }

    /// False once QEMU closed the socket, a read failed, or `close()` was called.
    public var isConnected: Bool { connection.isConnected }

    /// Returns when the connection ends (QEMU exited or closed the socket, or `close()`), or when the calling task
    /// is cancelled.
    public nonisolated func waitForDisconnect() async {
        _ = await connection.ended.wait()
    }

    /// Why the connection ended, or nil while it is up.
    public nonisolated var disconnectReason: String? {
        get async { connection.isConnected ? nil : await connection.ended.wait() }
    }
}
