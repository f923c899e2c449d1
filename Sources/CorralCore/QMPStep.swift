import JSON

/// One QMP command of a plan (hotplug, migration), as a value: what to send, and for the steps that need it, what
/// to wait for afterwards and what undoes it. The one command value the pure plans produce; the Supervisor sends it.
public struct QMPStep: Sendable, Equatable, CustomStringConvertible {
    public enum Wait: Sendable, Equatable {
        case none
        /// After the command, wait for DEVICE_DELETED naming this device id or QOM path.
        case deviceDeleted(String)
    }

    public var command: String
    public var arguments: JSONObject
    public var wait: Wait
    /// `blockdev-del` right after an unplug can fail while QEMU still holds the node; retry a few times.
    public var retryWhileInUse: Bool
    /// Run (in order) to undo this step once it has succeeded.
    public var undo: [QMPStep]

    public init(_ command: String, _ arguments: JSONObject = [:], wait: Wait = .none, retryWhileInUse: Bool = false,
                undo: [QMPStep] = []) {
        self.command = command
        self.arguments = arguments
        self.wait = wait
        self.retryWhileInUse = retryWhileInUse
        self.undo = undo
    }

    public var description: String {
        let id = arguments["id"]?.stringValue ?? arguments["node-name"]?.stringValue ?? ""
        return id.isEmpty ? command : "\(command) \(id)"
    }
}
