import ArgumentParser
import Dispatch

/// `corral`: the command-line front end. Each verb is its own `ParsableCommand`; the quick ones (`up`, `ls`,
/// `status`) are synchronous, the rest async. `runAndExit()` runs each kind the way it needs.
///
/// Exit codes: 0 success; 1 the operation failed (QEMU, QMP or I/O error);
/// 2 invalid input (profile validation errors, bad arguments).
public struct Corral: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "corral",
        abstract: "Declarative QEMU/KVM virtual machines: profiles, supervision, hotplug, overcommit, migration.",
        discussion: """
            Exit codes: 0 success, 1 operation failed, 2 invalid profile or arguments.
            """,
        subcommands: [
            CheckCommand.self,
            ArgvCommand.self,
            RunCommand.self,
            ImportCommand.self,
            QMPCommand.self,
            ConvertCommand.self,
            DaemonCommand.self,
            UpCommand.self,
            ListCommand.self,
            StatusCommand.self,
            StartCommand.self,
            StopCommand.self,
            KillCommand.self,
            PauseCommand.self,
            ResumeCommand.self,
            RemoveCommand.self,
            ConsoleCommand.self,
            EventsCommand.self,
            CPUCommand.self,
            DiskCommand.self,
            NICCommand.self,
            NetworkCommand.self,
            MemoryCommand.self,
            BalloonCommand.self,
            StatsCommand.self,
            SetCommand.self,
            HostCommand.self,
            HostDeviceCommand.self,
            VolumeCommand.self,
            SnapshotCommand.self,
            ScreenshotCommand.self,
            VNCCommand.self,
            ClusterCommand.self,
            MigrateCommand.self,
        ]
    )
    public init() {}
}

extension Corral {
    /// Parses the command line and runs the command, then exits. A synchronous command runs right here on the
    /// main thread, so Swift's concurrency runtime never starts: for `corral up` that is about half a
    /// millisecond of a process that lives for a few (docs/benchmarks.md). An async command runs in a task
    /// while the main thread serves the main queue, as an async `main` would.
    /// (ArgumentParser's own `main` wants an async root for async subcommands, and an async root makes every
    /// command pay for the runtime.)
    public static func runAndExit() -> Never {
        let parsed: any ParsableCommand
        do {
            parsed = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        guard let asynchronous = parsed as? any AsyncParsableCommand else {
            var command = parsed
            do {
                try command.run()
            } catch {
                exit(withError: error)
            }
            exit()
        }
        let pending = PendingCommand(asynchronous)
        Task {
            do {
                try await pending.run()
            } catch {
                exit(withError: error)
            }
            exit()
        }
        dispatchMain()
    }
}

/// An async command handed from the main thread to the task that runs it; only that task touches it.
private final class PendingCommand: @unchecked Sendable {
    private var command: any AsyncParsableCommand

    init(_ command: any AsyncParsableCommand) { self.command = command }

    func run() async throws { try await command.run() }
}
