import CJSONC
import JSON

/// Layer 2: turns the QMP byte stream into JSON messages.
///
/// One json-c tokener is kept across `feed` calls, so a message may arrive split over any number of reads, and one
/// read may carry several messages: each is returned, in order. Whitespace between messages (QEMU ends each with
/// `\r\n`) is skipped. A message is a JSON object (QMP sends nothing else). Malformed input throws
/// `QMPError.protocolError` and resets the decoder, so the next `feed` starts a fresh message; messages completed
/// earlier in the same failing chunk are dropped with it.
///
/// The decoder owns a json-c tokener, so it is non-copyable: two copies can never share one parser state.
public struct QMPStreamDecoder: ~Copyable {
    static let maximumDepth: Int32 = 256
    /// The longest message accepted (QEMU's largest replies, e.g. `query-named-block-nodes` of many disks, stay far
    /// below): an endless line from a misbehaving QEMU ends the connection instead of growing without bound.
    public static let maximumMessageBytes = 8 << 20
    static let headLength = 48
    /// Strict JSON, several values per stream. Not `JSON_TOKENER_VALIDATE_UTF8`: in json-c 0.16 it rejects valid
    /// text when a multi-byte character falls on a read boundary (found by the one-byte-at-a-time test). Invalid
    /// UTF-8, which QEMU never sends, becomes U+FFFD when strings are converted to Swift.
    static let tokenerFlags = JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS

    private let tokener: UnsafeMutablePointer<json_tokener>
    /// Bytes of the current, unfinished message seen so far (0 between messages).
    private var bytesInMessage = 0
    /// A short prefix of the current message, for error messages.
    private var messageHead: [UInt8] = []
    /// Bytes held back from json-c: a read that ends in a run of bytes that could be part of a number keeps that
    /// run here until a byte that cannot be arrives. json-c checks a number's syntax only within one call (a number
    /// resumed at a read boundary forgets that it has already seen digits, so `92` then `-1` passes as one number),
    /// so it must never see a number split across calls. Only ever non-empty inside a message.
    private var heldBack: [UInt8] = []

    public init() {
        guard let tokener = json_tokener_new_ex(Self.maximumDepth) else {
            fatalError("json-c could not allocate a tokener (out of memory)")
        }
        json_tokener_set_flags(tokener, Self.tokenerFlags)
        self.tokener = tokener
    }

    deinit {
        json_tokener_free(tokener)
    }

    /// True when a message has started but not finished.
    public var isInsideMessage: Bool { bytesInMessage > 0 || !heldBack.isEmpty }

    /// Forgets any partial message.
    public mutating func reset() {
        json_tokener_reset(tokener)
        bytesInMessage = 0
        messageHead.removeAll(keepingCapacity: true)
        heldBack.removeAll()
    }

