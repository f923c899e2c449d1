import CSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A process launch as a value: what to run, with what, where its output goes.
/// No shell is involved anywhere: `arguments` reach `execve` unchanged.
public struct LaunchSpec: Sendable, Equatable {
    /// argv[0]; a bare name is looked up in PATH unless `path` says where it is.
    public var executable: String
    /// The file to run when already resolved (e.g. by `HostProbe.findExecutable`): no second PATH search.
    public var path: String?
    public var arguments: [String]
    /// stdout and stderr are appended to this file (nil → /dev/null).
    public var outputFile: String?
    /// Our descriptor the child's stdout goes to instead of `outputFile` (e.g. a pipe's write end). Not for a
    /// confined launch (`confinement`), whose output always goes to `outputFile`.
    public var standardOutput: Int32?
    /// Our descriptor the child's stderr goes to; nil: wherever stdout goes. Not for a confined launch either.
    public var standardError: Int32?
    /// Start a new session so the process survives its parent and ignores the terminal's Ctrl-C.
    public var detach: Bool
    /// Descriptors handed to the child: key = the number the child finds it at (3 and up), value = ours.
    public var passing: [Int32: Int32] = [:]
    /// Run unprivileged (another uid, no capabilities, no_new_privs); nil runs as the daemon does.
    public var confinement: Confinement?

    public init(executable: String, arguments: [String], outputFile: String? = nil, detach: Bool = false) {
        self.executable = executable
        self.arguments = arguments
        self.outputFile = outputFile
        self.detach = detach
    }

    /// `argv` with argv[0] first, as `QEMUArgv.build` returns it.
    public init(argv: [String], outputFile: String? = nil, detach: Bool = false) {
        self.init(executable: argv.first ?? "", arguments: Array(argv.dropFirst()),
                  outputFile: outputFile, detach: detach)
    }
}

/// How a process ended: data, not an exception.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// The process was not our child (e.g. reattached after a daemon restart), so its status cannot be read.
    case unknown

    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let sig): return "killed by signal \(sig) (\(String(cString: strsignal(sig))))"
        case .unknown: return "exited"
        }
    }
}

public struct LaunchError: Error, CustomStringConvertible {
    public var executable: String
    public var errno: Int32
    public var description: String {
        if errno == ENOENT { return "cannot run \(executable): not found (is it installed and in PATH?)" }
        return "cannot run \(executable): \(String(cString: strerror(errno)))"
    }
}

/// A QEMU process as the supervisor sees it: signal it, wait for it, know how it ended. `ProcessHandle` is the
/// real one; unit tests use a fake whose exit they trigger.
public protocol QEMUProcess: Sendable {
    var pid: pid_t { get }
    func signal(_ sig: Int32)
    /// Waits until the process ends or the calling task is cancelled (nil).
    func waitForExitOrCancel() async -> ExitStatus?
    /// Waits up to `timeout`; nil when still running then.
    func waitForExit(timeout: Duration) async -> ExitStatus?
    /// How it ended, once it has.
    var exitStatus: ExitStatus? { get }
}

extension QEMUProcess {
    /// SIGTERM, then SIGKILL when it is still alive after `grace`. Returns how it ended.
    @discardableResult
    public func terminate(grace: Duration = .seconds(3)) async -> ExitStatus {
        if let done = exitStatus { return done }
        signal(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return status }
        signal(SIGKILL)
        while true {
            if let status = await waitForExitOrCancel() { return status }
            if Task.isCancelled { return exitStatus ?? .unknown }
        }
    }
}

/// A running (or finished) process we can signal and wait for.
public final class ProcessHandle: QEMUProcess {
    public let pid: pid_t
    /// True when this process is our child (we must reap it); false for a reattached pid.
    public let isChild: Bool
    private let exit: ExitWaiter

    init(pid: pid_t, isChild: Bool) {
        self.pid = pid
        self.isChild = isChild
        self.exit = ExitWaiter(pid: pid, isChild: isChild)
    }

    /// Adopts an existing pid (after a daemon restart). nil when no such process lives.
    public static func adopt(pid: pid_t) -> ProcessHandle? {
        guard ProcessHandle.isAlive(pid) else { return nil }
        return ProcessHandle(pid: pid, isChild: false)
    }

    public static func isAlive(_ pid: pid_t) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    public func signal(_ sig: Int32) {
        _ = kill(pid, sig)
    }

    /// Waits until the process ends. Safe to call from several tasks.
    public func waitForExit() async -> ExitStatus {
        while true {
            if let status = await exit.wait() { return status }
            if Task.isCancelled { return exit.finished ?? .unknown }
        }
    }

    /// Waits until the process ends or the calling task is cancelled (nil).
    public func waitForExitOrCancel() async -> ExitStatus? {
        await exit.wait()
    }

    /// Waits up to `timeout`; nil when still running then.
    public func waitForExit(timeout: Duration) async -> ExitStatus? {
        await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await self.exit.wait() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    public var hasExited: Bool { exit.finished != nil }

    /// How it ended, once it has.
    public var exitStatus: ExitStatus? { exit.finished }
}

/// Reaps (or watches) one pid on a dedicated thread and fans the result out.
private final class ExitWaiter: @unchecked Sendable {
    private let lock = NSLock()
    private var status: ExitStatus?
    private var waiters: [UInt64: CheckedContinuation<ExitStatus?, Never>] = [:]

