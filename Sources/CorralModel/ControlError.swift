/// Every way a control operation fails. The API maps each case to an HTTP status and
/// a JSON body `{ "error": code, "message": …, "diagnostics": [...] }`; the CLI prints
/// `message` and exits 2 for `invalidProfile`/`invalidRequest`, 1 otherwise.
public enum ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Profile validation failed: every diagnostic, with file:line:col.
    case invalidProfile([Diagnostic])
    case invalidRequest(String)
    case notFound(String)
    /// The operation does not fit the VM's state, or the name is taken.
    case conflict(String)
    /// QEMU did not start; carries its own output lines.
    case startFailed(reason: String, qemuOutput: [String])
    /// QMP answered with an error or did not answer.
    case qmp(String)
    /// Admission control or host limits said no.
    case refused(String)
    case internalError(String)

    public var code: String {
        switch self {
        case .invalidProfile: return "invalid-profile"
        case .invalidRequest: return "invalid-request"
        case .notFound: return "not-found"
        case .conflict: return "conflict"
        case .startFailed: return "start-failed"
        case .qmp: return "qmp-error"
        case .refused: return "refused"
        case .internalError: return "internal"
        }
    }

    public var message: String {
        switch self {
        case .invalidProfile(let diagnostics):
            return "invalid profile (\(diagnostics.count) error\(diagnostics.count == 1 ? "" : "s"))"
        case .invalidRequest(let m), .notFound(let m), .conflict(let m), .qmp(let m), .refused(let m),
            .internalError(let m):
            return m
        case .startFailed(let reason, _):
            return reason
        }
    }

    public var description: String {
        switch self {
        case .invalidProfile(let diagnostics):
            return diagnostics.map(\.description).joined(separator: "\n")
        case .startFailed(let reason, let output):
            return ([reason] + output.map { "  qemu: \($0)" }).joined(separator: "\n")
        default:
            return message
        }
    }
}
