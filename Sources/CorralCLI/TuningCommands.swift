import CorralModel
import CorralWire
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct BalloonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balloon",
        abstract: "Set a VM's balloon target: the memory the guest keeps (e.g. 384M).",
        discussion: "Turns automatic ballooning off for this VM; `corral set NAME --auto-balloon on` turns it back on.")

    @Argument(help: "VM name.") var name: String
    @Argument(help: "Memory the guest keeps (e.g. 384M, 1G).") var size: String
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        do { try BalloonRequest(size: size).validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.balloon(name, size: size) }
        if json { return try JSONOutput.print(status) }
        var line = "\(status.name): balloon target \(size)"
        if let now = status.memory.balloonBytes { line += " (guest has \(StatusText.bytes(now)) now)" }
        Terminal.out(line + ", automatic ballooning off")
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show a VM's balloon and the memory statistics its guest reports (virtio-balloon).")

    @Argument(help: "VM name.") var name: String
    @Flag(help: "Print the statistics as JSON (docs/api.md, GuestStats).") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let stats = try await DaemonCall.run(socket: socket.resolved) { try await $0.stats(name) }
        if json { return try JSONOutput.print(stats) }
        for line in TuningText.stats(stats) { Terminal.out(line) }
    }
}

/// `--auto-balloon on|off`.
enum Switch: String, ExpressibleByArgument, CaseIterable {
    case on, off
}

/// `--cpu-quota 150%` or `none`.
struct CPUQuota: ExpressibleByArgument, Equatable {
    /// Percent of one host CPU; 0 = no quota.
    var percent: Int

    init?(argument: String) {
        if argument == "none" {
            percent = 0
            return
        }
        let digits = argument.hasSuffix("%") ? String(argument.dropLast()) : argument
        guard let value = Int(digits), value >= 1 else { return nil }
        percent = value
    }

    static var defaultCompletionKind: CompletionKind { .list(["none", "50%", "100%", "200%"]) }
}

struct SetCommand: AsyncParsableCommand {
    /// `1…10000`
    static let weights = "\(OvercommitLimits.cpuWeight.lowerBound)…\(OvercommitLimits.cpuWeight.upperBound)"

    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change a running VM's overcommit tuning live.",
        discussion: """
            --cpu-weight is the cgroup CPU weight (\(weights), default 100); --cpu-quota caps the VM at P% of one
            host CPU (none removes the cap); --balloon-min is the least memory the automatic policy leaves the
            guest; --memory-shares weighs this VM against others when the policy takes memory back.
            """)

    @Argument(help: "VM name.") var name: String
    @Option(help: "cgroup CPU weight, \(SetCommand.weights).") var cpuWeight: Int?
    @Option(help: ArgumentHelp("CPU cap in percent of one host CPU (e.g. 150%), or none.", valueName: "P%|none"))
    var cpuQuota: CPUQuota?
    @Option(help: "Least memory the automatic balloon leaves the guest (e.g. 256M).") var balloonMin: String?
    @Option(help: "Weight of this VM when the balloon policy shares memory out (at least 1).") var memoryShares: Int?
    @Option(help: "Turn automatic ballooning on or off for this VM.") var autoBalloon: Switch?
    @Flag(help: "Print the VM's status as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    var request: TuningRequest {
        TuningRequest(cpuWeight: cpuWeight, cpuQuotaPercent: cpuQuota?.percent, balloonMin: balloonMin,
                      memoryShares: memoryShares, autoBalloon: autoBalloon.map { $0 == .on })
    }

    func validate() throws {
        do { try request.validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let request = self.request
        let status = try await DaemonCall.run(socket: socket.resolved) { try await $0.setTuning(name, request) }
        if json { return try JSONOutput.print(status) }
        var changes: [String] = []
        if let cpuWeight { changes.append("cpu-weight \(cpuWeight)") }
        if let cpuQuota { changes.append("cpu-quota " + (cpuQuota.percent == 0 ? "none" : "\(cpuQuota.percent)%")) }
        if let balloonMin { changes.append("balloon-min \(balloonMin)") }
        if let memoryShares { changes.append("memory-shares \(memoryShares)") }
        if let autoBalloon { changes.append("auto-balloon \(autoBalloon.rawValue)") }
        Terminal.out("\(status.name): " + changes.joined(separator: ", "))
    }
}

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "This host's capacity and load; in a cluster, evacuate a host and restore it.",
        subcommands: [HostShowCommand.self, HostEvacuateCommand.self, HostRestoreCommand.self],
        defaultSubcommand: HostShowCommand.self)
}

struct HostShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the host's capacity, what the VMs commit, overcommit ratios and limits, KSM and balloons.")

    @Flag(help: "Print the report as JSON (docs/api.md, HostReport).") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let report = try await DaemonCall.run(socket: socket.resolved) { try await $0.host() }
        if json { return try JSONOutput.print(report) }
        for line in TuningText.host(report) { Terminal.out(line) }
    }
}
