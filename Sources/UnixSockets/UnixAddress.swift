#if canImport(Glibc)
import Glibc
#endif

/// The one place that builds a `sockaddr_un`: `UnixStreamConnect` and `UnixStreamListen` both start here.
enum UnixAddress {
    /// The longest path a Unix socket address holds (`sun_path` less the terminating NUL).
    static var maxPathBytes: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    /// Calls `body` with the address of `path` and its length. The caller has checked that `path` fits.
    static func with<T>(path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let bytes = Array(path.utf8)
        precondition(bytes.count <= maxPathBytes, "a Unix socket path longer than \(maxPathBytes) bytes")
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
