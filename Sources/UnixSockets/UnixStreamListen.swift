#if canImport(Glibc)
import Glibc
#endif

/// Binding an `AF_UNIX` stream socket to a path, the listening counterpart of `UnixStreamConnect`: the scripted
/// servers of the tests, and the socket file nobody listens on that a killed daemon leaves behind.
public enum UnixStreamListen {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// `sun_path` holds `limit` bytes plus the terminating NUL.
        case pathTooLong(bytes: Int, limit: Int)
        /// socket(2), bind(2) or listen(2) failed: bind with EADDRINUSE when a file is there already.
        case failed(call: String, errno: Int32)

        public var description: String {
            switch self {
            case .pathTooLong(let bytes, let limit):
                return "the socket path is \(bytes) bytes long; Unix sockets allow at most \(limit)"
            case .failed(let call, let code): return "\(call)(): \(String(cString: strerror(code)))"
            }
        }
    }

    /// A new close-on-exec stream socket bound to `path` and listening, with room for `backlog` connections
    /// not yet accepted. The caller owns and closes it, and removes the socket file.
    public static func listen(path: String, backlog: Int32 = 4) throws(Failure) -> Int32 {
        let fd = try bind(path: path)
        guard Glibc.listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw .failed(call: "listen", errno: code)
        }
        return fd
    }

    /// A new close-on-exec stream socket bound to `path`, not listening: the socket file exists, a connect to it
    /// is refused. Closing it at once leaves what a daemon killed with SIGKILL leaves.
    public static func bind(path: String) throws(Failure) -> Int32 {
        let limit = UnixAddress.maxPathBytes
        guard path.utf8.count <= limit else { throw .pathTooLong(bytes: path.utf8.count, limit: limit) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .failed(call: "socket", errno: errno) }
        guard UnixAddress.with(path: path, { Glibc.bind(fd, $0, $1) }) == 0 else {
            let code = errno
            close(fd)
            throw .failed(call: "bind", errno: code)
        }
        return fd
    }
}
