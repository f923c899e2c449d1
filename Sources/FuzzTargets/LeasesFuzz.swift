import CorralModel

/// dnsmasq's lease file (`EXPIRY MAC IP HOSTNAME CLIENT-ID` per line) and the address syntax of managed networks.
/// The input is a lease file; each of its lines is also tried as an address, a subnet, a DHCP range, a host:port
/// and a size.
///
/// Properties: every lease maps a lower-case MAC that some line names to an address that line gives; every value
/// that parses prints as text that parses back to the same value; a subnet holds its gateway and its default DHCP
/// range, and a range parsed in a subnet lies inside it.
enum LeasesFuzz {
    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        let text = String(decoding: data, as: UTF8.self)
        let leases = DHCPLeases.parse(text)
        let lines = text.split(separator: "\n")
        for (mac, address) in leases {
            try require(mac == mac.lowercased(), "a lease's MAC is lower case", mac)
            try require(IPv4Address(address) != nil, "a lease's address is an IPv4 address", address)
            let named = lines.contains { line in
                let fields = line.split(separator: " ")
                return fields.count >= 3 && fields[1].lowercased() == mac && fields[2] == address
            }
            try require(named, "a lease comes from a line of the file", "\(mac) \(address)")
        }

        var subnet = IPv4Subnet(network: IPv4Address(0xC633_6400), prefix: 24)
        for line in lines.prefix(64).map(String.init) {
            if let address = IPv4Address(line) {
                try require(IPv4Address(address.description) == address, "an address prints as itself", line)
            }
            if case .success(let parsed) = IPv4Subnet.parse(line) {
                try checkSubnet(parsed, line)
                subnet = parsed
            }
            if case .success(let range) = DHCPRange.parse(line, in: subnet) {
                try require(subnet.contains(range.start) && subnet.contains(range.end) && range.start <= range.end,
                            "a DHCP range lies in its subnet", "\(line) in \(subnet)")
                try require(DHCPRange.parse(range.description, in: subnet) == .success(range),
                            "a DHCP range prints as itself", line)
            }
            if let hostPort = try? HostPort(parsing: line) {
                try require((try? HostPort(parsing: hostPort.description)) == hostPort, "a host:port prints as itself",
                            "\(line) → \(hostPort.description)")
            }
            if let size = try? ByteSize(parsing: line) {
                try require((try? ByteSize(parsing: size.description)) == size, "a size prints as itself",
                            "\(line) → \(size)")
            }
        }
    }

    static func checkSubnet(_ subnet: IPv4Subnet, _ line: String) throws(FuzzFailure) {
        try require(IPv4Subnet.parse(subnet.description) == .success(subnet), "a subnet prints as itself", line)
        try require(subnet.contains(subnet.gateway), "a subnet holds its gateway", line)
        let range = subnet.defaultDHCPRange
        try require(DHCPRange.parse(range.description, in: subnet) == .success(range),
                    "a subnet's default DHCP range is a valid range in it", "\(line): \(range)")
    }
}
