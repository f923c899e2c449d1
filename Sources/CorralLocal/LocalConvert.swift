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
        let display = SharedDisplay(ProgressDisplay(json: arguments.json, name: plan.output))
        let formats = "\(plan.inputFormat.rawValue) → \(plan.outputFormat.rawValue)"
        let source = DiskSource.file(path: plan.input, format: plan.inputFormat)
        let replace = arguments.force
        let work = Task { () async -> Result<ConversionResult, ConvertError> in
            do throws(ConvertError) {
                return .success(try await DiskConverter().convert(
                    source: source, to: plan.output, format: plan.outputFormat, replace: replace,
                    progress: { percent in
                        display.show(render: { ProgressBar.render(percent: percent, width: $0) + "  " + formats },
                                     json: ConvertStreamLine.progress(percent).compactText)
                    }))
            } catch {
                return .failure(error)
            }
        }
        let caught = CaughtSignal()
        let watcher = Task {
            for await number in signals.stream {
                caught.set(number)
                work.cancel()
                return
            }
        }
        let outcome = await work.value
        watcher.cancel()
        display.end()

        switch outcome {
        case .success(let result):
            if arguments.json {
                Terminal.out(ConvertStreamLine.result(result).compactText)
            } else {
                Terminal.out(result.summary)
            }
        case .failure(var error):
            // A signal may also have reached qemu-img itself (Ctrl-C goes to the whole process group).
            if let number = caught.value {
                error = .interrupted(output: plan.output, reason: number == SIGINT ? "interrupted (Ctrl-C)"
                    : "interrupted (signal \(number))")
            }
            if arguments.json {
                Terminal.out(ConvertStreamLine.error(error).compactText)
            } else {
                Terminal.err("error: \(error.description)")
            }
            if let number = caught.value { throw ExitCode(128 + number) }
            throw ExitCode(error.isInvalidInput ? ExitCodeValue.invalid.rawValue : ExitCodeValue.failure.rawValue)
        }
    }
}

/// The display, drawn from qemu-img's reader thread and ended from the command.
final class SharedDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let display: ProgressDisplay

    init(_ display: ProgressDisplay) { self.display = display }

    func show(render: (Int) -> String, json: String) {
        lock.lock()
        defer { lock.unlock() }
        display.show(render: render, json: json)
    }

    func end() {
        lock.lock()
        defer { lock.unlock() }
        display.end()
    }
}

/// The first SIGINT or SIGTERM seen.
final class CaughtSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var number: Int32?

    func set(_ value: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if number == nil { number = value }
    }

    var value: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return number
    }
}
