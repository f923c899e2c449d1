import JSON
import QMP

/// The slice of a QMP connection that hotplug needs: commands and events.
/// `QMPClient` is the real one; unit tests use a strict scripted monitor.
public protocol QMPCommandRunner: Sendable {
    func execute(_ command: String, _ arguments: JSONObject?, timeout: Duration?) async throws(QMPError) -> JSONValue
    func events(_ names: Set<String>?) -> AsyncStream<QMPEvent>
}

extension QMPClient: QMPCommandRunner {}
