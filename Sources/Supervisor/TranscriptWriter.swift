import Foundation
import JSON
import QMP

#if canImport(Glibc)
import Glibc
#endif

/// Appends timestamped lines to a VM's QMP transcript (`qmp.log`): every command sent,
/// every reply and event received. It is the first file an operator reads when a VM misbehaves.
public final class TranscriptWriter: Sendable {
    private let fd: Int32

    public init?(path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    deinit { close(fd) }

    /// One line: `2026-11-25T02:33:53.123Z <direction> <text>`. O_APPEND keeps concurrent lines whole.
    public func append(direction: String, text: String, at date: Date = Date()) {
        let line = "\(TranscriptWriter.timestamp(date)) \(direction) \(text)\n"
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }

    static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let millis = Int((seconds - Double(time)) * 1000)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, millis)
    }
}

/// One line of a QMP transcript read back: what `TranscriptWriter.append` wrote, parsed.
public struct TranscriptLine: Sendable, Equatable {
    public var direction: QMPTranscriptEntry.Direction
    public var message: JSONValue

    /// nil for a line that is not `<timestamp> sent|received|event <one JSON value>`.
    public init?(_ line: String) {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let direction = QMPTranscriptEntry.Direction(rawValue: String(parts[1])),
            let message = try? JSONValue(parsing: String(parts[2]))
        else { return nil }
        self.direction = direction
        self.message = message
    }

    /// The command's name, for a line corral sent.
    public var command: String? { direction == .sent ? message["execute"]?.stringValue : nil }
    /// The event's name, for an event line.
    public var event: String? { direction == .event ? message["event"]?.stringValue : nil }
}
