#if canImport(Glibc)
import Glibc
#endif

/// Connecting an `AF_UNIX` stream socket to a path: the one place that builds a `sockaddr_un`.
/// QMP's socket, the daemon client, the daemon's stale-socket probe and the benchmark harness all start here.
public enum UnixStreamConnect {
    public enum Failure: Error, Sendable, Equatable {
        /// `sun_path` holds `limit` bytes plus the terminating NUL.
        case pathTooLong(bytes: Int, limit: Int)
        /// socket(2) failed.
        case socket(errno: Int32)
        /// connect(2) failed: ENOENT (no such path), ECONNREFUSED (nobody listens), EACCES, ENOTSOCK, …
        case connect(errno: Int32)

        public var message: String {
            switch self {
            case .pathTooLong(let bytes, let limit):
                return "the socket path is \(bytes) bytes long; Unix sockets allow at most \(limit)"
            case .socket(let code): return "socket(): \(String(cString: strerror(code)))"
            case .connect(let code): return String(cString: strerror(code))
            }
        }
    }

    /// The longest path a Unix socket address holds.
    public static var maxPathBytes: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    /// A new close-on-exec stream socket connected to `path` (EINTR retried). The caller owns and closes it.
    public static func connect(path: String) throws(Failure) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathBytes else { throw .pathTooLong(bytes: bytes.count, limit: maxPathBytes) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(errno: errno) }
        var result: Int32
        repeat {
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while result != 0 && errno == EINTR
        guard result == 0 else {
            let code = errno
            close(fd)
            throw .connect(errno: code)
        }
        return fd
    }
}
