/// Managed networks (libvirt's `default` network, Incus's managed bridge): a bridge with the gateway address, a
/// DHCP/DNS server (dnsmasq) and, with NAT, masquerading. Pure values and the rules that derive names and ranges;
/// the daemon's `NetworkManager` makes them real.

/// An IPv4 address as a number, parsed and printed without Foundation.
public struct IPv4Address: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// `198.51.100.7`; nil when it is not four decimal octets.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    public var description: String {
        [24, 16, 8, 0].map { String((value >> UInt32($0)) & 0xFF) }.joined(separator: ".")
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = IPv4Address(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "'\(text)' is not an IPv4 address"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An IPv6 address as its eight 16-bit groups, from RFC 4291 text: groups of 1–4 hex digits, one `::` at most, an
/// IPv4 address as the last two groups. No zone (`%eth0`): `HostPort` strips one first.
public struct IPv6Address: Sendable, Hashable {
    public var groups: [UInt16]

    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        let halves = Self.splitAtDoubleColon(Substring(text))
        guard halves.count <= 2, let head = Self.parts(halves[0]) else { return nil }
        if halves.count == 1 {
            guard head.count == 8 else { return nil }
            groups = head
            return
        }
        guard let tail = Self.parts(halves[1]), head.count + tail.count <= 7 else { return nil }
        groups = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    /// `::1`.
    public var isLoopback: Bool { groups == [0, 0, 0, 0, 0, 0, 0, 1] }
    /// fe80::/10.
    public var isLinkLocal: Bool { groups[0] & 0xFFC0 == 0xFE80 }

    /// Groups separated by single colons; the last may be dotted IPv4 (two groups).
    private static func parts(_ text: Substring) -> [UInt16]? {
        if text.isEmpty { return [] }
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        var out: [UInt16] = []
        for (index, piece) in pieces.enumerated() {
            if index == pieces.count - 1, piece.contains(".") {
                guard let v4 = IPv4Address(String(piece)) else { return nil }
                out += [UInt16(v4.value >> 16), UInt16(v4.value & 0xFFFF)]
            } else {
                guard (1...4).contains(piece.count), piece.allSatisfy({ $0.isASCII && $0.isHexDigit }),
                      let group = UInt16(piece, radix: 16)
                else { return nil }
                out.append(group)
            }
        }
        return out
    }

    /// Splits at every `::` (`a::b` → `a`, `b`; `::` → ``, ``).
    private static func splitAtDoubleColon(_ text: Substring) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(after: index)
            if text[index] == ":", next < text.endIndex, text[next] == ":" {
                out.append(text[start..<index])
                start = text.index(after: next)
                index = start
            } else {
                index = next
            }
        }
        out.append(text[start...])
        return out
    }
}

/// `198.51.100.0/24`: a network address and a prefix length.
public struct IPv4Subnet: Sendable, Hashable, Codable, CustomStringConvertible {
    public var network: IPv4Address
    public var prefix: Int

    /// Parses `ADDRESS/PREFIX`; the address must be the network's own (no host bits), the prefix 8…30 (a network
    /// with room for a gateway and guests).
    public static func parse(_ text: String) -> Result<IPv4Subnet, NetworkProblem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])), let prefix = Int(parts[1]) else {
            return .failure(NetworkProblem("'\(text)' is not a subnet like 198.51.100.0/24"))
        }
        guard (8...30).contains(prefix) else {
            return .failure(NetworkProblem("'\(text)': the prefix must be between 8 and 30, got \(prefix)"))
        }
        let subnet = IPv4Subnet(network: address, prefix: prefix)
        guard address.value & subnet.mask == address.value else {
            return .failure(NetworkProblem("'\(text)' has host bits set: the network is \(IPv4Address(address.value & subnet.mask))/\(prefix)"))
        }
        return .success(subnet)
    }

    public init(network: IPv4Address, prefix: Int) {
        self.network = network
        self.prefix = prefix
    }

    public var mask: UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// The first host address: the gateway (the bridge's own address).
    public var gateway: IPv4Address { IPv4Address(network.value + 1) }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == network.value }

    public func overlaps(_ other: IPv4Subnet) -> Bool {
        let shorter = min(prefix, other.prefix)
        let mask = shorter == 0 ? UInt32(0) : UInt32.max << UInt32(32 - shorter)
        return network.value & mask == other.network.value & mask
    }

    /// The DHCP range when none is given: from the gateway + 1 to the last host address.
    public var defaultDHCPRange: DHCPRange {
        DHCPRange(start: IPv4Address(gateway.value + 1), end: IPv4Address(broadcast.value - 1))
    }

    public var description: String { "\(network)/\(prefix)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch IPv4Subnet.parse(text) {
        case .success(let subnet): self = subnet
        case .failure(let problem):
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// `A-B`: the addresses dnsmasq hands out.
public struct DHCPRange: Sendable, Hashable, Codable, CustomStringConvertible {
    public var start: IPv4Address
    public var end: IPv4Address

    public init(start: IPv4Address, end: IPv4Address) {
        self.start = start
        self.end = end
    }

    /// `198.51.100.100-198.51.100.200`, inside `subnet`, not the gateway, start ≤ end.
    public static func parse(_ text: String, in subnet: IPv4Subnet) -> Result<DHCPRange, NetworkProblem> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = IPv4Address(String(parts[0])), let end = IPv4Address(String(parts[1])) else {
            return .failure(NetworkProblem("'\(text)' is not a range like 198.51.100.100-198.51.100.200"))
        }
        for address in [start, end] where !subnet.contains(address) || address == subnet.network
            || address == subnet.broadcast
        {
            return .failure(NetworkProblem("\(address) is not a host address of \(subnet)"))
        }
        guard start <= end else { return .failure(NetworkProblem("'\(text)': \(start) comes after \(end)")) }
        let gateway = subnet.gateway
        guard !(start <= gateway && gateway <= end) else {
            return .failure(NetworkProblem("'\(text)' includes the gateway \(gateway)"))
        }
        return .success(DHCPRange(start: start, end: end))
    }

    public var description: String { "\(start)-\(end)" }
}

