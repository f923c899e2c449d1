import ArgumentParser
import CorralModel
import CorralWire

#if canImport(Glibc)
import Glibc
#endif

/// `corral host evacuate NAME`: drain the host and live-migrate its VMs away.
struct HostEvacuateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evacuate",
        abstract: "Mark a cluster host draining (no new VMs) and live-migrate every running VM away.",
        discussion: """
            Each VM goes where `corral migrate --to auto` would send it (admission limits, QEMU version, CPU model for
            cpu.model: host, most memory left, fewest VMs), --parallel at a time. Stopped VMs stay. The host keeps
            draining until `corral host restore NAME`, which brings the moved VMs back. Any host's daemon takes the
            command: it is forwarded to NAME's daemon. Exit codes: 0 every running VM moved, 1 some did not, 2 invalid
            options.
            """)

    @Argument(help: "The host's name in the cluster.") var name: String
    @OptionGroup var flags: HostActionFlags

    func run() async throws {
        try await flags.run(host: name, action: "evacuate")
    }
}

/// `corral host restore NAME`: end the drain and bring the evacuated VMs back.
struct HostRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "End a host's drain and live-migrate the VMs its evacuation moved back to it.",
        discussion: """
            Each VM comes back from wherever it runs now (its owner in the cluster); one that is gone is forgotten.
            A VM whose migration back fails stays listed, so a second restore tries it again. Exit codes: 0 every VM
            is back, 1 some are not, 2 invalid options.
            """)

    @Argument(help: "The host's name in the cluster.") var name: String
    @OptionGroup var flags: HostActionFlags

    func run() async throws {
        try await flags.run(host: name, action: "restore")
    }
}

struct HostActionFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Migrations at a time (1-\(EvacuateRequest.maxParallel), default \(EvacuateRequest.defaultParallel)).",
                               valueName: "N"))
    var parallel: Int?
    @Option(help: ArgumentHelp("Cap each migration's stream, e.g. 100M/s.", valueName: "SIZE/s"))
    var bandwidth: String?
    @Flag(help: "Print the daemon's NDJSON lines (plan, per-VM progress and outcome, summary) as they come.")
    var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        let request = EvacuateRequest(parallel: parallel)
        if let problem = request.problem() { throw ValidationError("--parallel: " + problem) }
    }

    func run(host: String, action: String) async throws {
        var options: MigrationOptions?
        if let bandwidth {
            switch MigrateCommand.parseBandwidth(bandwidth) {
            case .success(let bytes): options = MigrationOptions(bandwidthBytesPerSecond: bytes)
            case .failure(let problems):
                for problem in problems.messages { Terminal.err("error: \(problem)") }
                throw ExitCode(ExitCodeValue.invalid.rawValue)
            }
        }
        let request = EvacuateRequest(parallel: parallel, options: options)
        let display = EvacuationDisplay(mode: json ? .json : (Terminal.stdoutIsTTY ? .live : .lines))
        let summary = try await DaemonCall.run(socket: socket.resolved) { client -> EvacuationSummary in
            defer { display.end() }
            for try await line in try await client.hostAction(host, action, request) {
                display.show(line)
                if case .finished(let summary) = line.update { return summary }
            }
            throw CorralClientError.transport("the daemon ended the \(action) stream without a summary")
        }
        if !json { for line in EvacuationDisplay.summaryLines(summary, action: action) { Terminal.out(line) } }
        if !summary.failed.isEmpty || (action == "evacuate" && summary.stayed.values.contains { !$0.hasPrefix("it is ") }) {
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}

/// Shows an evacuation: on a terminal one line per VM redrawn in place; in a pipe a line per event (progress at
/// most once a second per VM, as the daemon sends it); or the raw NDJSON.
final class EvacuationDisplay {
    enum Mode { case live, lines, json }
    let mode: Mode
    private var order: [String] = []
    private var rows: [String: String] = [:]
    private var drawn = 0

    init(mode: Mode) { self.mode = mode }

    func show(_ line: EvacuationStreamLine) {
        if mode == .json { return Terminal.out(line.text) }
        switch line.update {
        case .plan(let steps):
            for step in steps {
                let row = step.to.map { "→ \($0)  waiting" } ?? "stays: \(step.reason ?? "")"
                if mode == .lines { Terminal.out("\(step.vm): \(row)") }
                order.append(step.vm)
                rows[step.vm] = row
            }
        case .progress(let vm, let progress):
            update(vm, progress.renderBar(width: 20))
        case .moved(let vm, let result):
            update(vm, "moved to \(result.destination)" + (result.downtimeMilliseconds.map { " (downtime \($0) ms)" } ?? ""))
        case .failed(let vm, let error):
            update(vm, "failed: \(error.message)")
        case .finished:
            break
        }
        if mode == .live { redraw() }
    }

    private func update(_ vm: String, _ text: String) {
        if rows[vm] == nil { order.append(vm) }
        rows[vm] = text
        if mode == .lines { Terminal.out("\(vm): \(text)") }
    }

    private func redraw() {
        let width = order.map(\.count).max() ?? 0
        var text = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
        for vm in order {
            text += "\r\u{1B}[K" + vm + String(repeating: " ", count: width - vm.count) + "  " + (rows[vm] ?? "") + "\n"
        }
        drawn = order.count
        ProgressDisplay.writeRaw(text)
    }

    func end() {}

    static func summaryLines(_ summary: EvacuationSummary, action: String) -> [String] {
        var lines = ["\(summary.host): \(action == "evacuate" ? "evacuated" : "restored"): \(summary.moved.count) moved, "
            + "\(summary.failed.count) failed, \(summary.stayed.count) stayed"]
        for vm in summary.failed.keys.sorted() { lines.append("  \(vm) failed: \(summary.failed[vm]!)") }
        for vm in summary.stayed.keys.sorted() { lines.append("  \(vm) stayed: \(summary.stayed[vm]!)") }
        return lines
    }
}
