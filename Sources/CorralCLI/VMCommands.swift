import CorralModel
import CorralWire
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Define and start a VM from a profile, through the daemon; prints the VM's name.",
        discussion: """
            The profile path is sent as an absolute path: the daemon reads it on its own host.
            An invalid profile prints every problem as FILE:LINE:COL: field: message and exits 2;
            when QEMU does not start, its own output follows the error and the exit code is 1.
            """)

    @Argument(help: "Profile file (YAML).")
    var profile: String

    @Option(help: "Name of the VM (default: the profile's name).")
    var name: String?

    @Option(help: "Override the profile's accelerator: kvm, tcg or auto.")
    var accel: Accel?

    @Flag(help: "Start with the CPUs paused.")
    var paused = false

    @Flag(help: "Print the VM's status as JSON.")
    var json = false

    @OptionGroup var socket: DaemonSocketOption

    /// With the profile's path made absolute: the daemon reads it on its own host.
    var request: UpRequest {
        UpRequest(profile: ClientPath.absolute(profile), name: name, accel: accel, paused: paused)
    }

    func validate() throws {
        do { try request.validate() } catch { throw error.validationError }
    }

    func run() throws {
        let request = self.request
        let status = try DaemonCall.runBlocking(socket: socket.resolved) { try $0.up(request) }
        if json { try JSONOutput.print(status) } else { Terminal.out(status.name) }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List the daemon's VMs.")

    @Flag(help: "Print a JSON array of VM statuses (docs/api.md).")
    var json = false

    @Flag(help: "In a cluster: every VM of every live host, with its host (this host's VMs in full).")
    var all = false

    @OptionGroup var socket: DaemonSocketOption

    func run() throws {
        if all {
            let (vms, report) = try DaemonCall.runBlocking(socket: socket.resolved) { try ($0.list(), $0.cluster()) }
            let rows = ClusterText.allVMs(local: vms, report: report)
            if json { return try JSONOutput.print(rows) }
            for line in ClusterText.allTable(rows) { Terminal.out(line) }
            return
        }
        let vms = try DaemonCall.runBlocking(socket: socket.resolved) { try $0.list() }
        if json { return try JSONOutput.print(vms) }
        for line in StatusText.table(vms) { Terminal.out(line) }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show one VM: state, process, CPUs, memory, devices, paths.")

    @Argument(help: "VM name.")
    var name: String

    @Flag(help: "Print the status as JSON (docs/api.md).")
    var json = false

    @OptionGroup var socket: DaemonSocketOption

    func run() throws {
        let status = try DaemonCall.runBlocking(socket: socket.resolved) { try $0.status(name) }
        if json { return try JSONOutput.print(status) }
        for line in StatusText.block(status) { Terminal.out(line) }
    }
}

/// The verbs that change one VM's state and print `NAME: STATE`.
struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a stopped (or crashed) VM.")
    @Argument(help: "VM name.") var name: String
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.start(name) }
        Terminal.out(StatusText.line(status))
    }
}

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Press the ACPI power button; quit QEMU when the guest has not powered off after --timeout.")
    @Argument(help: "VM name.") var name: String
    @Option(help: "Seconds to wait for the guest to power off (default 30).") var timeout: Double?
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        if let timeout, !(timeout >= 0 && timeout <= 86_400) {
            throw ValidationError("--timeout must be between 0 and 86400 seconds")
        }
    }

    func run() async throws {
        let wait = timeout.map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.stop(name, timeout: wait) }
        Terminal.out(StatusText.line(status))
    }
}

struct KillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "SIGKILL the VM's QEMU process.")
    @Argument(help: "VM name.") var name: String
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.kill(name) }
        Terminal.out(StatusText.line(status))
    }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Pause the VM's CPUs.")
    @Argument(help: "VM name.") var name: String
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.pause(name) }
        Terminal.out(StatusText.line(status))
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Resume a paused VM.")
    @Argument(help: "VM name.") var name: String
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.resume(name) }
        Terminal.out(StatusText.line(status))
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Forget a VM and its state folder; --force stops it first when it runs.",
        discussion: "A VM with managed volumes (disks made from a size alone) needs --delete-volumes or "
            + "--keep-volumes (kept in STATE/volumes/NAME/).")
    @Argument(help: "VM name.") var name: String
    @Flag(help: "Stop the VM first when it is running.") var force = false
    @Flag(help: "Delete the VM's managed volumes with it.") var deleteVolumes = false
    @Flag(help: "Keep the VM's managed volumes (moved to STATE/volumes/NAME/).") var keepVolumes = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        if deleteVolumes && keepVolumes { throw ValidationError("--delete-volumes and --keep-volumes exclude each other") }
    }

    func run() async throws {
        let volumes: VolumeDisposition? = deleteVolumes ? .delete : keepVolumes ? .keep : nil
        try await DaemonCall.run(socket: socket.resolved) { try await $0.remove(name, force: force, volumes: volumes) }
        Terminal.out("\(name): removed" + (volumes == .keep ? " (volumes kept)" : ""))
    }
}

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Print the last lines of a VM's serial console; --follow keeps printing new ones (Ctrl-C ends); "
            + "--attach connects your terminal to it.",
        discussion: """
            --attach: keystrokes go to the guest, its output comes back; Ctrl-] ends. One client at a time may be \
            attached (--force takes over); any number may read with --follow. The log keeps everything either way.
            """)
    @Argument(help: "VM name.") var name: String
    @Option(help: "How many past lines to print (default 50).") var lines: Int?
    @Flag(name: [.short, .long], help: "Keep printing lines as the guest writes them.") var follow = false
    @Flag(help: "Connect the terminal to the console (read and write).") var attach = false
    @Flag(help: "With --attach: take the console over from the client attached now.") var force = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        if let lines, lines < 0 { throw ValidationError("--lines must not be negative") }
        if force && !attach { throw ValidationError("--force goes with --attach") }
        if attach && (follow || lines != nil) { throw ValidationError("--attach does not go with --follow or --lines") }
    }

    func run() async throws {
        if attach {
            do { try ConsoleAttach.run(name: name, force: force, socket: socket.resolved) } catch let failure as StreamFailure {
                Terminal.err("error: \(failure.description)")
                throw ExitCode(ExitCodeValue.failure.rawValue)
            }
            return
        }
        try await DaemonCall.run(socket: socket.resolved) { client in
            for try await line in try await client.console(name, lines: lines, follow: follow) {
                Terminal.out(line)
            }
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Stream events (QMP's and corral's) of one VM or of every VM, until Ctrl-C.",
        discussion: """
            Human lines are TIME VM SOURCE NAME data; --json prints one JSON object per line.
            With --no-follow, prints the past events (--history) and exits instead of waiting for new ones.
            """)
    @Argument(help: "VM name (default: every VM).") var name: String?
    @Option(help: "How many past events to print first (default 10).") var history: Int = 10
    @Flag(help: "Print the past events and exit; do not wait for new ones.") var noFollow = false
    @Flag(help: "One JSON object per line (NDJSON), as the API sends them.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        if history < 0 { throw ValidationError("--history must not be negative") }
    }

    func run() async throws {
        try await DaemonCall.run(socket: socket.resolved) { client in
            for try await event in try await client.events(vm: name, history: history, follow: !noFollow) {
                if json { try JSONOutput.print(event, pretty: false) } else { Terminal.out(StatusText.event(event)) }
            }
        }
    }
}
