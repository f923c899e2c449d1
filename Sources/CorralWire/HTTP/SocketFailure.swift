#if canImport(Glibc)
import Glibc
#endif
import UnixSockets

/// Why a connection of the client failed.
package enum SocketFailure: Error, Sendable, Equatable {
    /// connect(2) failed with this errno.
    case connect(errno: Int32)
    /// The host name did not resolve.
    case resolve(String)
    case timedOut
    /// The connection was shut down locally (cancellation).
    case shutDown
    case io(errno: Int32)
    case pathTooLong(Int)
    /// The TLS handshake or a TLS record failed (OpenSSL's reason).
    case tls(String)

    package var message: String {
        switch self {
        case .connect(let code), .io(let code): return String(cString: strerror(code))
        case .resolve(let detail): return "cannot resolve the host: \(detail)"
        case .tls(let reason): return reason
        case .timedOut: return "timed out"
        case .shutDown: return "cancelled"
        case .pathTooLong(let count):
            return "the socket path is \(count) bytes long; Unix sockets allow at most \(UnixStreamConnect.maxPathBytes)"
        }
    }

    init(_ failure: UnixStreamConnect.Failure) {
        switch failure {
        case .pathTooLong(let bytes, _): self = .pathTooLong(bytes)
        case .socket(let code): self = .io(errno: code)
        case .connect(let code): self = .connect(errno: code)
        }
    }

    init(_ failure: StreamSocket.Failure) {
        switch failure {
        case .shutDown, .closed: self = .shutDown
        case .timedOut: self = .timedOut
        case .io(let code): self = .io(errno: code)
        }
    }
}

/// Connecting over TCP (the Unix side is `UnixStreamConnect`).
enum TCPConnect {
    /// Connects to the first address of `host` that answers within `timeout` seconds.
    static func connect(host: String, port: Int, timeout: Double) throws(SocketFailure) -> StreamSocket {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { throw .resolve(String(cString: gai_strerror(status))) }
        defer { freeaddrinfo(list) }
        var lastError = SocketFailure.connect(errno: ECONNREFUSED)
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                            info.pointee.ai_protocol)
            guard fd >= 0 else {
                lastError = .io(errno: errno)
                continue
            }
            do throws(SocketFailure) {
                try connectWithTimeout(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, timeout)
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return StreamSocket(adopting: fd)
            } catch {
                Glibc.close(fd)
                lastError = error
            }
        }
        throw lastError
    }

    private static func connectWithTimeout(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>!,
                                           _ length: socklen_t, _ timeout: Double) throws(SocketFailure) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, address, length) != 0 {
            guard errno == EINPROGRESS else { throw .connect(errno: errno) }
            var pending = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat {
                ready = poll(&pending, 1, Int32(max(0, timeout) * 1000))
            } while ready < 0 && errno == EINTR
            guard ready > 0 else { throw ready == 0 ? .timedOut : .io(errno: errno) }
            var code: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
            guard code == 0 else { throw .connect(errno: code) }
        }
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    }
}
