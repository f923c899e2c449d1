/// Where a client finds the local daemon: its Unix socket. (A peer's TCP listener is a `HostPort`.)
public enum DaemonAddress {
    public static let defaultSocketPath = "/run/corral/corral.sock"

    /// `--socket`, then `CORRAL_SOCKET`, then `/run/corral/corral.sock`.
    public static func socketPath(option: String?, environment: [String: String]) -> String {
        if let option, !option.isEmpty { return option }
        if let env = environment["CORRAL_SOCKET"], !env.isEmpty { return env }
        return defaultSocketPath
    }
}
