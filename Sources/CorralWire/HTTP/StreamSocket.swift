#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import UnixSockets

/// Why a socket operation failed.
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

    package var message: String {
        switch self {
        case .connect(let code), .io(let code): return String(cString: strerror(code))
        case .resolve(let detail): return "cannot resolve the host: \(detail)"
        case .timedOut: return "timed out"
        case .shutDown: return "cancelled"
        case .pathTooLong(let count):
            return "the socket path is \(count) bytes long; Unix sockets allow at most \(UnixStreamConnect.maxPathBytes)"
        }
    }
}

/// A connected stream socket (Unix or TCP) with blocking I/O and deadlines: the client's only edge.
///
/// One thread does the I/O; any other thread may call `shutdown()` to make a blocked read return (that is how a
/// cancelled request lets go). `close()` is for the I/O thread, once it is done.
package final class StreamSocket: Sendable {
    private let fd: Int32
    private enum Lifecycle { case open, shutDown, closed }
    private let lifecycle = Mutex(Lifecycle.open)
    private var wasShutDown: Bool { lifecycle.withLock { $0 == .shutDown } }

    private init(fd: Int32) { self.fd = fd }

    /// Connects to a Unix socket path.
    package static func connect(unixPath path: String) throws(SocketFailure) -> StreamSocket {
        do {
            return StreamSocket(fd: try UnixStreamConnect.connect(path: path))
        } catch {
            switch error {
            case .pathTooLong(let bytes, _): throw .pathTooLong(bytes)
            case .socket(let code): throw .io(errno: code)
            case .connect(let code): throw .connect(errno: code)
            }
        }
    }

    /// Connects over TCP to the first address of `host` that answers within `timeout` seconds.
    package static func connect(host: String, port: Int, timeout: Double) throws(SocketFailure) -> StreamSocket {
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
                return StreamSocket(fd: fd)
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
            let ready = retryingEINTR { poll(&pending, 1, Int32(max(0, timeout) * 1000)) }
            guard ready > 0 else { throw ready == 0 ? .timedOut : .io(errno: errno) }
            var code: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
            guard code == 0 else { throw .connect(errno: code) }
        }
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    }

    /// Writes every byte (never raising SIGPIPE).
    package func write(_ bytes: [UInt8]) throws(SocketFailure) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
            } else if errno != EINTR {
                throw wasShutDown ? .shutDown : .io(errno: errno)
            }
        }
    }

    /// Reads what is there (blocking until something is), up to `capacity` bytes; empty at EOF.
    /// `deadline` is a `ContinuousClock` instant, nil to wait as long as it takes.
    package func read(capacity: Int = 64 * 1024, deadline: ContinuousClock.Instant?) throws(SocketFailure) -> [UInt8] {
        if let deadline {
            while true {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { throw .timedOut }
                var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
                let ready = poll(&waiting, 1, Int32(min(milliseconds + 1, Int64(Int32.max))))
                if ready > 0 { break }
                if ready < 0 && errno != EINTR { throw .io(errno: errno) }
            }
        }
        var buffer = [UInt8](repeating: 0, count: capacity)
        let count = buffer.withUnsafeMutableBytes { raw in retryingEINTR { Glibc.read(fd, raw.baseAddress, raw.count) } }
        if wasShutDown { throw .shutDown }
        guard count >= 0 else { throw .io(errno: errno) }
        buffer.removeSubrange(count...)
        return buffer
    }

    /// Ends both directions so a blocked read returns. Any thread, any number of times.
    package func shutdown() {
        lifecycle.withLock { state in
            guard state == .open else { return }
            state = .shutDown
            _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    /// Releases the descriptor; the I/O thread calls it once, when done.
    package func close() {
        lifecycle.withLock { state in
            guard state != .closed else { return }
            state = .closed
            _ = Glibc.close(fd)
        }
    }
}

private func retryingEINTR<T: FixedWidthInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
