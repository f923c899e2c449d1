import CorralModel
import JSON

/// One address qemu-guest-agent reports on a guest interface.
public struct GuestIPAddress: Sendable, Equatable {
    public enum Family: String, Sendable { case ipv4, ipv6 }

    public var address: String
    public var family: Family
    public var prefix: Int

    public init(address: String, family: Family, prefix: Int) {
        self.address = address
        self.family = family
        self.prefix = prefix
    }

    /// 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        switch family {
        case .ipv4: return IPv4Address(address).map { $0.value >> 24 == 127 } ?? false
        case .ipv6: return IPv6Address(address)?.isLoopback ?? false
        }
    }

    /// fe80::/10 (IPv6) and 169.254.0.0/16 (IPv4): only meaningful together with the interface.
    public var isLinkLocal: Bool {
        switch family {
        case .ipv4: return IPv4Address(address).map { $0.value >> 16 == 0xA9FE } ?? false
        case .ipv6: return IPv6Address(address)?.isLinkLocal ?? false
        }
    }
}

/// One guest network interface as qemu-guest-agent's `guest-network-get-interfaces` reports it.
public struct GuestInterface: Sendable, Equatable {
    /// The guest's name for it (`eth0`).
    public var name: String
    /// `hardware-address`, lower case; nil when the agent gave none (or an unusable one).
    public var mac: String?
    public var addresses: [GuestIPAddress]

    public init(name: String, mac: String?, addresses: [GuestIPAddress]) {
        self.name = name
        self.mac = mac
        self.addresses = addresses
    }
}

/// Reads the `return` value of `guest-network-get-interfaces`. The guest is not trusted: the value must be a list;
/// entries or addresses of the wrong shape are skipped, and at most `maxInterfaces` interfaces with at most
/// `maxAddresses` addresses each are kept.
public enum GuestNetworkReply {
    public static let maxInterfaces = 64
    public static let maxAddresses = 32
    /// Longer interface names are not Linux's (15 bytes) nor Windows' friendly names in practice.
    public static let maxNameBytes = 256

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public static func parse(_ value: JSONValue) throws(Problem) -> [GuestInterface] {
        guard let items = value.arrayValue else {
            throw Problem("guest-network-get-interfaces returned \(kind(value)), not a list of interfaces")
        }
        return items.prefix(maxInterfaces).compactMap(interface)
    }

    static func interface(_ item: JSONValue) -> GuestInterface? {
        guard let name = item["name"]?.stringValue, !name.isEmpty, name.utf8.count <= maxNameBytes else { return nil }
        let mac = item["hardware-address"]?.stringValue.flatMap(normalizedMAC)
        let list = item["ip-addresses"]?.arrayValue ?? []
        return GuestInterface(name: name, mac: mac, addresses: list.prefix(maxAddresses).compactMap(address))
    }

    static func address(_ item: JSONValue) -> GuestIPAddress? {
        guard let text = item["ip-address"]?.stringValue,
              let family = item["ip-address-type"]?.stringValue.flatMap(GuestIPAddress.Family.init(rawValue:)),
              let prefix = item["prefix"]?.intValue
        else { return nil }
        switch family {
        case .ipv4:
            guard IPv4Address(text) != nil, (0...32).contains(prefix) else { return nil }
        case .ipv6:
            guard IPv6Address(text) != nil, (0...128).contains(prefix) else { return nil }
        }
        return GuestIPAddress(address: text, family: family, prefix: Int(prefix))
    }

    /// `52:54:00:AB:cd:ef` → `52:54:00:ab:cd:ef`; nil unless six two-digit hex groups.
    static func normalizedMAC(_ text: String) -> String? {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        guard groups.count == 6, groups.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else {
            return nil
        }
        return text.lowercased()
    }

    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}

/// Which addresses `status` shows for a NIC: the guest's own (from its agent), else the managed network's lease.
public enum GuestAddresses {
    public enum Source: String, Sendable { case agent, dhcp }

    /// The addresses on the guest interface whose MAC is `mac`: IPv4 first, then IPv6, each in the guest's order;
    /// loopback and link-local addresses left out (a link-local address is useless without its interface).
    public static func onInterface(withMAC mac: String, in interfaces: [GuestInterface]) -> [String] {
        let wanted = mac.lowercased()
        guard let interface = interfaces.first(where: { $0.mac == wanted }) else { return [] }
        let usable = interface.addresses.filter { !$0.isLoopback && !$0.isLinkLocal }
        return usable.filter { $0.family == .ipv4 }.map(\.address) + usable.filter { $0.family == .ipv6 }.map(\.address)
    }

    /// A NIC's addresses: the agent's when it answered and knows addresses for this MAC, else the DHCP lease.
    /// `agent` is nil when there is no agent or it did not answer.
    public static func forNIC(mac: String, agent: [GuestInterface]?, lease: String?) -> (addresses: [String],
                                                                                       source: Source?) {
        if let agent {
            let reported = onInterface(withMAC: mac, in: agent)
            if !reported.isEmpty { return (reported, .agent) }
        }
        if let lease { return ([lease], .dhcp) }
        return ([], nil)
    }
}
