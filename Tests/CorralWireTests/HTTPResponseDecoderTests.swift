@testable import CorralWire
import Foundation
import Testing

/// The client's HTTP/1.1 response decoder, fed whole, one byte at a time and in random chunks.
@Suite("HTTP response decoder")
struct HTTPResponseDecoderTests {
    /// What a decoder made of `bytes`: the head, the body bytes joined, and whether it saw the end.
    struct Decoded: Equatable {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var ended = false
    }

    static func decode(_ bytes: [UInt8], chunks: [Int]? = nil, closeAtEnd: Bool = false) throws -> Decoded {
        var decoder = HTTPResponseDecoder()
        var result = Decoded()
        func drain() throws {
            while let event = try decoder.next() {
                switch event {
                case .head(let head):
                    #expect(result.head == nil, "one head per response")
                    result.head = head
                case .body(let piece):
                    #expect(!piece.isEmpty, "no empty body events")
                    result.body += piece
                case .end:
                    result.ended = true
                }
            }
        }
        var offset = 0
        for size in chunks ?? [bytes.count] where offset < bytes.count {
            let end = min(bytes.count, offset + size)
            decoder.feed(bytes[offset..<end])
            offset = end
            try drain()
        }
        if offset < bytes.count {
            decoder.feed(bytes[offset...])
            try drain()
        }
        if closeAtEnd, let event = try decoder.endOfInput() {
            #expect(event == .end)
            result.ended = true
        }
        return result
    }

    static let chunked = Array((
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n" + "18;ext=1\r\n{\"event\":\"x\",\"n\":1}\n ☃\r\n" + "0\r\nX-Trailer: t\r\n\r\n").utf8)

    static let chunkedBody = Array("hello{\"event\":\"x\",\"n\":1}\n ☃".utf8)

    @Test func contentLengthBody() throws {
        let bytes = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\nContent-Type: application/json\r\n\r\n{\"error\":\"x\"}".utf8)
        let decoded = try Self.decode(bytes)
        #expect(decoded.head?.status == 404)
        #expect(decoded.head?.reason == "Not Found")
        #expect(decoded.head?.header("content-type") == "application/json")
        #expect(decoded.body == Array("{\"error\":\"x\"}".utf8))
        #expect(decoded.ended)
    }

    @Test func chunkedWithExtensionAndTrailer() throws {
        let decoded = try Self.decode(Self.chunked)
        #expect(decoded.head?.status == 200)
        #expect(decoded.body == Self.chunkedBody)
        #expect(decoded.ended)
    }

    @Test func oneByteAtATime() throws {
        let decoded = try Self.decode(Self.chunked, chunks: Array(repeating: 1, count: Self.chunked.count))
        #expect(decoded.body == Self.chunkedBody && decoded.ended)
    }

    @Test("random chunk sizes", arguments: 0..<100)
    func randomChunks(seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        let sizes = (0..<Self.chunked.count).map { _ in Int.random(in: 1...9, using: &random) }
        let decoded = try Self.decode(Self.chunked, chunks: sizes)
        #expect(decoded.body == Self.chunkedBody && decoded.ended, "seed \(seed)")
    }

    @Test func incompleteChunkedBodyWaitsThenFailsAtClose() throws {
        var decoder = HTTPResponseDecoder()
        decoder.feed(Self.chunked.dropLast(12))
        var events: [HTTPResponseDecoder.Event] = []
        while let event = try decoder.next() { events.append(event) }
        #expect(!events.contains(.end))
        #expect(throws: HTTPParseError("the connection closed before the response body was complete")) {
            try decoder.endOfInput()
        }
    }

    @Test func bodyUntilCloseEndsAtClose() throws {
        let bytes = Array("HTTP/1.0 200 OK\r\n\r\nall of it".utf8)
        let open = try Self.decode(bytes)
        #expect(open.body == Array("all of it".utf8) && !open.ended)
        let closed = try Self.decode(bytes, closeAtEnd: true)
        #expect(closed.ended)
    }

    @Test func noBodyFor204AndInterimResponsesAreSkipped() throws {
        let bytes = Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".utf8)
        let decoded = try Self.decode(bytes)
        #expect(decoded.head?.status == 204)
        #expect(decoded.body.isEmpty && decoded.ended)
    }

    @Test func bareLineFeedsAreAccepted() throws {
        let decoded = try Self.decode(Array("HTTP/1.1 200 OK\nContent-Length: 2\n\nok".utf8))
        #expect(decoded.head?.status == 200 && decoded.body == Array("ok".utf8) && decoded.ended)
    }

    @Test("malformed responses name the problem", arguments: [
        ("SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x status line: \"SSH-2.0-OpenSSH_9.2\""),
        ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line \"no colon here\""),
        ("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "bad Content-Length \"-3\""),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size \"zz\""),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "chunk data longer than its size"),
    ])
    func malformed(text: String, message: String) throws {
        #expect(throws: HTTPParseError(message)) { _ = try Self.decode(Array(text.utf8)) }
    }

    @Test func closedBeforeAnything() throws {
        var decoder = HTTPResponseDecoder()
        #expect(throws: HTTPParseError("the connection closed before a response")) { try decoder.endOfInput() }
    }

    @Test func oversizedHeadIsRefused() throws {
        var decoder = HTTPResponseDecoder()
        decoder.feed(Array("HTTP/1.1 200 OK\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 70_000))
        #expect(throws: HTTPParseError("a response head larger than 64 KiB")) { _ = try decoder.next() }
    }
}

@Suite("HTTP request bytes")
struct HTTPRequestTests {
    @Test func bodyGetsItsLengthAndEveryRequestCloses() {
        let request = HTTPRequest(method: "POST", target: "/v1/vms", headers: [("Content-Type", "application/json")],
                                  body: Array("{}".utf8))
        #expect(String(decoding: request.serialized(host: "localhost"), as: UTF8.self)
            == "POST /v1/vms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            + "Connection: close\r\n\r\n{}")
    }

    @Test func aPostWithoutBodySaysZeroAndAGetSaysNothing() {
        let post = String(decoding: HTTPRequest(method: "POST", target: "/x").serialized(host: "h"), as: UTF8.self)
        let get = String(decoding: HTTPRequest(method: "GET", target: "/x").serialized(host: "h"), as: UTF8.self)
        #expect(post.contains("Content-Length: 0\r\n"))
        #expect(!get.contains("Content-Length"))
    }

    @Test func lineBreaksCannotSplitTheRequest() {
        let request = HTTPRequest(method: "GET", target: "/a\r\nX-Evil: 1", headers: [("Authorization", "Bearer t\nX: y")])
        let text = String(decoding: request.serialized(host: "h"), as: UTF8.self)
        #expect(text.components(separatedBy: "\r\n").count == 6, "\(text)")
        #expect(!text.contains("\nX-Evil") && !text.contains("\nX: y"))
    }

    @Test func namesArePercentEncoded() {
        #expect(CorralClient.percentEncoded("web-1.a_b~") == "web-1.a_b~")
        #expect(CorralClient.percentEncoded("a b/c?d&é") == "a%20b%2Fc%3Fd%26%C3%A9")
    }
}

/// A small deterministic generator for the random-chunk tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
