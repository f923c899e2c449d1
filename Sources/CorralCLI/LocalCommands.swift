import ArgumentParser

// `check`, `argv` and `run` need the profile loader, the argv builder and (for `run`) QEMU, none of which a
// daemon client needs. `corral` parses them here, so `corral VERB --help` and argument errors come from
// `corral`, then hands the command line to `corral-local`, which parses the same arguments and does the work.

package struct CheckArguments: ParsableArguments {
    @Argument(help: "Profile files (YAML).")
    package var profiles: [String]

    @Flag(help: "Skip checks that files (kernel, initrd, disk images) exist.")
    package var noFileChecks = false

    @Flag(help: "Print a JSON array of {file, valid, name, errors[]}.")
    package var json = false

    package init() {}

    package func validate() throws {
        if profiles.isEmpty { throw ValidationError("give at least one profile") }
    }
}

package struct CheckCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate profiles and report every problem with FILE:LINE:COL.",
        discussion: "Exits 2 when any profile is invalid.")

    @OptionGroup var arguments: CheckArguments

    package init() {}

    package func run() throws { try Helper.local.forward(verb: "check") }
}

package struct ArgvArguments: ParsableArguments {
    @Argument(help: "Profile file (YAML).")
    package var profile: String

    @Flag(help: "Print one shell-quoted line instead of one argument per line.")
    package var shell = false

    @Flag(help: "Skip checks that files (kernel, initrd, disk images) exist.")
    package var noFileChecks = false

    @OptionGroup package var accel: AccelOption
    @OptionGroup package var state: StateDirOption

    package init() {}
}

package struct ArgvCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "argv",
        abstract: "Print the QEMU command line a profile turns into, one argument per line.")

    @OptionGroup var arguments: ArgvArguments

    package init() {}

    package func run() throws { try Helper.local.forward(verb: "argv") }
}

package struct RunArguments: ParsableArguments {
    @Argument(help: "Profile file (YAML).")
    package var profile: String

    @Option(name: .customLong("for"), help: "Stop the VM after this many seconds.")
    package var seconds: Double?

    @Option(help: "Seconds to wait for the guest to power off before quitting QEMU.")
    package var stopTimeout: Double = 10

    @Option(help: "Keep the VM's runtime files (QMP socket, serial log, transcript) in this folder.")
    package var folder: String?

    @OptionGroup package var accel: AccelOption

    package init() {}

    package func validate() throws {
        if let seconds, seconds <= 0 { throw ValidationError("--for must be more than 0 seconds") }
        if stopTimeout < 0 { throw ValidationError("--stop-timeout must not be negative") }
    }
}

package struct RunCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a VM in the foreground and stream its serial console; Ctrl-C shuts it down.",
        discussion: """
            Starts QEMU from the profile, connects QMP, prints the VM's status and then its serial
            console. Ctrl-C (or --for) presses the ACPI power button, waits up to --stop-timeout for the
            guest to power off, then quits QEMU. Nothing is left behind: no process, no socket.
            """)

    @OptionGroup var arguments: RunArguments

    package init() {}

    package func run() throws { try Helper.local.forward(verb: "run") }
}
