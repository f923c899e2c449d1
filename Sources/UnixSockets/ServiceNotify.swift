#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (`sd_notify`): one datagram to `$NOTIFY_SOCKET` per state change
/// (`READY=1`, `STOPPING=1`, `STATUS=…`). Without `NOTIFY_SOCKET` (not started by systemd with Type=notify) it does
/// nothing. An abstract socket is written `@name`.
public enum ServiceNotify {
    /// Sends `state`; false when there is nowhere to send it or the send failed (systemd then times out, which is
    /// the only thing it can do anyway).
    @discardableResult
    public static func send(_ state: String, environment: [String: String]? = nil) -> Bool {
        let target = environment?["NOTIFY_SOCKET"] ?? getenv("NOTIFY_SOCKET").map { String(cString: $0) }
        guard let target, !target.isEmpty else { return false }
        var path = Array(target.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        guard path.count <= UnixAddress.maxPathBytes else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: path) }
        // An abstract name's length is exact (no terminating NUL); a path's includes up to the NUL.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), pointer, length) }
            }
        }
        return sent == bytes.count
    }
}
