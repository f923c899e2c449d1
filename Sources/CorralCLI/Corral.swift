import ArgumentParser

/// `corral`: the command-line front end. Each verb is its own `ParsableCommand`.
///
/// Exit codes: 0 success; 1 the operation failed (QEMU, QMP or I/O error);
/// 2 invalid input (profile validation errors, bad arguments).
public struct Corral: AsyncParsableCommand {
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
            QMPCommand.self,
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
            MemoryCommand.self,
            BalloonCommand.self,
            StatsCommand.self,
            SetCommand.self,
            HostCommand.self,
            MigrateCommand.self,
        ]
    )
    public init() {}
}
