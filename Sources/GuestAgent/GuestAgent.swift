import CorralCore

/// A VM's qemu-guest-agent, as the daemon uses it. `GuestAgentClient` talks to the real one over the channel's Unix
/// socket; unit tests script one.
public protocol GuestAgent: Sendable {
    /// `guest-network-get-interfaces`: the guest's interfaces with their MACs and addresses. Answers or fails within
    /// the agent's bound (an agent that is not running in the guest never answers).
    func networkInterfaces() async throws(GuestAgentError) -> [GuestInterface]
}

/// Why the guest agent gave no answer. One line each; `status` shows the agent as not answering.
public enum GuestAgentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The channel's socket could not be connected to (QEMU is not running, or the path is wrong).
    case unavailable(path: String, reason: String)
    /// Nothing (or not all of it) arrived in time: usually no agent runs in the guest.
    case timeout(after: Duration)
    /// The channel closed before the reply.
    case disconnected(String)
    /// The agent answered with an error.
    case commandFailed(command: String, errorClass: String, desc: String)
    /// What arrived is not a usable reply (malformed JSON, too large, the wrong shape).
    case protocolError(String)

    public var description: String {
        switch self {
        case .unavailable(let path, let reason): return "cannot open the guest agent socket \(path): \(reason)"
        case .timeout(let after): return "the guest agent did not answer within \(after) (is qemu-ga running in the guest?)"
        case .disconnected(let reason): return "the guest agent channel closed: \(reason)"
        case .commandFailed(let command, let errorClass, let desc):
            return "guest agent command '\(command)' failed: \(desc) (\(errorClass))"
        case .protocolError(let message): return "guest agent protocol error: \(message)"
        }
    }
}
