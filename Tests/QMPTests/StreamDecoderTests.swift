import JSON
import QMP
import Testing

@Suite("QMP stream decoder")
struct StreamDecoderTests {
    /// Typical QMP traffic, written with the pure-Swift encoder so json-c parses text it did not produce.
    static let messages: [JSONValue] = [
        ["QMP": ["version": ["qemu": ["micro": 0, "minor": 2, "major": 7], "package": "Debian"], "capabilities": ["oob"]]],
        ["return": [:], "id": 1],
        ["return": ["status": "running", "singlestep": false, "running": true], "id": 2],
        ["timestamp": ["seconds": 1_700_000_000, "microseconds": 123_456], "event": "STOP"],
        ["error": ["class": "GenericError", "desc": "Device 'net9' not found"], "id": 3],
        ["return": ["text": .string("ünïcødé ☃ 𝄞, \"quotes\", back\\slash, \u{1}\u{1F} and }{ ][ inside")], "id": 4],
        ["event": "DEVICE_DELETED", "data": ["device": "net1", "path": "/machine/peripheral/net1"],
         "timestamp": ["seconds": 1, "microseconds": 2]],
        ["return": [["name": "a", "value": 1.5], ["name": "b", "value": nil], ["name": "c", "value": -7]], "id": 5],
    ]

    static var stream: [UInt8] {
        Array(messages.map { $0.compactText + "\r\n" }.joined().utf8)
    }

    @Test func wholeStreamInOneRead() throws {
        var decoder = QMPStreamDecoder()
        do {
            let decoded = try decoder.feed(Self.stream)
            #expect(decoded == Self.messages)
        }
        do {
            let inside = decoder.isInsideMessage
            #expect(!inside)
        }
    }

    @Test func oneByteAtATime() throws {
        var decoder = QMPStreamDecoder()
        var decoded: [JSONValue] = []
        for byte in Self.stream {
            decoded += try decoder.feed(CollectionOfOne(byte))
        }
        #expect(decoded == Self.messages)
    }

    @Test("random chunk sizes", arguments: 0..<200)
    func randomChunks(seed: Int) throws {
        var random = SplitMix64(seed: UInt64(seed))
        let stream = Self.stream
        let maximum = seed.isMultiple(of: 2) ? 16 : 512
        var decoder = QMPStreamDecoder()
        var decoded: [JSONValue] = []
        var offset = 0
        while offset < stream.count {
            let size = Int.random(in: 1...maximum, using: &random)
            let end = min(offset + size, stream.count)
            decoded += try decoder.feed(stream[offset..<end])
            offset = end
        }
        #expect(decoded == Self.messages, "seed \(seed)")
    }

