import CorralCore
import Foundation
import JSON
import Testing

/// qemu-guest-agent's `guest-network-get-interfaces` reply → typed interfaces, and which addresses `status` shows per
/// NIC (the agent's, else the DHCP lease).
@Suite struct GuestNetworkTests {
    /// What qemu-ga 7.2 in the test guest answered (user-mode NIC, `corral.ip6=2001:db8::10/64`), statistics cut.
    static let testGuestReply = """
        [{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
          {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}],
          "statistics": {"tx-packets": 0}, "hardware-address": "00:00:00:00:00:00"},
         {"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": 24},
          {"ip-address-type": "ipv6", "ip-address": "2001:db8::10", "prefix": 64},
          {"ip-address-type": "ipv6", "ip-address": "fec0::5054:ff:fe12:3456", "prefix": 64},
          {"ip-address-type": "ipv6", "ip-address": "fe80::5054:ff:fe12:3456", "prefix": 64}],
          "statistics": {"tx-packets": 8}, "hardware-address": "52:54:00:12:34:56"}]
        """

    static func json(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static func parsed(_ text: String) throws -> [GuestInterface] {
        try GuestNetworkReply.parse(try json(text))
    }

    @Test func theTestGuestsReplyBecomesTypedInterfaces() throws {
        let interfaces = try Self.parsed(Self.testGuestReply)
        #expect(interfaces.map(\.name) == ["lo", "eth0"])
        #expect(interfaces[1].mac == "52:54:00:12:34:56")
        #expect(interfaces[1].addresses == [
            GuestIPAddress(address: "10.0.2.15", family: .ipv4, prefix: 24),
            GuestIPAddress(address: "2001:db8::10", family: .ipv6, prefix: 64),
            GuestIPAddress(address: "fec0::5054:ff:fe12:3456", family: .ipv6, prefix: 64),
            GuestIPAddress(address: "fe80::5054:ff:fe12:3456", family: .ipv6, prefix: 64),
        ])
        #expect(interfaces[0].addresses.allSatisfy { $0.isLoopback })
        #expect(interfaces[1].addresses.map(\.isLinkLocal) == [false, false, false, true])
    }

    @Test(arguments: [
        ("{\"name\": \"eth0\"}", "guest-network-get-interfaces returned an object, not a list of interfaces"),
        ("\"eth0\"", "guest-network-get-interfaces returned a string, not a list of interfaces"),
        ("null", "guest-network-get-interfaces returned null, not a list of interfaces"),
        ("42", "guest-network-get-interfaces returned a number, not a list of interfaces"),
    ])
    func aReplyThatIsNoListIsRefused(text: String, message: String) throws {
        #expect(throws: GuestNetworkReply.Problem(message)) { try Self.parsed(text) }
    }

    @Test func entriesOfTheWrongShapeAreSkipped() throws {
        let interfaces = try Self.parsed("""
            [1, "eth0", null, {"name": 7}, {"name": ""}, {"ip-addresses": []},
             {"name": "eth1", "hardware-address": "not a mac", "ip-addresses": "10.0.0.1"},
             {"name": "eth2", "hardware-address": "52:54:00:AA:BB:CC", "ip-addresses": [
               7, {"ip-address": "10.0.0.1"}, {"ip-address": "10.0.0.2", "ip-address-type": "ipv4"},
               {"ip-address": "10.0.0.3", "ip-address-type": "ipv4", "prefix": "24"},
               {"ip-address": "10.0.0.4", "ip-address-type": "ipv4", "prefix": 33},
               {"ip-address": "10.0.0.5", "ip-address-type": "ipv6", "prefix": 24},
               {"ip-address": "2001:db8::1", "ip-address-type": "ipv4", "prefix": 24},
               {"ip-address": "10.0.0.256", "ip-address-type": "ipv4", "prefix": 24},
               {"ip-address": "2001:db8::1::2", "ip-address-type": "ipv6", "prefix": 64},
               {"ip-address": "fe80::1%eth2", "ip-address-type": "ipv6", "prefix": 64},
               {"ip-address": "2001:db8::1", "ip-address-type": "ipv6", "prefix": 129},
               {"ip-address": "2001:db8::1", "ip-address-type": "ipx", "prefix": 64},
               {"ip-address": "10.0.0.9", "ip-address-type": "ipv4", "prefix": 24},
               {"ip-address": "::ffff:10.0.0.9", "ip-address-type": "ipv6", "prefix": 96}]}]
            """)
        #expect(interfaces.map(\.name) == ["eth1", "eth2"])
        #expect(interfaces[0].mac == nil && interfaces[0].addresses.isEmpty)
        #expect(interfaces[1].mac == "52:54:00:aa:bb:cc", "stored lower case")
        #expect(interfaces[1].addresses.map(\.address) == ["10.0.0.9", "::ffff:10.0.0.9"])
    }

    @Test func aHugeReplyIsCutToTheCaps() throws {
        // Just past both caps: the guest is not trusted to send a sane number of either.
        let addresses = (0...GuestNetworkReply.maxAddresses).map {
            JSONValue.object(["ip-address": .string("10.0.0.\($0)"), "ip-address-type": "ipv4", "prefix": 24])
        }
        let one: JSONValue = ["name": "ethX", "ip-addresses": .array(addresses)]
        let interfaces = try GuestNetworkReply.parse(.array(Array(repeating: one, count: GuestNetworkReply.maxInterfaces + 1)))
        #expect(interfaces.count == GuestNetworkReply.maxInterfaces)
        #expect(interfaces.allSatisfy { $0.addresses.count == GuestNetworkReply.maxAddresses })
        let longName = String(repeating: "n", count: GuestNetworkReply.maxNameBytes + 1)
        #expect(try Self.parsed("[{\"name\": \"\(longName)\"}]").isEmpty)
    }

    @Test(arguments: [
        ("::", true), ("::1", true), ("2001:db8::10", true), ("fe80::5054:ff:fe12:3456", true),
        ("1:2:3:4:5:6:7:8", true), ("::ffff:192.0.2.1", true), ("1::", true),
        ("", false), (":", false), (":::", false), ("1:2:3:4:5:6:7:8:9", false), ("1:2:3:4:5:6:7", false),
        ("1::2::3", false), ("12345::", false), ("g::1", false), ("::1%lo", false), ("1:2:3:4:5:6:7::8", false),
        ("::192.0.2.256", false),
    ])
    func ipv6TextIsCheckedStrictly(text: String, valid: Bool) throws {
        let reply = "[{\"name\": \"e\", \"ip-addresses\": [{\"ip-address\": \"\(text)\", \"ip-address-type\": \"ipv6\", \"prefix\": 64}]}]"
        #expect(try Self.parsed(reply)[0].addresses.count == (valid ? 1 : 0), "\(text)")
    }

    // MARK: Which addresses a NIC shows

    @Test func aNICShowsTheAgentsAddressesOnTheInterfaceWithItsMAC() throws {
        let interfaces = try Self.parsed(Self.testGuestReply)
        let (addresses, source) = GuestAddresses.forNIC(mac: "52:54:00:12:34:56", agent: interfaces, lease: "203.0.113.9")
        // IPv4 first; global IPv6 (fec0:: too: not link-local); no loopback, no fe80::.
        #expect(addresses == ["10.0.2.15", "2001:db8::10", "fec0::5054:ff:fe12:3456"])
        #expect(source == .agent)
        #expect(GuestAddresses.onInterface(withMAC: "52:54:00:12:34:56".uppercased(), in: interfaces).count == 3)
    }

    @Test func withoutTheAgentsWordTheLeaseIsShown() throws {
        let interfaces = try Self.parsed(Self.testGuestReply)
        // The agent does not answer.
        #expect(GuestAddresses.forNIC(mac: "52:54:00:12:34:56", agent: nil, lease: "203.0.113.9") == (["203.0.113.9"], .dhcp))
        // The agent answers but has no interface with this MAC (a NIC the guest has not brought up).
        #expect(GuestAddresses.forNIC(mac: "52:54:00:00:00:01", agent: interfaces, lease: "203.0.113.9")
                == (["203.0.113.9"], .dhcp))
        // Only a link-local address on it yet.
        let linkLocal = [GuestInterface(name: "eth0", mac: "52:54:00:00:00:01",
                                        addresses: [GuestIPAddress(address: "fe80::1", family: .ipv6, prefix: 64)])]
        #expect(GuestAddresses.forNIC(mac: "52:54:00:00:00:01", agent: linkLocal, lease: nil) == ([], nil))
        #expect(GuestAddresses.forNIC(mac: "52:54:00:00:00:01", agent: nil, lease: nil) == ([], nil))
    }
}
