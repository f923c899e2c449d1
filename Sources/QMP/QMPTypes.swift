import JSON

#if canImport(Glibc)
import Glibc
#endif

/// QEMU's version as the greeting and `query-version` report it.
public struct QMPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var micro: Int
    /// Distribution package string, e.g. "Debian 1:7.2+dfsg-7+deb12u18"; may be empty.
    public var package: String

    public init(major: Int, minor: Int, micro: Int, package: String = "") {
        self.major = major
        self.minor = minor
        self.micro = micro
        self.package = package
    }

    /// Reads `{"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "…"}`.
    init?(json: JSONValue) {
        guard let qemu = json["qemu"],
            let major = qemu["major"]?.intValue,
            let minor = qemu["minor"]?.intValue,
            let micro = qemu["micro"]?.intValue
        else { return nil }
        self.init(major: Int(major), minor: Int(minor), micro: Int(micro), package: json["package"]?.stringValue ?? "")
    }

    public var description: String {
        package.isEmpty ? "\(major).\(minor).\(micro)" : "\(major).\(minor).\(micro) (\(package))"
    }
}

/// The `{"QMP": {...}}` banner QEMU sends when a client connects.
public struct QMPGreeting: Sendable, Hashable {
    public var version: QMPVersion
    /// Capabilities QEMU offers (e.g. "oob"); corral enables none of them.
    public var capabilities: [String]

    public init(version: QMPVersion, capabilities: [String]) {
        self.version = version
        self.capabilities = capabilities
    }

    init(message: JSONValue) throws(QMPError) {
        guard let banner = message["QMP"] else {
            throw .protocolError("expected the QMP greeting {\"QMP\": …} but got \(message.compactText.qmpTruncated)")
        }
        guard let version = banner["version"].flatMap(QMPVersion.init(json:)) else {
            throw .protocolError("the QMP greeting has no usable version: \(message.compactText.qmpTruncated)")
        }
        let capabilities = banner["capabilities"]?.arrayValue?.compactMap(\.stringValue) ?? []
        self.init(version: version, capabilities: capabilities)
    }
}

/// An asynchronous QMP event such as `STOP`, `RESUME` or `DEVICE_DELETED`.
public struct QMPEvent: Sendable, Hashable {
    public var name: String
    /// The event's `data` member (`{}` when QEMU sends none).
    public var data: JSONValue
    /// When QEMU emitted the event, in seconds since the Unix epoch (from the event's `timestamp`).
    public var timestamp: Double

    public init(name: String, data: JSONValue = .object([:]), timestamp: Double) {
        self.name = name
        self.data = data
        self.timestamp = timestamp
    }

    /// Reads `{"event": "STOP", "data": {...}, "timestamp": {"seconds": s, "microseconds": us}}`.
    init?(message: JSONValue) {
        guard let name = message["event"]?.stringValue else { return nil }
        let seconds = message["timestamp"]?["seconds"]?.doubleValue ?? 0
        let microseconds = message["timestamp"]?["microseconds"]?.doubleValue ?? 0
        self.init(name: name, data: message["data"] ?? .object([:]), timestamp: seconds + microseconds / 1_000_000)
    }
}

/// One line of the QMP conversation, for the per-VM transcript an operator reads first when a VM misbehaves.
public struct QMPTranscriptEntry: Sendable, Hashable {
    public enum Direction: String, Sendable, Hashable {
        /// A command corral sent.
        case sent
        /// The greeting or a reply from QEMU.
        case received
        /// An asynchronous event from QEMU.
        case event
    }

    public var direction: Direction
    /// The message as compact JSON, one line.
    public var text: String
    /// Wall-clock time the line was sent or received, in seconds since the Unix epoch.
    public var time: Double

    public init(direction: Direction, text: String, time: Double) {
        self.direction = direction
        self.text = text
        self.time = time
    }
}

func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1_000_000_000
}

extension String {
    /// At most 200 characters, for error messages that quote what QEMU sent.
    var qmpTruncated: String {
        count <= 200 ? self : String(prefix(200)) + "…"
    }
}
