/// Pure: RFC 6455 framing for corral's WebSocket client (`corral console --attach`, `corral vnc`). Client frames are
/// masked; server frames are not. Fragmented messages are joined; control frames come out on their own.
package enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
}

package struct WebSocketFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
}

package enum WebSocketEvent: Sendable, Equatable {
    /// A whole text or binary message's bytes.
    case message([UInt8])
    case ping([UInt8])
    case pong
    /// The server's close frame: its code (1005 when it gave none) and reason.
    case close(code: UInt16, reason: String)
}

package enum WebSocketFrames {
    /// The largest message the client accepts (a VNC framebuffer update arrives as many of these).
    package static let maxMessage = 16 << 20

    /// A client frame: FIN set, masked with `mask`.
    package static func encode(_ opcode: WebSocketOpcode, _ payload: [UInt8], mask: [UInt8]) -> [UInt8] {
        precondition(mask.count == 4)
        var frame: [UInt8] = [0x80 | opcode.rawValue]
        let count = payload.count
        if count < 126 {
            frame.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8(truncatingIfNeeded: UInt64(count) >> UInt64(shift))) }
        }
        frame += mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index & 3]) }
        return frame
    }

    /// A close frame's payload: the code, then the reason (at most 123 bytes).
    package static func closePayload(code: UInt16, reason: String) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8.prefix(123))
    }
}

/// Decodes the server's frames from bytes in any chunks.
package struct WebSocketFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    private var fragments: [UInt8] = []
    private var inMessage = false

    package init() {}

    package mutating func feed(_ bytes: [UInt8]) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += bytes
    }

    /// The next event, nil when more bytes are needed.
    package mutating func next() throws(WebSocketFrameError) -> WebSocketEvent? {
        while true {
            let available = buffer.count - start
            guard available >= 2 else { return nil }
            let first = buffer[start], second = buffer[start + 1]
            guard first & 0x70 == 0 else { throw WebSocketFrameError(description: "a frame with reserved bits set") }
            guard second & 0x80 == 0 else { throw WebSocketFrameError(description: "a masked frame from the server") }
            var header = 2
            var length = UInt64(second & 0x7F)
            if length == 126 {
                guard available >= 4 else { return nil }
                length = UInt64(buffer[start + 2]) << 8 | UInt64(buffer[start + 3])
                header = 4
            } else if length == 127 {
                guard available >= 10 else { return nil }
                length = (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(buffer[start + 2 + $1]) }
                header = 10
            }
            guard length <= UInt64(WebSocketFrames.maxMessage) else {
                throw WebSocketFrameError(description: "a frame of \(length) bytes (the most is \(WebSocketFrames.maxMessage))")
            }
            guard available >= header + Int(length) else { return nil }
            let payload = Array(buffer[(start + header)..<(start + header + Int(length))])
            start += header + Int(length)
            let fin = first & 0x80 != 0
            guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else {
                throw WebSocketFrameError(description: "unknown opcode \(first & 0x0F)")
            }
            switch opcode {
            case .ping: return .ping(payload)
            case .pong: return .pong
            case .close:
                let code = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1005
                return .close(code: code, reason: String(decoding: payload.dropFirst(2), as: UTF8.self))
            case .text, .binary:
                guard !inMessage else { throw WebSocketFrameError(description: "a new message inside a fragmented one") }
                if fin { return .message(payload) }
                fragments = payload
                inMessage = true
            case .continuation:
                guard inMessage else { throw WebSocketFrameError(description: "a continuation outside a message") }
                guard fragments.count + payload.count <= WebSocketFrames.maxMessage else {
                    throw WebSocketFrameError(description: "a message larger than \(WebSocketFrames.maxMessage) bytes")
                }
                fragments += payload
                if fin {
                    inMessage = false
                    defer { fragments = [] }
                    return .message(fragments)
                }
            }
        }
    }
}
