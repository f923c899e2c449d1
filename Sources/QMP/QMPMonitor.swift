import JSON

/// A QMP connection as its users see it: commands with replies, events, the greeting, closing. `QMPClient` is the
/// real one; tests use a strict scripted monitor. The typed commands (`QMPCommands.swift`) are written once, on this
/// protocol, so the daemon and its fakes send the same JSON.
public protocol QMPMonitor: Sendable {
    /// The banner QEMU sent when the connection opened (its version).
    var greeting: QMPGreeting { get }
    /// Runs one command; `timeout` nil means the connection's default.
    func execute(_ command: String, _ arguments: JSONObject?, timeout: Duration?) async throws(QMPError) -> JSONValue
    /// The same with descriptors attached to the command (SCM_RIGHTS).
    func execute(_ command: String, _ arguments: JSONObject?, timeout: Duration?, passing fds: [Int32])
        async throws(QMPError) -> JSONValue
    /// Events, all (`nil`) or only those named; the stream finishes when the connection ends.
    func events(_ names: Set<String>?) -> AsyncStream<QMPEvent>
    /// Ends the connection; pending calls fail, event streams finish.
    func close() async
}

extension QMPClient: QMPMonitor {}
