import ArgumentParser
import CorralCLI
import CorralModel
import DiskConversion
import Foundation
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// `corral convert`, done: `DiskConverter` on the file, its progress drawn, Ctrl-C and SIGTERM cancelling it (which
/// stops qemu-img and removes the temporary file before the error is printed).
struct LocalConvert: AsyncParsableCommand {
    static let configuration = ConvertCommand.configuration

    @OptionGroup var arguments: ConvertArguments

    func run() async throws {
        // Watch for Ctrl-C before anything starts, so an early one is not lost.
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        defer { signals.cancel() }
        let plan: ConvertPlan
        switch arguments.resolved {
        case .success(let resolved): plan = resolved
        case .failure(let problems): throw ValidationError(problems.description)
        }
        let formats = "\(plan.inputFormat.rawValue) → \(plan.outputFormat.rawValue)"
        let (outcome, signal) = await ConversionRun.perform(
            DiskSource.file(path: plan.input, format: plan.inputFormat), to: plan.output, format: plan.outputFormat,
            replace: arguments.force, label: formats, json: arguments.json, signals: signals)

        switch outcome {
        case .success(let result):
            if arguments.json {
                Terminal.out(ConvertStreamLine.result(result).compactText)
            } else {
                Terminal.out(result.summary)
            }
        case .failure(var error):
            // A signal may also have reached qemu-img itself (Ctrl-C goes to the whole process group).
            if let number = signal {
                error = .interrupted(output: plan.output, reason: number == SIGINT ? "interrupted (Ctrl-C)"
                    : "interrupted (signal \(number))")
            }
            if arguments.json {
                Terminal.out(ConvertStreamLine.error(error).compactText)
            } else {
                Terminal.err("error: \(error.description)")
            }
            if let number = signal { throw ExitCode(128 + number) }
            throw ExitCode(error.isInvalidInput ? ExitCodeValue.invalid.rawValue : ExitCodeValue.failure.rawValue)
        }
    }
}