    /// Feeds the next bytes of the stream and returns every message they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(QMPError) -> [JSONValue] {
        var messages: [JSONValue] = []
        let outcome: QMPError?
        if let direct = bytes.withContiguousStorageIfAvailable({ consume($0, into: &messages) }) {
            outcome = direct
        } else {
            let copy = Array(bytes)
            outcome = copy.withUnsafeBufferPointer { consume($0, into: &messages) }
        }
        if let outcome { throw outcome }
        return messages
    }

    /// Feeds raw memory (the reader thread's buffer) without going through a generic collection.
    mutating func feed(buffer: UnsafeBufferPointer<UInt8>, into messages: inout [JSONValue]) throws(QMPError) {
        if let error = consume(buffer, into: &messages) { throw error }
    }

    /// Hands json-c everything but a trailing run of number bytes, which waits in `heldBack` for the next read. A
    /// run that fills a whole read is only appended, so a long one costs linear time, never a re-parse per read.
    private mutating func consume(_ buffer: UnsafeBufferPointer<UInt8>, into messages: inout [JSONValue]) -> QMPError? {
        guard let base = buffer.baseAddress else { return nil }
        let count = buffer.count
        var run = 0
        while run < count, Self.mayBeInNumber(base[count - 1 - run]) { run += 1 }
        let ready = UnsafeBufferPointer(start: base, count: count - run)
        let tail = UnsafeBufferPointer(start: base + (count - run), count: run)
        if heldBack.isEmpty {
            if let error = decode(ready, into: &messages) { return error }
        } else {
            if run == count {
                heldBack.append(contentsOf: tail)
                return checkSize()
            }
            heldBack.append(contentsOf: ready)
            var joined: [UInt8] = []
            swap(&joined, &heldBack)
            if let error = joined.withUnsafeBufferPointer({ decode($0, into: &messages) }) { return error }
        }
        guard run > 0 else { return nil }
        // Between messages a number byte cannot start one: decode it now, which refuses it as a whole read would.
        guard bytesInMessage > 0 else { return decode(tail, into: &messages) }
        heldBack.append(contentsOf: tail)
        return checkSize()
    }

    private mutating func checkSize() -> QMPError? {
        guard bytesInMessage + heldBack.count > Self.maximumMessageBytes else { return nil }
        let head = Self.printable(messageHead)
        reset()
        return .protocolError("a QMP message longer than \(Self.maximumMessageBytes >> 20) MiB from QEMU "
            + "(starting `\(head)`)")
    }

    /// The bytes json-c takes into a number token.
    private static func mayBeInNumber(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
             UInt8(ascii: "e"), UInt8(ascii: "E"):
            true
        default:
            false
        }
    }

    private mutating func decode(_ buffer: UnsafeBufferPointer<UInt8>, into messages: inout [JSONValue]) -> QMPError? {
        guard let base = buffer.baseAddress else { return nil }
        var offset = 0
        let count = buffer.count
        while offset < count {
            if bytesInMessage == 0 {
                // Between messages: skip the CRLF (or any whitespace) so json-c only ever sees message bytes.
                while offset < count, Self.isWhitespace(base[offset]) { offset += 1 }
                if offset == count { break }
                // QMP sends only objects. A bare number is not QMP, and json-c splits bare numbers differently
                // depending on where the reads end ("-0-0" is one message or two): refuse anything else at its
                // first byte (found by the fuzzer).
                guard base[offset] == UInt8(ascii: "{") else {
                    let head = Self.printable(Array(UnsafeBufferPointer(start: base + offset,
                                                                        count: min(Self.headLength, count - offset))))
                    reset()
                    return .protocolError("a QMP message that is not a JSON object from QEMU (starting `\(head)`)")
                }
                messageHead.removeAll(keepingCapacity: true)
            }
            let length = min(count - offset, Int(Int32.max))
            if messageHead.count < Self.headLength {
                let take = min(Self.headLength - messageHead.count, length)
                messageHead.append(contentsOf: UnsafeBufferPointer(start: base + offset, count: take))
            }
            let object = UnsafeRawPointer(base + offset).withMemoryRebound(to: CChar.self, capacity: length) {
                json_tokener_parse_ex(tokener, $0, Int32(length))
            }
            let error = json_tokener_get_error(tokener)
            if error == json_tokener_success {
                let end = json_tokener_get_parse_end(tokener)
                messages.append(JSONValue(borrowingJSONC: object))
                json_object_put(object)
                offset += end
                reset()
            } else if error == json_tokener_continue {
                offset += length
                bytesInMessage += length
                if let error = checkSize() { return error }
            } else {
                let position = bytesInMessage + json_tokener_get_parse_end(tokener)
                let head = Self.printable(messageHead)
                let reason = String(cString: json_tokener_error_desc(error))
                reset()
                return .protocolError("malformed JSON from QEMU: \(reason) at byte \(position) of the message starting `\(head)`")
            }
        }
        return nil
    }

    /// The bytes as text on one line: control characters escaped, invalid UTF-8 replaced.
    private static func printable(_ bytes: [UInt8]) -> String {
        var text = ""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                text += scalar.escaped(asASCII: true)
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        return text
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
