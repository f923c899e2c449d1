import ArgumentParser
import CorralModel
import CorralWire

/// `corral network create|ls|show|rm`: managed networks (a bridge, dnsmasq, optional NAT).
struct NetworkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "Managed networks: a bridge with a gateway address, DHCP and DNS (dnsmasq), optionally NAT.",
        discussion: """
            Profiles put a NIC on one with `nics: [{ id: net0, network: NAME }]`; `corral nic add VM --id ID
            --mode network --network NAME` plugs one. Guests get addresses by DHCP, shown by `corral status`.
            """,
        subcommands: [NetworkCreateCommand.self, NetworkListCommand.self, NetworkShowCommand.self,
                      NetworkRemoveCommand.self])
}

struct NetworkCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a managed network (kept and recreated when the daemon starts).")

    @Argument(help: "Network name (\(NetworkName.rule)).") var name: String
    @Option(help: ArgumentHelp("The network's IPv4 subnet; the gateway is its first address.", valueName: "CIDR"))
    var subnet: String
    @Flag(help: "Masquerade traffic from the subnet to everything outside it (nftables).") var nat = false
    @Option(help: ArgumentHelp("Addresses DHCP hands out (default: gateway + 1 to the last host address).",
                               valueName: "A-B"))
    var dhcpRange: String?
    @Flag(help: "Print the network as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    var request: NetworkCreateRequest { NetworkCreateRequest(name: name, subnet: subnet, nat: nat, dhcpRange: dhcpRange) }

    func validate() throws {
        do { try request.validate() } catch { throw error.validationError }
    }

    func run() async throws {
        let request = self.request
        let network = try await DaemonCall.run(socket: socket.resolved) { try await $0.createNetwork(request) }
        if json { return try JSONOutput.print(network) }
        Terminal.out("network \(network.name) created: bridge \(network.bridge), gateway \(network.gateway), "
            + "DHCP \(network.dhcpRange)\(network.nat ? ", NAT" : "")")
    }
}

struct NetworkListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List managed networks.")
    @Flag(help: "Print the networks as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let networks = try await DaemonCall.run(socket: socket.resolved) { try await $0.networks() }
        if json { return try JSONOutput.print(networks) }
        let header = ["NAME", "STATE", "SUBNET", "GATEWAY", "NAT", "BRIDGE", "VMS"]
        let rows = networks.map {
            [$0.name, $0.state, $0.subnet, $0.gateway, $0.nat ? "yes" : "no", $0.bridge,
             $0.vms.isEmpty ? "-" : $0.vms.joined(separator: ",")]
        }
        for line in StatusText.aligned([header] + rows) { Terminal.out(line) }
    }
}

struct NetworkShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one managed network.")
    @Argument(help: "Network name.") var name: String
    @Flag(help: "Print the network as JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let network = try await DaemonCall.run(socket: socket.resolved) { try await $0.network(name) }
        if json { return try JSONOutput.print(network) }
        var lines = [
            "name:     \(network.name)", "state:    \(network.state)\(network.problem.map { " (\($0))" } ?? "")",
            "bridge:   \(network.bridge)", "subnet:   \(network.subnet)", "gateway:  \(network.gateway)",
            "dhcp:     \(network.dhcpRange)", "nat:      \(network.nat ? "yes" : "no")",
            "dnsmasq:  \(network.dnsmasqPid.map { "pid \($0)" } ?? "-")",
            "vms:      \(network.vms.isEmpty ? "-" : network.vms.joined(separator: ", "))",
        ]
        for (mac, address) in network.leases.sorted(by: { $0.value < $1.value }) {
            lines.append("lease:    \(address) \(mac)")
        }
        for line in lines { Terminal.out(line) }
    }
}

struct NetworkRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a managed network (refused while a VM has a NIC on it).")
    @Argument(help: "Network name.") var name: String
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        try await DaemonCall.run(socket: socket.resolved) { try await $0.removeNetwork(name) }
        Terminal.out("network \(name) removed")
    }
}
