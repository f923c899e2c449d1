/// Where a client finds a daemon: its Unix socket (local) or `HOST:PORT` (a peer's TCP listener).
public enum DaemonAddress {
    public static let defaultSocketPath = "/run/corral/corral.sock"

    /// `--socket`, then `CORRAL_SOCKET`, then `/run/corral/corral.sock`.
    public static func socketPath(option: String?, environment: [String: String]) -> String {
        if let option, !option.isEmpty { return option }
        if let env = environment["CORRAL_SOCKET"], !env.isEmpty { return env }
        return defaultSocketPath
    }

    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6); nil when it is not one.
    public static func parseHostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }
}
