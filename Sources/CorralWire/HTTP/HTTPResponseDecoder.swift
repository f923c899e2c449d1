/// The status line and headers of an HTTP/1.1 response.
package struct HTTPResponseHead: Sendable, Equatable {
    package var status: Int
    package var reason: String
    /// In arrival order, names as sent.
    package var headers: [(name: String, value: String)]

    package init(status: Int, reason: String, headers: [(name: String, value: String)]) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// The first value of header `name` (case-insensitive).
    package func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.status == rhs.status && lhs.reason == rhs.reason
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}

/// Why a response cannot be read.
package struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// An incremental HTTP/1.1 response decoder: feed it bytes as they arrive (in any chunking), take
/// events out. Pure: no I/O, so it is tested byte by byte.
///
/// Body framing follows RFC 9112 §6.3: no body for 1xx/204/304, `Transfer-Encoding: chunked`,
/// `Content-Length`, otherwise everything until the peer closes. Interim 1xx responses are skipped.
package struct HTTPResponseDecoder: Sendable {
    package enum Event: Sendable, Equatable {
        case head(HTTPResponseHead)
        case body([UInt8])
        /// The response is complete; nothing more is decoded.
        case end
    }

    private enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    /// Heads larger than this are refused (a daemon never sends one).
    package static let maxHeadBytes = 64 * 1024

    private var buffer: [UInt8] = []
    private var start = 0
    private var state = State.head

    package init() {}

    package var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    package mutating func feed(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete event, or nil when more bytes are needed.
    package mutating func next() throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .head:
                guard let line = try takeHeadBlock() else { return nil }
                let head = try Self.parseHead(line)
                if (100..<200).contains(head.status) { continue }
                state = try Self.framing(of: head)
                return .head(head)
            case .fixed(let remaining):
                if remaining == 0 {
                    state = .done
                    return .end
                }
                guard let bytes = take(upTo: remaining) else { return nil }
                state = .fixed(remaining: remaining - bytes.count)
                return .body(bytes)
            case .chunkSize:
                guard let line = try takeLine() else { return nil }
                let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
                let sizeDigits = trimmingOWS(sizeText)
                guard sizeDigits.utf8.allSatisfy(isHexDigit), let size = Int(sizeDigits, radix: 16) else {
                    throw HTTPParseError("bad chunk size \"\(line)\"")
                }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let bytes = take(upTo: remaining) else { return nil }
                state = bytes.count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - bytes.count)
                return .body(bytes)
            case .chunkDataEnd:
                guard let line = try takeLine() else { return nil }
                guard line.isEmpty else { throw HTTPParseError("chunk data longer than its size") }
                state = .chunkSize
            case .trailers:
                guard let line = try takeLine() else { return nil }
                if line.isEmpty {
                    state = .done
                    return .end
                }
            case .untilClose:
                guard let bytes = take(upTo: Int.max) else { return nil }
                return .body(bytes)
            case .done:
                return nil
            }
        }
    }

    /// The peer closed the connection: the end of a body read until close, an error otherwise.
    package mutating func endOfInput() throws(HTTPParseError) -> Event? {
        switch state {
        case .untilClose:
            state = .done
            return .end
        case .done:
            return nil
        case .head:
            throw HTTPParseError(start == buffer.count && buffer.isEmpty
                ? "the connection closed before a response" : "the connection closed inside the response head")
        default:
            throw HTTPParseError("the connection closed before the response body was complete")
        }
    }

    // MARK: Pieces

    private mutating func compact() {
        if start > 4096 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
    }

    /// Up to `limit` buffered body bytes, nil when none are buffered.
    private mutating func take(upTo limit: Int) -> [UInt8]? {
        let available = buffer.count - start
        guard available > 0 else { return nil }
        let count = min(available, limit)
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        compact()
        return bytes
    }

    /// One CRLF-terminated line without its terminator (a bare LF is accepted too).
    private mutating func takeLine() throws(HTTPParseError) -> String? {
        guard let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.count - start > Self.maxHeadBytes { throw HTTPParseError("a line longer than 64 KiB") }
            return nil
        }
        var end = newline
        if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = String(decoding: buffer[start..<end], as: UTF8.self)
        start = newline + 1
        compact()
        return line
    }

    /// The whole head (status line and headers) once its blank line has arrived.
    private mutating func takeHeadBlock() throws(HTTPParseError) -> [String]? {
        var index = start
        var lines: [String] = []
        var lineStart = start
        while index < buffer.count {
            if buffer[index] == UInt8(ascii: "\n") {
                var end = index
                if end > lineStart && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end == lineStart {
                    if lines.isEmpty {
                        // Stray blank lines before a status line are tolerated (RFC 9112 §2.2).
                        lineStart = index + 1
                        index += 1
                        continue
                    }
                    start = index + 1
                    compact()
                    return lines
                }
                lines.append(String(decoding: buffer[lineStart..<end], as: UTF8.self))
                lineStart = index + 1
            }
            index += 1
        }
        if buffer.count - start > Self.maxHeadBytes { throw HTTPParseError("a response head larger than 64 KiB") }
        return nil
    }

    private static func parseHead(_ lines: [String]) throws(HTTPParseError) -> HTTPResponseHead {
        let statusLine = lines[0]
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        // RFC 9110 §15: three digits, 100…999 (`Int` alone would take "+12", "-12" and "002").
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].utf8.count == 3,
              parts[1].utf8.allSatisfy(isDigit),
              let status = Int(parts[1]), status >= 100
        else {
            throw HTTPParseError("not an HTTP/1.x status line: \"\(statusLine.prefix(80))\"")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw HTTPParseError("malformed header line \"\(line.prefix(80))\"")
            }
            let name = String(line[..<colon])
            guard !name.contains(where: { $0 == " " || $0 == "\t" }) else {
                throw HTTPParseError("malformed header name \"\(name.prefix(80))\"")
            }
            let value = trimmingOWS(line[line.index(after: colon)...])
            headers.append((name, value))
        }
        return HTTPResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers)
    }

    private static func framing(of head: HTTPResponseHead) throws(HTTPParseError) -> State {
        if head.status == 204 || head.status == 304 { return .fixed(remaining: 0) }
        if let encoding = head.header("Transfer-Encoding") {
            let codings = encoding.lowercased().split(separator: ",").map { trimmingOWS($0) }
            guard codings.last == "chunked" else { return .untilClose }
            return .chunkSize
        }
        if let length = head.header("Content-Length") {
            // 1*DIGIT (RFC 9110 §8.6): not the "+5" that `Int` would take.
            guard length.utf8.allSatisfy(isDigit), let count = Int(length) else {
                throw HTTPParseError("bad Content-Length \"\(length)\"")
            }
            return .fixed(remaining: count)
        }
        return .untilClose
    }
}

/// `text` without the spaces and tabs HTTP allows around values (no Foundation needed here).
private func trimmingOWS(_ text: some StringProtocol) -> String {
    var slice = Substring(text)
    while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
    return String(slice)
}

private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

private func isHexDigit(_ byte: UInt8) -> Bool {
    isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
}
