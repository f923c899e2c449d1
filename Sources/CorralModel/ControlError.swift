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
    /// QMP answered with an error or did not answer: the command, QMP's `class` and `desc` are kept.
    case qmp(QMPFailure)
    /// A peer daemon (or the daemon, for a client) could not be reached or the connection broke: the transport
    /// failed, not the other side's logic. Distinct from `internalError`, which is a real fault on the side that
    /// answered.
    case unreachable(String)
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
        case .unreachable: return "unreachable"
        case .refused: return "refused"
        case .internalError: return "internal"
        }
    }

    public var message: String {
        switch self {
        case .invalidProfile(let diagnostics):
            return "invalid profile (\(diagnostics.count) error\(diagnostics.count == 1 ? "" : "s"))"
        case .invalidRequest(let m), .notFound(let m), .conflict(let m), .refused(let m), .unreachable(let m),
            .internalError(let m):
            return m
        case .qmp(let failure):
            return failure.message
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

/// A QMP failure as the user sees it: the command corral sent, QMP's own `class` and `desc` when QEMU answered with
/// an error, and what corral adds (what it was doing, what happens now). Code matches on `command`/`errorClass`,
/// never on the text.
public struct QMPFailure: Error, Sendable, Codable, Equatable {
    /// The QMP command that failed; nil when the failure is not one command's (a migration QEMU reported failed).
    public var command: String?
    /// QMP's error `class` (`GenericError`, `DeviceNotFound`, …); nil when QEMU did not answer with an error
    /// (timeout, connection lost, a state QEMU reported).
    public var errorClass: String?
    /// QMP's `desc`, or what went wrong.
    public var desc: String
    /// corral's addition: the consequence or the context ("web keeps running here").
    public var note: String?

    public init(command: String? = nil, errorClass: String? = nil, desc: String, note: String? = nil) {
        self.command = command
        self.errorClass = errorClass
        self.desc = desc
        self.note = note
    }

    /// `QMP command 'device_add' failed: Duplicate ID 'd1' for device (GenericError); …`.
    public var message: String {
        var text: String
        switch (command, errorClass) {
        case let (command?, errorClass?): text = "QMP command '\(command)' failed: \(desc) (\(errorClass))"
        case let (command?, nil) where !desc.contains("'\(command)'"): text = "\(command): \(desc)"
        default: text = desc
        }
        if let note, !note.isEmpty { text += "; " + note }
        return text
    }

    /// The same failure with `note` added after any note it has.
    public func noting(_ more: String) -> QMPFailure {
        var copy = self
        copy.note = note.map { $0 + "; " + more } ?? more
        return copy
    }
}
