/// A TCP address as corral's flags and wire values spell it: `HOST:PORT`, an IPv6 address in brackets
/// (`192.0.2.2:7070`, `[2001:db8::2]:7070`, `web-2.example:7070`). Parsed once, where the text comes in
/// (`--to`, `--listen`, a decoded request); everything after that reads `host` and `port`.
///
/// - `host` is never bracketed: it is what `getaddrinfo`, a socket bind and QEMU's `InetSocketAddress` take.
/// - `description` is the written form, brackets (exactly once) around an IPv6 host: what users see in messages
///   and events, what an HTTP `Host` header carries and what follows `tcp:` in a QEMU migration URI.
/// - Ports: the value holds 0…65535. Port 0 means "any free port", which only a listener can use
///   (`corral daemon --listen 127.0.0.1:0`, QEMU's incoming stream); an address to connect to needs 1…65535,
///   which the requests that carry one check (`MigrateRequest.validate()`).
///
/// Encoded as its string form (`"[2001:db8::2]:7070"`); decoding a malformed one fails with the parse message.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// A name, an IPv4 address or an IPv6 address (without brackets; an IPv6 zone as `fe80::1%eth0`).
    public let host: String
    public let port: Int

    /// Every port the value can hold; 0 is "any free port" (listeners only).
    public static let ports = 0...65535
    /// The ports an address to connect to can have.
    public static let connectablePorts = 1...65535

    /// From parts already apart (a bind address, QEMU's reported port): `host` without brackets.
    public init(host: String, port: Int) throws(HostPortError) {
        try Self.checkHost(host)
        guard Self.ports.contains(port) else { throw .portOutOfRange(String(port)) }
        self.host = host
        self.port = port
    }

    /// `HOST:PORT` or `[IPV6]:PORT`. A bare IPv6 address (`2001:db8::2:7070`) is refused: its port cannot be told
    /// from its last group.
    public init(parsing text: String) throws(HostPortError) {
        guard !text.isEmpty else { throw .empty }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .unclosedBracket(text) }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard !rest.isEmpty else { throw .missingPort(text) }
            guard rest.first == ":" else { throw .junkAfterBracket(text) }
            guard !host.isEmpty else { throw .missingHost(text) }
            guard host.contains(":") else { throw .bracketsAroundNonIPv6(String(host)) }
            portText = rest.dropFirst()
        } else {
            let colons = text.filter { $0 == ":" }.count
            guard colons > 0 else { throw .missingPort(text) }
            guard colons == 1 else { throw .unbracketedIPv6(text) }
            let colon = text.firstIndex(of: ":")!
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.isEmpty else { throw .missingHost(text) }
        }
        guard !portText.isEmpty else { throw .missingPort(text) }
        guard portText.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw .badPort(String(portText)) }
        guard let port = Int(portText), Self.ports.contains(port) else { throw .portOutOfRange(String(portText)) }
        try self.init(host: String(host), port: port)
    }

    public var isIPv6: Bool { host.contains(":") }

    /// `192.0.2.2:7070`, `[2001:db8::2]:7070`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The same host with another port (a listener's actual port, QEMU's chosen one).
    public func with(port: Int) throws(HostPortError) -> HostPort { try HostPort(host: host, port: port) }

    // MARK: Host syntax

    static func checkHost(_ host: String) throws(HostPortError) {
        guard !host.isEmpty else { throw .missingHost(host) }
        if host.hasPrefix("[") || host.hasSuffix("]") { throw .bracketedHost(host) }
        if host.contains(":") {
            guard isIPv6Address(host) else { throw .badIPv6(host) }
        } else if host.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) {
            guard isIPv4Address(Substring(host)) else { throw .badIPv4(host) }
        } else {
            guard isHostName(host) else { throw .badName(host) }
        }
    }

    /// Dotted quad, each part 0…255 in at most three digits.
    static func isIPv4Address(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            (1...3).contains(part.count) && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
        }
    }

    /// RFC 4291 text form (`IPv6Address`), then an optional `%zone`.
    static func isIPv6Address(_ text: String) -> Bool {
        var address = text
        if let percent = text.firstIndex(of: "%") {
            let zone = text[text.index(after: percent)...]
            guard !zone.isEmpty, zone.allSatisfy(isNameCharacter) else { return false }
            address = String(text[..<percent])
        }
        return IPv6Address(address) != nil
    }

    /// Labels of letters, digits, `-` and `_`, 1…63 each, separated by dots, 253 characters at most.
    static func isHostName(_ text: String) -> Bool {
        guard text.utf8.count <= 253 else { return false }
        var labels = text.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last?.isEmpty == true { labels.removeLast() }  // a fully qualified `name.`
        return labels.allSatisfy { (1...63).contains($0.utf8.count) && $0.allSatisfy(isNameCharacter) }
    }

    static func isNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_")
    }
}

/// Why a text is not a `HostPort`. The message names the text and shows the expected form; callers put the
/// flag or field in front (`--to: …`).
public enum HostPortError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case missingPort(String)
    case missingHost(String)
    case unbracketedIPv6(String)
    case unclosedBracket(String)
    case junkAfterBracket(String)
    case bracketsAroundNonIPv6(String)
    case bracketedHost(String)
    case badPort(String)
    case portOutOfRange(String)
    case badIPv4(String)
    case badIPv6(String)
    case badName(String)

    static let form = "HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070"

    public var description: String {
        switch self {
        case .empty:
            return "expected \(Self.form), got nothing"
        case .missingPort(let text):
            return "'\(text)' has no port: expected \(Self.form)"
        case .missingHost(let text):
            return "'\(text)' has no host: expected \(Self.form)"
        case .unbracketedIPv6(let text):
            return "'\(text)' has more than one ':': an IPv6 address goes in brackets, e.g. [2001:db8::2]:7070"
        case .unclosedBracket(let text):
            return "'\(text)' has no ']' after the IPv6 address: expected [IPV6]:PORT, e.g. [2001:db8::2]:7070"
        case .junkAfterBracket(let text):
            return "'\(text)' needs ':PORT' right after ']': expected [IPV6]:PORT, e.g. [2001:db8::2]:7070"
        case .bracketsAroundNonIPv6(let host):
            return "'[\(host)]': only an IPv6 address goes in brackets; write \(host):PORT"
        case .bracketedHost(let host):
            return "'\(host)': give the host without brackets"
        case .badPort(let port):
            return "port '\(port)' is not a number"
        case .portOutOfRange(let port):
            return "port \(port) is outside \(HostPort.ports.lowerBound)…\(HostPort.ports.upperBound)"
        case .badIPv4(let host):
            return "'\(host)' is not an IPv4 address (four numbers 0…255 separated by dots)"
        case .badIPv6(let host):
            return "'\(host)' is not an IPv6 address"
        case .badName(let host):
            return "'\(host)' is not a host name (letters, digits, '-' and '_', in labels separated by dots)"
        }
    }
}

extension HostPort: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension HostPort: ExpressibleByStringLiteral {
    /// For addresses written in code and tests (`"192.0.2.2:7070"`). A malformed literal is a programming error
    /// and stops the program; text from users goes through `init(parsing:)`.
    public init(stringLiteral text: String) {
        do {
            try self.init(parsing: text)
        } catch {
            preconditionFailure("HostPort literal \(text): \(error.description)")
        }
    }
}
