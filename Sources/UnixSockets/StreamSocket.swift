#if canImport(Glibc)
import Glibc
#endif
import CSupport
import Synchronization

/// A connected stream socket with blocking I/O: QMP's monitor connection and each HTTP call of the client.
///
/// Lifetime: one thread reads and, once it is done, calls `close()`; any thread may `write` or `shutdown()`
/// meanwhile (a shutdown is how a blocked read is made to return). Writes and the final close hold `writeLock`, so
/// two writes never interleave and a write never lands on a descriptor number that was closed and reused;
/// `shutdown()` takes only `lifecycle`, so it can unblock a stuck write.
public final class StreamSocket: Sendable {
    public enum Failure: Error, Sendable, Equatable {
        /// `shutdown()` was called: the read or write was ended on purpose.
        case shutDown
        /// A write after `close()` released the descriptor.
        case closed
        /// The read's deadline passed before anything arrived.
        case timedOut
        case io(errno: Int32)
    }

    private enum Lifecycle { case open, shutDown, closed }

    private let fd: Int32
    /// True once the descriptor is closed; guards writes.
    private let writeLock = Mutex(false)
    private let lifecycle = Mutex(Lifecycle.open)

    /// Takes over `fd`, a connected stream socket; `close()` closes it.
    public init(adopting fd: Int32) {
        self.fd = fd
    }

    /// Connects to the Unix socket at `path` (one attempt).
    public static func connect(path: String) throws(UnixStreamConnect.Failure) -> StreamSocket {
        StreamSocket(adopting: try UnixStreamConnect.connect(path: path))
    }

    /// True once `close()` released the descriptor.
    public var isClosed: Bool { lifecycle.withLock { $0 == .closed } }

    private var wasShutDown: Bool { lifecycle.withLock { $0 == .shutDown } }

    /// True once `shutdown()` was called (a failure after it is the shutdown's doing).
    public var isShutDown: Bool { wasShutDown }

    /// The descriptor, for a layer that reads and writes it itself (a TLS session); still this object's to close.
    public var descriptor: Int32 { fd }

    /// Reads what is there, blocking until something is: at most `buffer.count` bytes; returns the count, 0 at EOF.
    /// `deadline`: a `ContinuousClock` instant after which `.timedOut` is thrown; nil waits as long as it takes.
    public func read(into buffer: UnsafeMutableRawBufferPointer,
                     deadline: ContinuousClock.Instant? = nil) throws(Failure) -> Int {
        if let deadline { try waitUntilReadable(deadline) }
        let count = retryingEINTR { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if wasShutDown { throw .shutDown }
        guard count >= 0 else { throw .io(errno: errno) }
        return count
    }

    /// `read(into:deadline:)` into a new array of at most `capacity` bytes; empty at EOF.
    public func read(capacity: Int = 64 * 1024, deadline: ContinuousClock.Instant? = nil) throws(Failure) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: capacity)
        let count = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(Failure) in try read(into: raw, deadline: deadline) }
        }
        bytes.removeSubrange(try count.get()...)
        return bytes
    }

    /// Waits until a read would not block, or throws `.timedOut` at `deadline`.
    public func waitUntilReadable(_ deadline: ContinuousClock.Instant) throws(Failure) {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw .timedOut }
            var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
            let ready = poll(&waiting, 1, Int32(min(milliseconds + 1, Int64(Int32.max))))
            if ready > 0 { return }
            if ready < 0 && errno != EINTR { throw .io(errno: errno) }
        }
    }

    /// Writes all of `bytes` (looping over partial writes and EINTR), never raising SIGPIPE. `passing`: descriptors
    /// sent along with the first byte (SCM_RIGHTS; QMP's `getfd` takes a descriptor this way).
    public func write(_ bytes: UnsafeRawBufferPointer, passing fds: [Int32] = []) throws(Failure) {
        let failure: Failure? = writeLock.withLock { closed in
            if closed { return .closed }
            var offset = 0
            var attach = fds
            while offset < bytes.count {
                let sent: Int
                if attach.isEmpty {
                    sent = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                } else {
                    let rc = attach.withUnsafeBufferPointer {
                        corral_send_with_fds(fd, bytes.baseAddress! + offset, UInt(bytes.count - offset),
                                             $0.baseAddress, Int32($0.count))
                    }
                    if rc < 0 { errno = Int32(-rc) }
                    sent = rc < 0 ? -1 : Int(rc)
                    if sent > 0 { attach = [] }
                }
                if sent >= 0 {
                    offset += sent
                } else if errno != EINTR {
                    let code = errno
                    return wasShutDown ? .shutDown : .io(errno: code)
                }
            }
            return nil
        }
        if let failure { throw failure }
    }

    public func write(_ bytes: [UInt8], passing fds: [Int32] = []) throws(Failure) {
        try bytes.withUnsafeBytes { raw in Result { () throws(Failure) in try write(raw, passing: fds) } }.get()
    }

    /// Ends both directions so a blocked read returns (and a blocked write fails). Any thread, any number of times.
    public func shutdown() {
        lifecycle.withLock { state in
            guard state == .open else { return }
            state = .shutDown
            _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    /// Releases the descriptor. Called once, by the reading thread, after its last read.
    public func close() {
        writeLock.withLock { writeClosed in
            lifecycle.withLock { state in
                guard state != .closed else { return }
                state = .closed
                writeClosed = true
                _ = Glibc.close(fd)
            }
        }
    }
}

private func retryingEINTR<T: FixedWidthInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
