/// Reads what `qemu-img convert -p` writes, in whatever chunks the pipe delivers.
///
/// qemu-img redraws its progress in place: `    (12.34/100%)\r`, one after another with carriage returns, and a
/// newline only at the end; its error messages are ordinary lines. The parser splits on `\r` and `\n` (a chunk may
/// end anywhere, even inside a number) and turns each piece into a progress figure or a message line.
public struct QemuImgProgress: Sendable {
    public enum Event: Sendable, Equatable {
        /// Percent done, 0…100.
        case progress(Double)
        /// Any other non-blank line (qemu-img's warnings and errors).
        case message(String)
    }

    /// A line longer than this is cut there and reported as a message: a stuck writer cannot grow the buffer.
    public static let maxLineBytes = 4096

    private var pending: [UInt8] = []

    public init() {}

    /// The events the bytes complete; an unfinished piece waits for the next chunk (or `finish()`).
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") {
                if let event = takePending() { events.append(event) }
            } else {
                pending.append(byte)
                if pending.count >= Self.maxLineBytes, let event = takePending() { events.append(event) }
            }
        }
        return events
    }

    /// At end of stream: the last piece, if it was not terminated.
    public mutating func finish() -> [Event] {
        takePending().map { [$0] } ?? []
    }

    private mutating func takePending() -> Event? {
        defer { pending.removeAll(keepingCapacity: true) }
        let text = Substring(String(decoding: pending, as: UTF8.self)).trimmingSpaces()
        if text.isEmpty { return nil }
        if let percent = Self.percent(in: text) { return .progress(percent) }
        return .message(text)
    }

    /// `(12.34/100%)` → 12.34; nil for anything else. Clamped to 0…100.
    public static func percent(in text: String) -> Double? {
        guard text.hasPrefix("("), text.hasSuffix("/100%)") else { return nil }
        let number = text.dropFirst().dropLast("/100%)".count)
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite
        else { return nil }
        return min(100, max(0, value))
    }

    static func isProgress(_ text: String) -> Bool { percent(in: text) != nil }
}
