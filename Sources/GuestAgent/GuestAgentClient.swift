import CorralCore
import JSON
import QMP
import UnixSockets

/// The real guest agent: qemu-guest-agent behind the VM's `agent.sock` (QEMU's end of the virtio-serial port).
///
/// Each call is one short exchange on a fresh connection, on its own thread (the socket I/O blocks): a 0xFF byte
/// (flushes the agent's parser), `guest-sync-delimited` with a random id and the command, written at once; then the
/// reply after the sync reply (`AgentStream`). QGA has no greeting, and QEMU accepts the connection whether or not an
/// agent runs in the guest, so the whole exchange has one deadline (`timeout`), and at most `maxReplyBytes` are read.
public struct GuestAgentClient: GuestAgent {
    public var socketPath: String
    public var timeout: Duration
    public static let defaultTimeout: Duration = .milliseconds(1500)
    /// Far more than any guest's interface list; an agent that sends more is not trusted.
    public static let maxReplyBytes = 1 << 20

    public init(socketPath: String, timeout: Duration = GuestAgentClient.defaultTimeout) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    public func networkInterfaces() async throws(GuestAgentError) -> [GuestInterface] {
        let reply = try await call("guest-network-get-interfaces")
        do {
            return try GuestNetworkReply.parse(reply)
        } catch {
            throw .protocolError(error.description)
        }
    }

    /// Sends `command` after a sync and returns its `return` value.
    public func call(_ command: String) async throws(GuestAgentError) -> JSONValue {
        try await call(command, arguments: nil)
    }

    /// Sends `command` with `arguments` after a sync and returns its `return` value.
    public func call(_ command: String, arguments: JSONObject?) async throws(GuestAgentError) -> JSONValue {
        let path = socketPath
        let timeout = timeout
        let result: Result<JSONValue, GuestAgentError> = await withCheckedContinuation { continuation in
            startDetachedThread {
                continuation.resume(returning: Result { () throws(GuestAgentError) in
                    try Self.exchange(path: path, command: command, arguments: arguments, timeout: timeout)
                })
            }
        }
        return try result.get()
    }

    /// The blocking exchange (runs on its own thread).
    static func exchange(path: String, command: String, arguments: JSONObject? = nil,
                         timeout: Duration) throws(GuestAgentError) -> JSONValue {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let socket: StreamSocket
        do {
            socket = try StreamSocket.connect(path: path)
        } catch {
            throw .unavailable(path: path, reason: error.message)
        }
        defer { socket.close() }

        let syncID = Int64.random(in: 1...Int64(Int32.max))
        var request: [UInt8] = [AgentStream.sentinel]
        request += Array(requestText("guest-sync-delimited", ["id": .int(syncID)]).utf8)
        request += Array(requestText(command, arguments).utf8)
        do {
            try socket.write(request)
        } catch {
            throw .disconnected("write: \(error)")
        }

        var stream = AgentStream(syncID: syncID)
        var received = 0
        while true {
            let bytes: [UInt8]
            do {
                bytes = try socket.read(capacity: 16 * 1024, deadline: deadline)
            } catch .timedOut {
                throw .timeout(after: timeout)
            } catch {
                throw .disconnected("read: \(error)")
            }
            guard !bytes.isEmpty else { throw .disconnected("end of file before the reply to '\(command)'") }
            received += bytes.count
            guard received <= maxReplyBytes else {
                throw .protocolError("more than \(maxReplyBytes >> 10) KiB without a complete reply to '\(command)'")
            }
            if let reply = try stream.feed(bytes).first { return try result(of: reply, command: command) }
        }
    }

    /// `{"execute": NAME, "arguments": …}` followed by a newline.
    static func requestText(_ command: String, _ arguments: JSONObject?) -> String {
        var message: JSONObject = ["execute": .string(command)]
        if let arguments { message["arguments"] = .object(arguments) }
        return JSONValue.object(message).wireText + "\n"
    }

    /// A reply's `return`, or its `error` as a typed failure.
    static func result(of reply: JSONValue, command: String) throws(GuestAgentError) -> JSONValue {
        if let value = reply["return"] { return value }
        if let error = reply["error"] {
            throw .commandFailed(command: command, errorClass: error["class"]?.stringValue ?? "?",
                                 desc: error["desc"]?.stringValue ?? error.compactText)
        }
        throw .protocolError("a reply to '\(command)' with neither 'return' nor 'error'")
    }
}
