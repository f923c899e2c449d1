import CorralCLI
import CorralModel
import DiskConversion
import Foundation
import Supervisor

/// One disk conversion as `corral convert` and the importers run it: `DiskConverter` in a task, its progress drawn
/// (a bar, or JSON lines), and the first SIGINT or SIGTERM cancelling it (the converter stops qemu-img and removes
/// its temporary file before it returns).
enum ConversionRun {
    /// The converter's outcome, and the signal that cancelled it, if one did.
    static func perform(_ source: DiskSource, to output: String, format: DiskFormat, replace: Bool, label: String,
                        json: Bool, signals: SignalWatcher) async -> (Result<ConversionResult, ConvertError>, Int32?) {
        let display = SharedDisplay(ProgressDisplay(json: json, name: output))
        let work = Task { () async -> Result<ConversionResult, ConvertError> in
            do throws(ConvertError) {
                return .success(try await DiskConverter().convert(
                    source: source, to: output, format: format, replace: replace,
                    progress: { percent in
                        display.show(render: { ProgressBar.render(percent: percent, width: $0) + "  " + label },
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
        return (outcome, caught.value)
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
