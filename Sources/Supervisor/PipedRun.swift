import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper (qemu-img) to completion with its output on pipes, handing stdout to the caller as it comes.
/// Cancelling the calling task stops the helper (SIGTERM, then SIGKILL after 2 s) and waits until it has been reaped:
/// when `run` returns, the process is gone.
enum PipedRun {
    struct Outcome: Sendable {
        var status: ExitStatus
        /// stderr (the first 64 KiB), when it was not merged into the output.
        var errors: String
        /// The task was cancelled and the helper stopped.
        var cancelled: Bool
    }

    static let errorLimit = 64 << 10

    /// - Parameters:
    ///   - executable: the resolved path (no PATH search here).
    ///   - mergeErrors: stderr goes where stdout goes (`onOutput`), in the order written.
    ///   - onOutput: stdout's bytes, chunk by chunk, on a reader thread.
    static func run(_ executable: String, _ arguments: [String], mergeErrors: Bool,
                    onOutput: @escaping @Sendable ([UInt8]) -> Void) async throws(LaunchError) -> Outcome
    {
        let output = try makePipe(executable)
        var errorPipe: (read: Int32, write: Int32)?
        if !mergeErrors {
            do { errorPipe = try makePipe(executable) } catch {
                close(output.read)
                close(output.write)
                throw error
            }
        }
        var spec = LaunchSpec(executable: PathName.last(executable), arguments: arguments)
        spec.path = executable
        spec.standardOutput = output.write
        spec.standardError = errorPipe?.write ?? output.write
        let handle: ProcessHandle
        do {
            handle = try ProcessLauncher.launch(spec)
        } catch {
            for fd in [output.read, output.write, errorPipe?.read, errorPipe?.write].compactMap({ $0 }) { close(fd) }
            throw error
        }
        // Only the child holds the write ends now: each reader sees end of file when it exits.
        close(output.write)
        if let errorPipe { close(errorPipe.write) }
        let outputDone = PipeReader.start(output.read, onChunk: onOutput)
        let errors = ErrorText()
        let errorsDone = errorPipe.map { PipeReader.start($0.read, onChunk: { errors.append($0) }) }

        var cancelled = false
        let status: ExitStatus
        if let ended = await handle.waitForExitOrCancel() {
            status = ended
        } else {
            cancelled = true
            // In a task of its own: `terminate` in this cancelled task would not wait (neither the grace period nor
            // the end), and the caller's cleanup must come after the helper is gone.
            status = await Task.detached { await handle.terminate(grace: .seconds(2)) }.value
        }
        await outputDone.waitAfterExit()
        await errorsDone?.waitAfterExit()
        return Outcome(status: status, errors: errors.text, cancelled: cancelled || Task.isCancelled)
    }

    private static func makePipe(_ executable: String) throws(LaunchError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw LaunchError(executable: executable, errno: errno) }
        // Close-on-exec: no other child inherits them (ProcessLauncher also closes everything above what it hands
        // over in each child it spawns).
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }
}

private enum PathName {
    static func last(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// stderr gathered up to `PipedRun.errorLimit`.
private final class ErrorText: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []

    func append(_ chunk: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        if bytes.count < PipedRun.errorLimit { bytes += chunk.prefix(PipedRun.errorLimit - bytes.count) }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads one descriptor on its own thread until end of file, or, once told the helper has exited, until the pipe has
/// stayed empty for a moment (a grandchild that inherited the write end must not keep us waiting); then closes it.
private final class PipeReader: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    private var helperExited = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    static func start(_ fd: Int32, onChunk: @escaping @Sendable ([UInt8]) -> Void) -> PipeReader {
        let reader = PipeReader()
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while true {
                poller.revents = 0
                let ready = poll(&poller, 1, 100)
                if ready < 0 && errno == EINTR { continue }
                if ready == 0 {
                    // Nothing for 100 ms: after the helper's exit everything it wrote has been read.
                    if reader.exited { break }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                onChunk(Array(buffer[0..<n]))
            }
            close(fd)
            reader.finish()
        }
        thread.name = "corral-pipe-\(fd)"
        thread.start()
        return reader
    }

    private var exited: Bool {
        lock.lock()
        defer { lock.unlock() }
        return helperExited
    }

    private func finish() {
        lock.lock()
        done = true
        let pending = waiters
        waiters = []
        lock.unlock()
        for waiter in pending { waiter.resume() }
    }

    /// Returns once the reader is done; call it after the helper has exited.
    func waitAfterExit() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            helperExited = true
            if done {
                lock.unlock()
                continuation.resume()
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }
}