    init(pid: pid_t, isChild: Bool) {
        let thread = Thread { [self] in
            let result = isChild ? ExitWaiter.reap(pid) : ExitWaiter.watch(pid)
            lock.lock()
            status = result
            let pending = waiters.values
            waiters = [:]
            lock.unlock()
            for waiter in pending { waiter.resume(returning: result) }
        }
        thread.name = "corral-wait-\(pid)"
        thread.start()
    }

    var finished: ExitStatus? {
        lock.lock()
        defer { lock.unlock() }
        return status
    }

    /// The exit status, or nil when the calling task is cancelled first.
    func wait() async -> ExitStatus? {
        let id = UInt64.random(in: 0...UInt64.max)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ExitStatus?, Never>) in
                lock.lock()
                if let status {
                    lock.unlock()
                    continuation.resume(returning: status)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: nil)
                } else {
                    waiters[id] = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let waiter = waiters.removeValue(forKey: id)
            lock.unlock()
            waiter?.resume(returning: nil)
        }
    }

    private static func reap(_ pid: pid_t) -> ExitStatus {
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 {
            if errno != EINTR { return .unknown }
        }
        let low = raw & 0x7f
        if low == 0 { return .exited((raw >> 8) & 0xff) }
        return .signaled(low)
    }

    /// A pid that is not our child: wait on a pidfd (Linux ≥ 5.3).
    private static func watch(_ pid: pid_t) -> ExitStatus {
        let fd = corral_pidfd_open(pid)
        if fd < 0 { return .unknown }
        defer { close(fd) }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, -1) < 0 && errno == EINTR {}
        return .unknown
    }
}

public enum ProcessLauncher {
    /// `spec.passing` as (target, copy) pairs, target order: each of our descriptors copied (close-on-exec) above every
    /// target, so placing one in the child never overwrites another still to be placed. The caller closes the copies.
    static func placedCopies(_ spec: LaunchSpec) throws(LaunchError) -> [(target: Int32, copy: Int32)] {
        let highest = max(2, spec.passing.keys.max() ?? 2)
        var placed: [(target: Int32, copy: Int32)] = []
        for (target, source) in spec.passing.sorted(by: { $0.key < $1.key }) {
            let copy = fcntl(source, F_DUPFD_CLOEXEC, highest + 1)
            guard copy >= 0 else {
                let code = errno
                for (_, earlier) in placed { close(earlier) }
                throw LaunchError(executable: spec.executable, errno: code)
            }
            placed.append((target, copy))
        }
        return placed
    }

    /// Spawns `spec` with posix_spawn (no shell). stdin is /dev/null; the signal mask and
    /// dispositions are reset so the child does not inherit ours.
    public static func launch(_ spec: LaunchSpec) throws(LaunchError) -> ProcessHandle {
        if let confinement = spec.confinement { return try launchConfined(spec, confinement) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let descriptor = spec.standardOutput {
            posix_spawn_file_actions_adddup2(&actions, descriptor, 1)
        } else {
            let output = spec.outputFile ?? "/dev/null"
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        }
        posix_spawn_file_actions_adddup2(&actions, spec.standardError ?? 1, 2)
        // Handed-over descriptors go where the child expects them. Ours are first copied above every target (and
        // close-on-exec), so placing one never overwrites another that is still to be placed.
        let highest = spec.passing.keys.max() ?? 2
        let placed = try placedCopies(spec)
        defer { for (_, copy) in placed { close(copy) } }
        for (target, copy) in placed { posix_spawn_file_actions_adddup2(&actions, copy, target) }
        // Nothing else we hold (QMP connections, API listeners, other VMs' sockets) reaches the child.
        _ = withUnsafeMutablePointer(to: &actions) { corral_spawn_closefrom($0, highest + 1) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if spec.detach { flags |= Int32(corral_posix_spawn_setsid()) }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv = [spec.executable] + spec.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let rc = if let path = spec.path {
            posix_spawn(&pid, path, &actions, &attributes, &cArgs, environ)
        } else {
            posix_spawnp(&pid, spec.executable, &actions, &attributes, &cArgs, environ)
        }
        guard rc == 0 else { throw LaunchError(executable: spec.executable, errno: rc) }
        return ProcessHandle(pid: pid, isChild: true)
    }

    /// Runs a short helper (e.g. qemu-img) to completion and returns its status and output.
    public static func run(_ executable: String, _ arguments: [String]) async throws(LaunchError)
        -> (status: ExitStatus, output: String)
    {
        let outputPath = "/tmp/corral-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(outputPath) }
        let handle = try launch(LaunchSpec(executable: executable, arguments: arguments, outputFile: outputPath))
        let status = await handle.waitForExit()
        let output = (try? FileOps.readText(outputPath)) ?? nil
        return (status, output ?? "")
    }
}
