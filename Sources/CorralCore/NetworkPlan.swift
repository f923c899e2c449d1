import CorralModel

/// Pure: what makes a managed network real, as values the daemon performs (`NetworkManager`): dnsmasq's command
/// line and the nftables ruleset of its NAT.
public enum NetworkPlan {
    /// Where a network's files live under the daemon's state root.
    public struct Files: Sendable, Equatable {
        public var folder: String
        public var spec: String { folder + "/network.json" }
        public var leases: String { folder + "/dnsmasq.leases" }
        public var pidFile: String { folder + "/dnsmasq.pid" }
        public var log: String { folder + "/dnsmasq.log" }
        public var ruleset: String { folder + "/nat.nft" }

        public init(stateRoot: String, name: String) { folder = stateRoot + "/networks/" + name }
    }

    /// dnsmasq serving DHCP (and DNS for the guests) on the network's bridge only, with its own lease file and no
    /// system configuration (`--conf-file=/dev/null`). It stays in the foreground of its own session so the daemon
    /// supervises it, and writes a pid file so a restarted daemon finds it again.
    public static func dnsmasqArguments(_ spec: NetworkSpec, files: Files) -> [String] {
        [
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--strict-order",
            "--bind-interfaces",
            "--except-interface=lo",
            "--interface=\(spec.bridge)",
            "--listen-address=\(spec.gateway)",
            "--dhcp-range=\(spec.dhcpRange.start),\(spec.dhcpRange.end),\(netmask(spec.subnet)),1h",
            "--dhcp-leasefile=\(files.leases)",
            "--dhcp-authoritative",
            "--dhcp-no-override",
            "--dhcp-option=option:router,\(spec.gateway)",
            "--pid-file=\(files.pidFile)",
            "--log-facility=\(files.log)",
        ]
    }

    /// The nftables ruleset for `nft -f`: one table corral owns per network, masquerading what leaves the subnet and
    /// letting the bridge's traffic through the forward hook (replies only back in). Deleting the table undoes it
    /// all; `add table` + `delete table` first makes applying it twice the same as once.
    public static func natRuleset(_ spec: NetworkSpec) -> String {
        let table = NetworkName.nftTable(spec.name)
        return """
            add table ip \(table)
            delete table ip \(table)
            table ip \(table) {
                chain postrouting {
                    type nat hook postrouting priority srcnat; policy accept;
                    ip saddr \(spec.subnet) ip daddr != \(spec.subnet) masquerade
                }
                chain forward {
                    type filter hook forward priority filter; policy accept;
                    iifname "\(spec.bridge)" accept
                    oifname "\(spec.bridge)" ct state established,related accept
                    oifname "\(spec.bridge)" drop
                }
            }

            """
    }

    static func netmask(_ subnet: IPv4Subnet) -> String { IPv4Address(subnet.mask).description }

    /// Why `spec` cannot be created next to `existing` networks and the host's routes: a name or subnet clash.
    public static func conflict(_ spec: NetworkSpec, existing: [NetworkSpec], routes: [IPv4Subnet]) -> String? {
        if existing.contains(where: { $0.name == spec.name }) { return "a network named \(spec.name) already exists" }
        if let other = existing.first(where: { $0.subnet.overlaps(spec.subnet) }) {
            return "--subnet \(spec.subnet) overlaps network \(other.name) (\(other.subnet))"
        }
        if let route = routes.first(where: { $0.overlaps(spec.subnet) }) {
            return "--subnet \(spec.subnet) overlaps a route of this host (\(route)); choose another subnet"
        }
        return nil
    }

    /// `/proc/net/route` → the IPv4 subnets the host routes (not the default route).
    public static func routes(procNetRoute text: String) -> [IPv4Subnet] {
        var out: [IPv4Subnet] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 8, let destination = UInt32(fields[1], radix: 16), let mask = UInt32(fields[7], radix: 16),
                mask != 0
            else { continue }
            // The file holds them in the kernel's (little-endian) byte order.
            let network = destination.byteSwapped
            let prefix = mask.nonzeroBitCount
            out.append(IPv4Subnet(network: IPv4Address(network), prefix: prefix))
        }
        return out
    }
}
