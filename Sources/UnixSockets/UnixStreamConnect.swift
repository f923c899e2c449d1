#if canImport(Glibc)
import Glibc
#endif

/// Connecting an `AF_UNIX` stream socket to a path (`UnixStreamListen` is the other side).
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
    public static var maxPathBytes: Int { UnixAddress.maxPathBytes }

    /// A new close-on-exec stream socket connected to `path` (EINTR retried). The caller owns and closes it.
    public static func connect(path: String) throws(Failure) -> Int32 {
        guard path.utf8.count <= maxPathBytes else { throw .pathTooLong(bytes: path.utf8.count, limit: maxPathBytes) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(errno: errno) }
        let result = UnixAddress.with(path: path) { address, length in
            var result: Int32
            repeat {
                result = Glibc.connect(fd, address, length)
            } while result != 0 && errno == EINTR
            return result
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw .connect(errno: code)
        }
        return fd
    }
}
