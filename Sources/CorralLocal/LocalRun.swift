import ArgumentParser
import CorralCLI
import Supervisor

/// `corral run`, done: QEMU in the foreground under a `ForegroundRunner`, the serial console on stdout.
struct LocalRun: AsyncParsableCommand {
    static let configuration = RunCommand.configuration

    @OptionGroup var arguments: RunArguments

    func run() async throws {
        let loaded = try ProfileInput.load(arguments.profile)
        let runner = ForegroundRunner(
            profile: loaded, accel: arguments.accel.resolve(for: loaded), folder: arguments.folder,
            duration: arguments.seconds.map { .milliseconds(Int64($0 * 1000)) },
            stopTimeout: .milliseconds(Int64(arguments.stopTimeout * 1000)),
            output: { Terminal.out($0) })
        do {
            _ = try await runner.run()
        } catch {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}
