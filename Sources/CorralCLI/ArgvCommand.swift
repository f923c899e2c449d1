import ArgumentParser
import Profiles
import QEMUCommand
import Supervisor

struct ArgvCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "argv",
        abstract: "Print the QEMU command line a profile turns into, one argument per line.")

    @Argument(help: "Profile file (YAML).")
    var profile: String

    @Flag(help: "Print one shell-quoted line instead of one argument per line.")
    var shell = false

    @Flag(help: "Skip checks that files (kernel, initrd, disk images) exist.")
    var noFileChecks = false

    @OptionGroup var accel: AccelOption
    @OptionGroup var state: StateDirOption

    func run() async throws {
        let loaded = try ProfileInput.load(profile, checkFiles: !noFileChecks)
        let paths = VMPaths(stateRoot: state.resolved, name: loaded.name)
        let request = StartRequest(config: LiveConfig(profile: loaded), accel: accel.resolve(for: loaded), paths: paths)
        let argv = QEMUArgv.build(request.config, request.runtimeOptions)
        if shell {
            Terminal.out(argv.map(Terminal.shellQuote).joined(separator: " "))
        } else {
            for arg in argv { Terminal.out(arg) }
        }
    }
}
