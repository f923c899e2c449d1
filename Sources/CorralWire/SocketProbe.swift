import Foundation
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
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            return .failed("socket path \(path) is \(bytes.count) bytes long; Unix sockets allow at most \(capacity - 1)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var result: Int32
        repeat {
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while result != 0 && errno == EINTR
        if result == 0 { return .answers }
        let code = errno
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
