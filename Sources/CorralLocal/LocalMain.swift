import ArgumentParser
import CorralCLI

/// `corral-local`: what `corral` runs for the commands that work on this host without a daemon. Users type
/// `corral check|argv|run|convert|import|qmp --socket`; `corral` parses the arguments, then execs this with them.
@main
struct CorralLocal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corral-local",
        abstract: "corral's commands that need no daemon (usually run as `corral check|argv|run|convert|import|qmp --socket`).",
        subcommands: [LocalCheck.self, LocalArgv.self, LocalRun.self, LocalQMP.self, LocalConvert.self, LocalImport.self])
}
