import CorralModel
import Foundation
import Testing

@Suite struct HostPortTests {
    @Test(arguments: [
        ("192.0.2.2:7070", "192.0.2.2", 7070),
        ("[2001:db8::2]:7070", "2001:db8::2", 7070),
        ("[2001:db8:0:0:0:0:0:2]:1", "2001:db8:0:0:0:0:0:2", 1),
        ("[::1]:65535", "::1", 65535),
        ("[::]:0", "::", 0),
        ("[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80),
        ("[fe80::1%veth0]:7070", "fe80::1%veth0", 7070),
        ("web-2.example:7070", "web-2.example", 7070),
        ("localhost:1", "localhost", 1),
        ("127.0.0.1:0", "127.0.0.1", 0),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let address = try HostPort(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
        // Written back the way it was given: brackets exactly once, around IPv6 only.
        #expect(address.description == text)
        #expect(address.isIPv6 == text.hasPrefix("["))
        #expect(try HostPort(parsing: address.description) == address)
    }

    @Test func rendersIPv6InBracketsOnce() throws {
        let v6 = try HostPort(host: "2001:db8::2", port: 7070)
        #expect(v6.description == "[2001:db8::2]:7070")
        #expect("\(v6)" == "[2001:db8::2]:7070")
        #expect(try v6.with(port: 49152).description == "[2001:db8::2]:49152")
        #expect(try HostPort(host: "192.0.2.2", port: 7070).description == "192.0.2.2:7070")
    }

    @Test(arguments: [
        ("", HostPortError.empty,
         "expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070, got nothing"),
        ("192.0.2.2", .missingPort("192.0.2.2"),
         "'192.0.2.2' has no port: expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070"),
        ("192.0.2.2:", .missingPort("192.0.2.2:"),
         "'192.0.2.2:' has no port: expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070"),
        ("[2001:db8::2]", .missingPort("[2001:db8::2]"),
         "'[2001:db8::2]' has no port: expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070"),
        (":7070", .missingHost(":7070"),
         "':7070' has no host: expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070"),
        ("2001:db8::2:7070", .unbracketedIPv6("2001:db8::2:7070"),
         "'2001:db8::2:7070' has more than one ':': an IPv6 address goes in brackets, e.g. [2001:db8::2]:7070"),
        ("2001:db8::2", .unbracketedIPv6("2001:db8::2"),
         "'2001:db8::2' has more than one ':': an IPv6 address goes in brackets, e.g. [2001:db8::2]:7070"),
        ("[2001:db8::2:7070", .unclosedBracket("[2001:db8::2:7070"),
         "'[2001:db8::2:7070' has no ']' after the IPv6 address: expected [IPV6]:PORT, e.g. [2001:db8::2]:7070"),
        ("[2001:db8::2]7070", .junkAfterBracket("[2001:db8::2]7070"),
         "'[2001:db8::2]7070' needs ':PORT' right after ']': expected [IPV6]:PORT, e.g. [2001:db8::2]:7070"),
        ("[192.0.2.2]:7070", .bracketsAroundNonIPv6("192.0.2.2"),
         "'[192.0.2.2]': only an IPv6 address goes in brackets; write 192.0.2.2:PORT"),
        ("[]:7070", .missingHost("[]:7070"),
         "'[]:7070' has no host: expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070"),
        ("web:http", .badPort("http"), "port 'http' is not a number"),
        ("web:-1", .badPort("-1"), "port '-1' is not a number"),
        ("web:65536", .portOutOfRange("65536"), "port 65536 is outside 0…65535"),
        ("[::1]:99999999999999999999999", .portOutOfRange("99999999999999999999999"),
         "port 99999999999999999999999 is outside 0…65535"),
        ("192.0.2.300:7070", .badIPv4("192.0.2.300"),
         "'192.0.2.300' is not an IPv4 address (four numbers 0…255 separated by dots)"),
        ("[2001:db8:::2]:7070", .badIPv6("2001:db8:::2"), "'2001:db8:::2' is not an IPv6 address"),
        ("[1:2:3:4:5:6:7:8:9]:7070", .badIPv6("1:2:3:4:5:6:7:8:9"), "'1:2:3:4:5:6:7:8:9' is not an IPv6 address"),
        ("[1:2:3:4:5:6:7]:7070", .badIPv6("1:2:3:4:5:6:7"), "'1:2:3:4:5:6:7' is not an IPv6 address"),
        ("[2001:db8::g]:7070", .badIPv6("2001:db8::g"), "'2001:db8::g' is not an IPv6 address"),
        ("web 2:7070", .badName("web 2"),
         "'web 2' is not a host name (letters, digits, '-' and '_', in labels separated by dots)"),
    ])
    func refuses(text: String, error: HostPortError, message: String) {
        #expect(throws: error) { try HostPort(parsing: text) }
        #expect(error.description == message)
    }

    @Test func partsAreCheckedToo() {
        #expect(throws: HostPortError.bracketedHost("[::1]")) { try HostPort(host: "[::1]", port: 1) }
        #expect(HostPortError.bracketedHost("[::1]").description == "'[::1]': give the host without brackets")
        #expect(throws: HostPortError.portOutOfRange("70000")) { try HostPort(host: "192.0.2.2", port: 70000) }
        #expect(throws: HostPortError.portOutOfRange("-1")) { try HostPort(host: "192.0.2.2", port: -1) }
        #expect(throws: HostPortError.missingHost("")) { try HostPort(host: "", port: 1) }
    }

    /// On the wire a `HostPort` is its string form; a malformed one fails decoding with the parse message.
    @Test func codableAsItsStringForm() throws {
        let address: HostPort = "[2001:db8::2]:7070"
        let data = try JSONEncoder().encode(["to": address])
        #expect(String(decoding: data, as: UTF8.self) == #"{"to":"[2001:db8::2]:7070"}"#)
        #expect(try JSONDecoder().decode([String: HostPort].self, from: data) == ["to": address])
        do {
            _ = try JSONDecoder().decode([String: HostPort].self, from: Data(#"{"to":"2001:db8::2:7070"}"#.utf8))
            Issue.record("a bare IPv6 address decoded")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(context.debugDescription == HostPortError.unbracketedIPv6("2001:db8::2:7070").description)
        }
    }
}
