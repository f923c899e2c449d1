import LogTail
import Dispatch
import Foundation
import JSON
import Logging
import Profiles
import QEMUCommand
import QMP

#if canImport(Glibc)
import Glibc
#endif

/// `corral run`: start a VM in the foreground, stream its serial console, and bring it
/// down on Ctrl-C, SIGTERM or after a fixed time. Leaves no process or socket behind.
public struct ForegroundRunner: Sendable {
    public var profile: Profile
    public var accel: ResolvedAccel
    /// Folder for the VM's runtime files; nil makes a temporary one that is removed afterwards.
    public var folder: String?
    public var duration: Duration?
    public var stopTimeout: Duration
    public var launcher: VMLauncher
    public var output: @Sendable (String) -> Void

    public init(profile: Profile, accel: ResolvedAccel, folder: String? = nil, duration: Duration? = nil,
                stopTimeout: Duration = .seconds(10), launcher: VMLauncher = VMLauncher(),
                output: @escaping @Sendable (String) -> Void) {
        self.profile = profile
        self.accel = accel
        self.folder = folder
        self.duration = duration
        self.stopTimeout = stopTimeout
        self.launcher = launcher
        self.output = output
    }

    public struct Outcome: Sendable {
        public var reason: EndReason
        public var status: ExitStatus
        public var method: ShutdownMethod
    }

    public enum EndReason: Sendable, Equatable {
        case signal(Int32)
        case timeUp
        case qemuExited
    }

    public func run() async throws(StartError) -> Outcome {
        let temporary = folder == nil
        let root: String
        if let folder {
            root = folder
        } else {
            var template = Array("/tmp/corral-run-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw StartError(vm: profile.name, reason: "cannot create a temporary folder", qemuOutput: [])
            }
            root = String(cString: made)
        }
        let paths = VMPaths(folder: root)
        defer {
            paths.removeSockets()
            FileOps.remove(paths.pidFile)
            if temporary { FileOps.removeTree(root) }
        }

        // Watch for Ctrl-C before anything starts, so an early one is not lost.
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        defer { signals.cancel() }

        var request = StartRequest(config: LiveConfig(profile: profile.resolvingManagedDisks(in: paths.folder)),
                                   accel: accel, paths: paths)
        if let cloudInit = profile.cloudInit {
            do {
                _ = try await CloudInitSeedWriter().write(cloudInit, vmName: profile.name, to: paths.cloudInitSeed)
            } catch {
                throw StartError(vm: profile.name, reason: error.description, qemuOutput: [])
            }
            request.seedImage = paths.cloudInitSeed
        }
        let vm = try await launcher.start(request)
        let version = vm.qmp.greeting.version
        let status = (try? await vm.qmp.execute("query-status"))?["status"]?.stringValue ?? "unknown"
        output("\(profile.name): \(status) (pid \(vm.process.pid), accel \(accel.rawValue), "
            + "QEMU \(version.major).\(version.minor).\(version.micro), QMP \(paths.qmpSocket))")

        let follower = LogFollower(path: paths.serialLog)
        let console = Task { [output] in
            for await line in follower.lines() { output(line) }
        }

        let reason = await withTaskGroup(of: EndReason?.self) { group in
            group.addTask {
                for await sig in signals.stream { return .signal(sig) }
                return nil
            }
            group.addTask {
                await vm.process.waitForExitOrCancel() == nil ? nil : .qemuExited
            }
            if let duration {
                group.addTask {
                    do { try await Task.sleep(for: duration) } catch { return nil }
                    return .timeUp
                }
            }
            var first: EndReason = .qemuExited
            while let next = await group.next() {
                if let next {
                    first = next
                    break
                }
            }
            group.cancelAll()
            return first
        }

        if reason != .qemuExited { output("\(profile.name): stopping (\(describe(reason)))") }
        let (exitStatus, method) = await VMShutdown.stop(vm, timeout: stopTimeout)
        await vm.qmp.close()
        follower.stop()
        await console.value
        output("\(profile.name): stopped (\(method.rawValue), QEMU \(exitStatus))")
        return Outcome(reason: reason, status: exitStatus, method: method)
    }

    private func describe(_ reason: EndReason) -> String {
        switch reason {
        case .signal(let sig): return sig == SIGINT ? "Ctrl-C" : "signal \(sig)"
        case .timeUp: return "time is up"
        case .qemuExited: return "QEMU exited"
        }
    }
}

/// SIGINT/SIGTERM as an async stream; the default action is suspended while it lives.
package final class SignalWatcher: @unchecked Sendable {
    package let stream: AsyncStream<Int32>
    private let sources: [DispatchSourceSignal]
    private let numbers: [Int32]

    package init(signals: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        self.numbers = signals
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    package func cancel() {
        for source in sources { source.cancel() }
        for number in numbers { signal(number, SIG_DFL) }
    }
}