public struct NetworkProblem: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// A managed network's name and what follows from it.
public enum NetworkName {
    public static let rule = "lower-case letters, digits and '-', starting with a letter, at most 12 characters"

    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 12,
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first)
        else { return false }
        return name.utf8.allSatisfy { VMName.isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// The network's bridge: `cn-` + its name (at most 15 bytes).
    public static func bridge(_ name: String) -> String { "cn-" + name }

    /// The nftables table corral owns for the network's NAT (`ip corral-NAME`).
    public static func nftTable(_ name: String) -> String { "corral-" + name }
}

/// `corral network create`'s request.
public struct NetworkCreateRequest: Sendable, Codable, Equatable {
    public var name: String
    /// `198.51.100.0/24`.
    public var subnet: String
    /// Masquerade traffic from the subnet to everything outside it.
    public var nat: Bool
    /// `A-B`; nil: gateway + 1 to the last host address.
    public var dhcpRange: String?

    public init(name: String, subnet: String, nat: Bool = false, dhcpRange: String? = nil) {
        self.name = name
        self.subnet = subnet
        self.nat = nat
        self.dhcpRange = dhcpRange
    }

    /// Every problem at once, each naming its flag.
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if !NetworkName.isValid(name) { problems.append("NAME: '\(name)' is not a network name (\(NetworkName.rule))") }
        switch IPv4Subnet.parse(subnet) {
        case .failure(let problem): problems.append("--subnet: " + problem.message)
        case .success(let parsed):
            if let dhcpRange, case .failure(let problem) = DHCPRange.parse(dhcpRange, in: parsed) {
                problems.append("--dhcp-range: " + problem.message)
            }
        }
        try RequestProblems.check(problems)
    }

    /// The network this request describes (after `validate()`).
    public func resolved() -> NetworkSpec? {
        guard case .success(let subnet) = IPv4Subnet.parse(subnet) else { return nil }
        var range = subnet.defaultDHCPRange
        if let dhcpRange {
            guard case .success(let parsed) = DHCPRange.parse(dhcpRange, in: subnet) else { return nil }
            range = parsed
        }
        return NetworkSpec(name: name, subnet: subnet, nat: nat, dhcpRange: range)
    }
}

/// A managed network as the daemon stores it (`STATE/networks/NAME/network.json`).
public struct NetworkSpec: Sendable, Codable, Equatable {
    public var name: String
    public var subnet: IPv4Subnet
    public var nat: Bool
    public var dhcpRange: DHCPRange

    public init(name: String, subnet: IPv4Subnet, nat: Bool, dhcpRange: DHCPRange) {
        self.name = name
        self.subnet = subnet
        self.nat = nat
        self.dhcpRange = dhcpRange
    }

    public var bridge: String { NetworkName.bridge(name) }
    public var gateway: IPv4Address { subnet.gateway }
}

/// `network ls|show --json`: a network, where it stands, and who uses it.
public struct NetworkInfo: Sendable, Codable, Equatable {
    public var name: String
    public var bridge: String
    public var subnet: String
    public var gateway: String
    public var nat: Bool
    public var dhcpRange: String
    /// dnsmasq's pid while it runs.
    public var dnsmasqPid: Int32?
    /// `up`, or `degraded` with `problem` saying what is missing.
    public var state: String
    public var problem: String?
    /// VMs with a NIC on it.
    public var vms: [String]
    /// Current DHCP leases: MAC → address.
    public var leases: [String: String]

    public init(name: String, bridge: String, subnet: String, gateway: String, nat: Bool, dhcpRange: String,
                dnsmasqPid: Int32?, state: String, problem: String?, vms: [String], leases: [String: String]) {
        self.name = name
        self.bridge = bridge
        self.subnet = subnet
        self.gateway = gateway
        self.nat = nat
        self.dhcpRange = dhcpRange
        self.dnsmasqPid = dnsmasqPid
        self.state = state
        self.problem = problem
        self.vms = vms
        self.leases = leases
    }
}

/// dnsmasq's lease file (`EXPIRY MAC IP HOSTNAME CLIENT-ID` per line): MAC (lower case) → IPv4 address.
public enum DHCPLeases {
    public static func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3, IPv4Address(String(fields[2])) != nil else { continue }
            out[fields[1].lowercased()] = String(fields[2])
        }
        return out
    }
}