    @Test func messageSplitAcrossReads() throws {
        var decoder = QMPStreamDecoder()
        do {
            let decoded = try decoder.feed(Array(#"{"return": {"sta"#.utf8))
            #expect(decoded == [])
        }
        do {
            let inside = decoder.isInsideMessage
            #expect(inside)
        }
        do {
            let decoded = try decoder.feed(Array(##"tus": "paused"}, "id""##.utf8))
            #expect(decoded == [])
        }
        do {
            let decoded = try decoder.feed(Array(#": 9}"#.utf8) + [13, 10])
            #expect(decoded == [["return": ["status": "paused"], "id": 9]])
        }
    }

    @Test func severalMessagesAndOddWhitespaceInOneRead() throws {
        var decoder = QMPStreamDecoder()
        let text = "\r\n{\"a\":1}{\"b\":2}\n\n  {\"c\":3}\r\n\r\n{\"d\":"
        do {
            let decoded = try decoder.feed(Array(text.utf8))
            #expect(decoded == [["a": 1], ["b": 2], ["c": 3]])
        }
        do {
            let decoded = try decoder.feed(Array("4}".utf8))
            #expect(decoded == [["d": 4]])
        }
    }

    @Test func crlfOnlyReadsProduceNothing() throws {
        var decoder = QMPStreamDecoder()
        do {
            let decoded = try decoder.feed([13, 10, 13, 10])
            #expect(decoded == [])
        }
        do {
            let inside = decoder.isInsideMessage
            #expect(!inside)
        }
    }

    @Test func malformedInputThrowsAndResets() throws {
        var decoder = QMPStreamDecoder()
        do {
            let decoded = try decoder.feed(Array(#"{"return": tru"#.utf8))
            #expect(decoded == [])
        }
        do {
            _ = try decoder.feed(Array(#"x}"#.utf8))
            Issue.record("malformed input was accepted")
        } catch {
            guard case .protocolError(let message) = error else {
                Issue.record("expected protocolError, got \(error)")
                return
            }
            #expect(message.contains("malformed JSON"))
            #expect(message.contains(#"`{"return": trux}`"#))
        }
        do {
            let inside = decoder.isInsideMessage
            #expect(!inside)
        }
        do {
            let decoded = try decoder.feed(Array("{\"ok\":true}\r\n".utf8))
            #expect(decoded == [["ok": true]])
        }
    }

    @Test("garbage between messages is an error", arguments: ["x\r\n", "]\r\n", "{\"a\" 1}", "{\"a\":1,}", "{\"a\":nul}"])
    func garbage(text: String) {
        var decoder = QMPStreamDecoder()
        #expect(throws: QMPError.self) { _ = try decoder.feed(Array(text.utf8)) }
        do {
            let inside = decoder.isInsideMessage
            #expect(!inside)
        }
    }

    @Test("invalid UTF-8 becomes U+FFFD, whole or split", arguments: [[0xFF, 0xFE], [0xC3, 0x28], [0xE2, 0x82]])
    func invalidUTF8IsReplaced(bad: [UInt8]) throws {
        let bytes: [UInt8] = Array(#"{"s":""#.utf8) + bad + Array(#""}"#.utf8) + [13, 10]
        let expected: JSONValue = ["s": .string(String(decoding: bad, as: UTF8.self))]
        var whole = QMPStreamDecoder()
        let decoded = try whole.feed(bytes)
        #expect(decoded == [expected])
        var split = QMPStreamDecoder()
        var pieces: [JSONValue] = []
        for byte in bytes { pieces += try split.feed(CollectionOfOne(byte)) }
        #expect(pieces == [expected])
        #expect(expected["s"]?.stringValue?.unicodeScalars.contains("\u{FFFD}") == true)
    }

    @Test func multibyteCharactersSplitAtEveryPosition() throws {
        let message: JSONValue = ["return": "a€b𝄞c☃"]
        let bytes = Array((message.compactText + "\r\n").utf8)
        for cut in 1..<bytes.count {
            var decoder = QMPStreamDecoder()
            let first = try decoder.feed(bytes[..<cut])
            let second = try decoder.feed(bytes[cut...])
            #expect(first + second == [message], "cut at \(cut)")
        }
    }

    /// json-c checks a number's syntax only within one call: resumed at a read boundary, `92` then `-1` passed as
    /// one number. Every cut of a malformed number must fail, and every cut of a valid one must decode the same.
    @Test("a number split at every position", arguments: [
        (#"{"n": 92-23}"#, false), (#"{"n": 1.5e9}"#, true), (#"{"n": -12}"#, true), (#"{"n": 1e+}"#, false),
        (#"{"n": 1.2.3}"#, false), (#"{"n": [1, -0.5E-3]}"#, true), (#"{"n": 0-}"#, false),
    ])
    func numberSplitAtEveryPosition(text: String, valid: Bool) throws {
        let bytes = Array((text + "\r\n").utf8)
        var whole = QMPStreamDecoder()
        let expected = try? whole.feed(bytes)
        #expect((expected != nil) == valid, "whole: \(String(describing: expected))")
        for cut in 1..<bytes.count {
            var decoder = QMPStreamDecoder()
            let decoded = try? (decoder.feed(bytes[..<cut]) + decoder.feed(bytes[cut...]))
            #expect(decoded == expected, "cut at \(cut)")
        }
    }

    @Test func aLongDigitRunInAStringArrivesInManyReads() throws {
        let digits = String(repeating: "1234567890", count: 100_000)  // 1 MB of number bytes inside a string
        let bytes = Array((#"{"return": ""# + digits + #""}"# + "\r\n").utf8)
        var decoder = QMPStreamDecoder()
        var decoded: [JSONValue] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 1000, bytes.count)
            decoded += try decoder.feed(bytes[offset..<end])
            offset = end
        }
        #expect(decoded == [["return": .string(digits)]])
    }

    @Test func oneMebibyteString() throws {
        let big = String(repeating: "0123456789abcdef", count: 65_536)  // 1 MiB
        let message: JSONValue = ["return": ["data": .string(big)], "id": 1]
        let bytes = Array((message.compactText + "\r\n" + #"{"return":{},"id":2}"# + "\r\n").utf8)

        var whole = QMPStreamDecoder()
        do {
            let decoded = try whole.feed(bytes)
            #expect(decoded == [message, ["return": [:], "id": 2]])
        }

        var chunked = QMPStreamDecoder()
        var decoded: [JSONValue] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 4096, bytes.count)
            decoded += try chunked.feed(bytes[offset..<end])
            offset = end
        }
        #expect(decoded.count == 2)
        #expect(decoded.first?["return"]?["data"]?.stringValue?.utf8.count == 1 << 20)
    }

    /// An endless line (a string that never closes) is refused once it passes the limit, instead of growing json-c's
    /// buffer without bound; the decoder is usable again afterwards.
    @Test func anEndlessMessageIsRefusedAtTheLimit() throws {
        var decoder = QMPStreamDecoder()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        var failure: QMPError?
        do {
            _ = try decoder.feed(Array(#"{"return": ""#.utf8))
            for _ in 0..<16 { _ = try decoder.feed(chunk) }
        } catch {
            failure = error
        }
        guard case .protocolError(let message)? = failure else {
            Issue.record("no refusal: \(String(describing: failure))")
            return
        }
        #expect(message.hasPrefix("a QMP message longer than 8 MiB from QEMU"), "\(message)")
        #expect(try decoder.feed(Array(#"{"return": {}}"#.utf8)).count == 1)
    }
}
