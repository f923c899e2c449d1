#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import UnixSockets

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
        do {
            return UnixSocket(path: path, fd: try UnixStreamConnect.connect(path: path))
        } catch {
            if case .connect(let code) = error, code == ENOENT || code == ECONNREFUSED { throw .notYet(errno: code) }
            throw .failed(error.message)
        }
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
