#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import UnixSockets
#if canImport(Glibc)
import Glibc
#endif

/// What is at a Unix socket path, found by trying to connect.
package enum SocketProbe: Equatable {
    /// Something accepted the connection.
    case answers
    /// Nothing at the path.
    case absent
    /// A socket file nobody listens on (left by a daemon that died).
    case stale
    /// The path exists but is not a socket.
    case notASocket
    case failed(String)

    package static func probe(_ path: String) -> SocketProbe {
        do {
            close(try UnixStreamConnect.connect(path: path))
            return .answers
        } catch {
            guard case .connect(let code) = error else { return .failed("\(path): \(error.message)") }
            return classify(connectErrno: code, path: path)
        }
    }

    /// What a connect(2) to `path` that failed with `code` says is there.
    package static func classify(connectErrno code: Int32, path: String) -> SocketProbe {
        switch code {
        case ENOENT: return .absent
        case ECONNREFUSED:
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFSOCK { return .notASocket }
            return .stale
        case ENOTSOCK: return .notASocket
        default: return .failed("\(path): \(String(cString: strerror(code)))")
        }
    }
}
