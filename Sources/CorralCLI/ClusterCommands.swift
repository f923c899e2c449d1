import ArgumentParser
import CorralModel
import CorralWire

/// `corral cluster ls`: the hosts of the etcd cluster this daemon belongs to, and the VMs each owns.
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "The etcd cluster this daemon belongs to (corral daemon --cluster … --host NAME).",
        subcommands: [ClusterListCommand.self])
}

struct ClusterListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the live hosts of the cluster and the VMs each owns.")

    @Flag(help: "Print the report as JSON (docs/api.md, ClusterReport).") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let report = try await DaemonCall.run(socket: socket.resolved) { try await $0.cluster() }
        if json { return try JSONOutput.print(report) }
        for line in ClusterText.lines(report) { Terminal.out(line) }
    }
}

enum ClusterText {
    static func lines(_ report: ClusterReport) -> [String] {
        guard report.enabled else {
            return ["this daemon is not in a cluster (start it with --cluster URLS --host NAME)"]
        }
        var lines = ["host \(report.host ?? "?") (\(report.state ?? "?"))"]
        if let problem = report.problem { return lines + ["cluster unreadable: \(problem)"] }
        let rows = report.hosts.map { host in
            [host.name + (host.name == report.host ? " *" : ""), host.address.isEmpty ? "-" : host.address,
             "\(host.vms.count)", host.vms.isEmpty ? "-" : host.vms.joined(separator: ",")]
        }
        lines += StatusText.aligned([["HOST", "ADDRESS", "VMS", "NAMES"]] + rows)
        if !report.orphans.isEmpty {
            lines.append("owned by no live host: " + report.orphans.joined(separator: ", "))
        }
        return lines
    }
}
