import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Follows a growing text file (the serial log) and yields complete lines as they are
/// written, woken by inotify rather than by polling. `stop()` ends the stream.
public final class LogFollower: @unchecked Sendable {
    public let path: String
    private let stopPipe: (read: Int32, write: Int32)
    private let lock = NSLock()
    private var stopped = false

    public init(path: String) {
        self.path = path
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        self.stopPipe = (fds[0], fds[1])
    }

    deinit {
        close(stopPipe.read)
        close(stopPipe.write)
    }

    /// Lines from byte `offset` on (0 = from the start), then new ones as they arrive.
    public func lines(from offset: Int = 0) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .unbounded)
        let thread = Thread { [self] in
            follow(from: offset) { continuation.yield($0) }
            continuation.finish()
        }
        thread.name = "corral-follow"
        thread.start()
        return stream
    }

    /// The first line of `path` (from byte `offset`, then as it grows) that satisfies `predicate`;
    /// nil when none has appeared after `limit`.
    public static func firstLine(in path: String, from offset: Int = 0, within limit: Duration,
                                 where predicate: @escaping @Sendable (String) -> Bool) async -> String? {
        let follower = LogFollower(path: path)
        defer { follower.stop() }
        return await withTaskGroup(of: String?.self) { group in
            group.addTask {
                for await line in follower.lines(from: offset) where predicate(line) { return line }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                follower.stop()
                return nil
            }
            let first = await group.next() ?? nil
            follower.stop()
            group.cancelAll()
            return first
        }
    }

    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
    }

    private func follow(from offset: Int, emit: (String) -> Void) {
        let inotify = inotify_init1(Int32(IN_CLOEXEC))
        guard inotify >= 0 else { return }
        defer { close(inotify) }
        // Watch the folder too, so a file that does not exist yet is picked up when created.
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        inotify_add_watch(inotify, folder, UInt32(IN_CREATE | IN_MODIFY | IN_MOVED_TO))
        var fd: Int32 = -1
        defer { if fd >= 0 { close(fd) } }
        var pending: [UInt8] = []
        var position = off_t(offset)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var events = [UInt8](repeating: 0, count: 4096)

        func drain() {
            if fd < 0 {
                fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 { return }
                inotify_add_watch(inotify, path, UInt32(IN_MODIFY))
            }
            while true {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, position) }
                if n <= 0 { break }
                position += off_t(n)
                pending.append(contentsOf: buffer[0..<n])
            }
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = pending[..<newline]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                emit(String(decoding: line, as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }

        drain()
        while true {
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || fds[1].revents != 0 { break }
            _ = events.withUnsafeMutableBytes { read(inotify, $0.baseAddress!, $0.count) }
            drain()
        }
        drain()
    }
}
