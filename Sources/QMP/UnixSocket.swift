#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A connected `AF_UNIX` stream socket: blocking connect, read, whole-message writes, shutdown and close.
///
/// Lifetime: one reader thread reads and, when it sees EOF or an error, calls `close()`; any thread may write or
/// `shutdown()` meanwhile. Writes and the final close hold `writeLock`, so a write can never land on a descriptor
/// number that was closed and reused; `shutdown()` only takes `lifecycle`, so it can unblock a stuck write.
final class UnixSocket: Sendable {
    let path: String
    private let fd: Int32
    /// True once the descriptor is closed; guards writes.
    private let writeLock = Mutex(false)
    /// True once the descriptor is closed; guards shutdown.
    private let lifecycle = Mutex(false)

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    enum ConnectError: Error {
        /// Worth retrying: the socket does not exist yet, or nobody listens on it yet.
        case notYet(errno: Int32)
        case failed(String)
    }

    /// One connection attempt.
    static func connect(path: String) throws(ConnectError) -> UnixSocket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            throw .failed("the socket path is \(pathBytes.count) bytes long; Unix sockets allow at most \(capacity - 1)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .failed("socket(): \(errnoText(errno))") }
        var result: Int32
        repeat {
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while result != 0 && errno == EINTR
        if result != 0 {
            let code = errno
            Glibc.close(fd)
            if code == ENOENT || code == ECONNREFUSED { throw .notYet(errno: code) }
            throw .failed(errnoText(code))
        }
        return UnixSocket(path: path, fd: fd)
    }

    /// True once `close()` released the descriptor.
    var isClosed: Bool { lifecycle.withLock { $0 } }

    /// Blocking read; returns the byte count, 0 at EOF, or -errno.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            return -Int(errno)
        }
    }

    /// Writes all of `bytes` (looping over partial writes and EINTR), never raising SIGPIPE.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketWriteError) {
        let failure: SocketWriteError? = writeLock.withLock { closed in
            if closed { return .closed }
            var offset = 0
            while offset < bytes.count {
                let sent = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if sent >= 0 {
                    offset += sent
                } else if errno != EINTR {
                    return .failed(errno: errno)
                }
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Ends both directions so a blocked `read` returns EOF. Safe to call at any time, any number of times.
    func shutdown() {
        lifecycle.withLock { closed in
            if !closed { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Releases the descriptor. Called once, by the reader thread, after its last read.
    func close() {
        writeLock.withLock { writeClosed in
            lifecycle.withLock { closed in
                guard !closed else { return }
                closed = true
                writeClosed = true
                _ = Glibc.close(fd)
            }
        }
    }
}

enum SocketWriteError: Error {
    case closed
    case failed(errno: Int32)
}

func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Starts a detached POSIX thread running `body`.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Start: Sendable {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }
    let start = Unmanaged.passRetained(Start(body: body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { context in
        let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
        start.body()
        return nil
    }, start)
    precondition(result == 0, "pthread_create failed: \(errnoText(result))")
    pthread_detach(thread)
}
