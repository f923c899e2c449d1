import ArgumentParser
import CorralCLI
import Profiles
import QEMUCommand
import Supervisor

/// `corral argv`, done: the argv the daemon would launch for the profile, with this host's accelerator.
struct LocalArgv: ParsableCommand {
    static let configuration = ArgvCommand.configuration

    @OptionGroup var arguments: ArgvArguments

    func run() throws {
        let loaded = try ProfileInput.load(arguments.profile, checkFiles: !arguments.noFileChecks)
        let paths = VMPaths(stateRoot: arguments.state.resolved, name: loaded.name)
        let request = StartRequest(config: LiveConfig(profile: loaded.resolvingManagedDisks(in: paths.folder)), accel: arguments.accel.resolve(for: loaded),
                                   paths: paths)
        // With cloudInit, the seed the daemon builds at start, where it puts it.
        let argv = QEMUArgv.build(request.config.withSeed(paths.cloudInitSeed), request.runtimeOptions)
        if arguments.shell {
            Terminal.out(argv.map(Terminal.shellQuote).joined(separator: " "))
        } else {
            for arg in argv { Terminal.out(arg) }
        }
    }
}
