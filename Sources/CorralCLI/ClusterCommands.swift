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
        let rows = report.hosts.map { host -> [String] in
            let name: String = host.name + (host.name == report.host ? " *" : "")
            let address: String = host.address.isEmpty ? "-" : host.address
            var vcpus = "-", memory = "-"
            if let capacity = host.capacity {
                vcpus = "\(capacity.committedVCPUs)/\(capacity.cpus)"
                memory = StatusText.bytes(capacity.committedMemoryBytes) + "/" + StatusText.bytes(capacity.memoryBytes)
            }
            let names: String = host.vms.isEmpty ? "-" : host.vms.joined(separator: ",")
            return [name, address, host.draining ? "draining" : "ready", vcpus, memory, "\(host.vms.count)", names]
        }
        lines += StatusText.aligned([["HOST", "ADDRESS", "STATE", "VCPUS", "MEMORY", "VMS", "NAMES"]] + rows)
        for host in report.hosts where !host.moved.isEmpty {
            lines.append("\(host.name) evacuated: " + host.moved.keys.sorted().map { "\($0)→\(host.moved[$0]!)" }
                .joined(separator: ", ") + " (corral host restore \(host.name) brings them back)")
        }
        if !report.orphans.isEmpty {
            lines.append("owned by no live host: " + report.orphans.joined(separator: ", "))
        }
        return lines
    }

    /// One row of `ls --all`.
    struct VMRow: Codable, Equatable {
        var name: String
        /// The owning host; this host's name for a VM defined here without a cluster.
        var host: String
        /// This host's VMs only (another host's state is that host's to tell).
        var state: String?
    }

    /// Every VM the cluster knows (by owner) plus this host's own, sorted by name.
    static func allVMs(local: [VMStatus], report: ClusterReport) -> [VMRow] {
        var rows: [String: VMRow] = [:]
        for host in report.hosts {
            for vm in host.vms { rows[vm] = VMRow(name: vm, host: host.name, state: nil) }
        }
        for vm in report.orphans where rows[vm] == nil { rows[vm] = VMRow(name: vm, host: "-", state: nil) }
        let me = report.host ?? "this host"
        for status in local {
            // Defined here: its state is ours to show (the owner column still says who owns it, if another host does).
            let owner = rows[status.name]?.host ?? me
            rows[status.name] = VMRow(name: status.name, host: owner, state: status.state.rawValue)
        }
        return rows.keys.sorted().compactMap { rows[$0] }
    }

    static func allTable(_ rows: [VMRow]) -> [String] {
        StatusText.aligned([["NAME", "HOST", "STATE"]] + rows.map { [$0.name, $0.host, $0.state ?? "(on its host)"] })
    }
}
