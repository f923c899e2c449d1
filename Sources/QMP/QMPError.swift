/// Everything that can go wrong talking QMP. Each case renders as one line that names the command or socket and,
/// where there is one, what to do about it.
public enum QMPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The socket could not be connected to, or QEMU did not greet us on it.
    case connectFailed(path: String, reason: String)
    /// QEMU answered the command with an error. `errorClass` and `desc` are QMP's `class` and `desc`.
    case commandFailed(command: String, errorClass: String, desc: String)
    /// No reply arrived in time; a late reply is dropped.
    case timeout(command: String, after: Duration)
    /// The connection ended (EOF, read or write error, or `close()`) before the reply arrived.
    case disconnected(command: String, reason: String)
    /// The bytes on the socket are not QMP (malformed JSON, a greeting without `QMP`, a reply without a value).
    case protocolError(String)
    /// The calling task was cancelled while waiting; a late reply is dropped.
    case cancelled(command: String)

    public var description: String {
        switch self {
        case .connectFailed(let path, let reason):
            return "cannot open QMP socket \(path): \(reason)"
        case .commandFailed(let command, let errorClass, let desc):
            return "QMP command '\(command)' failed: \(desc) (\(errorClass))"
        case .timeout(let command, let after):
            return "QMP command '\(command)' got no reply within \(QMPError.seconds(after)); QEMU may be hung or busy"
                + " (check the VM's QMP transcript, or raise the timeout)"
        case .disconnected(let command, let reason):
            return "\(reason) while waiting for '\(command)'"
        case .protocolError(let message):
            return "QMP protocol error: \(message)"
        case .cancelled(let command):
            return "QMP command '\(command)' was cancelled before QEMU replied"
        }
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return "\(milliseconds) ms"
    }
}
