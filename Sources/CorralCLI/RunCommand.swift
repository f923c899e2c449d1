import ArgumentParser
import Profiles
import Supervisor

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a VM in the foreground and stream its serial console; Ctrl-C shuts it down.",
        discussion: """
            Starts QEMU from the profile, connects QMP, prints the VM's status and then its serial
            console. Ctrl-C (or --for) presses the ACPI power button, waits up to --stop-timeout for the
            guest to power off, then quits QEMU. Nothing is left behind: no process, no socket.
            """)

    @Argument(help: "Profile file (YAML).")
    var profile: String

    @Option(name: .customLong("for"), help: "Stop the VM after this many seconds.")
    var seconds: Double?

    @Option(help: "Seconds to wait for the guest to power off before quitting QEMU.")
    var stopTimeout: Double = 10

    @Option(help: "Keep the VM's runtime files (QMP socket, serial log, transcript) in this folder.")
    var folder: String?

    @OptionGroup var accel: AccelOption

    func validate() throws {
        if let seconds, seconds <= 0 { throw ValidationError("--for must be more than 0 seconds") }
        if stopTimeout < 0 { throw ValidationError("--stop-timeout must not be negative") }
    }

    func run() async throws {
        let loaded = try ProfileInput.load(profile)
        let runner = ForegroundRunner(
            profile: loaded, accel: accel.resolve(for: loaded), folder: folder,
            duration: seconds.map { .milliseconds(Int64($0 * 1000)) },
            stopTimeout: .milliseconds(Int64(stopTimeout * 1000)),
            output: { Terminal.out($0) })
        do {
            _ = try await runner.run()
        } catch {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}
