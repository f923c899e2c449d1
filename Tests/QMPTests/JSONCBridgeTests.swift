import CJSONC
import JSON
import Testing

@testable import QMP

@Suite("json-c bridge")
struct JSONCBridgeTests {
    static let samples: [JSONValue] = [
        .null, true, false, 0, -1, .int(Int64.max), .int(Int64.min), 0.1, -1.5e300, 2.5, 1.0,
        "", "plain", "héllo ☃ 𝄞 日本語", "quote \" backslash \\ slash / end",
        .string("controls \u{0}\u{1}\u{8}\u{C}\n\r\t\u{1F}\u{7F} done"),
        [], [1, "two", nil, [3.5, false]], [:],
        ["z": 1, "a": ["nested": ["deeper": [1, 2, ["k": "v"]]]], "m": nil, "é": "ü"],
    ]

    @Test("values survive JSONValue → json-c → JSONValue", arguments: samples)
    func objectRoundTrip(value: JSONValue) {
        let object = value.makeJSONCObject()
        defer { json_object_put(object) }
        #expect(JSONValue(borrowingJSONC: object) == value)
    }

    @Test("values survive the json-c wire text and parser", arguments: samples)
    func wireRoundTrip(value: JSONValue) throws {
        #expect(try JSONValue(parsing: value.wireText) == value)
    }

    /// compactText writes integral doubles as integers ("1"), so those come back as `.int`; leave them out.
    @Test("json-c parses the pure-Swift compact encoder's text", arguments: samples.filter { $0 != 1.0 })
    func agreesWithCompactText(value: JSONValue) throws {
        #expect(try JSONValue(parsing: value.compactText) == value)
    }

    @Test func objectKeyOrderIsKeptBothWays() throws {
        let parsed = try JSONValue(parsing: #"{"zeta": 1, "alpha": 2, "mid": {"b": 1, "a": 2}}"#)
        #expect(parsed.objectValue?.keys == ["zeta", "alpha", "mid"])
        #expect(parsed["mid"]?.objectValue?.keys == ["b", "a"])

        let built: JSONValue = ["execute": "device_add", "arguments": ["driver": "virtio-net-pci", "id": "net1"], "id": 7]
        #expect(built.wireText == #"{"execute":"device_add","arguments":{"driver":"virtio-net-pci","id":"net1"},"id":7}"#)
    }

    @Test func wireTextIsCompactAndEscapesOnlyWhatJSONNeeds() {
        let value: JSONValue = ["path": "/tmp/a b", "text": .string("tab\tnul\u{0}é")]
        #expect(value.wireText == #"{"path":"/tmp/a b","text":"tab\tnul\u0000é"}"#)
    }

    @Test func nonFiniteDoublesBecomeNull() {
        #expect(JSONValue.array([.double(.nan), .double(.infinity)]).wireText == "[null,null]")
    }

    @Test func doublesUseShortestText() {
        #expect(JSONValue.array([0.1, 1.0, 1e-7]).wireText == "[0.1,1.0,1e-07]")
    }

    @Test func integersAboveInt64MaxAreKeptAsDoubles() throws {
        #expect(try JSONValue(parsing: "18446744073709551615") == .double(Double(UInt64.max)))
        #expect(try JSONValue(parsing: "9223372036854775807") == .int(Int64.max))
    }

    @Test func parsesScalarsAndSurroundingWhitespace() throws {
        #expect(try JSONValue(parsing: " null ") == .null)
        #expect(try JSONValue(parsing: "12") == 12)
        #expect(try JSONValue(parsing: "\r\n\"x\"\r\n") == "x")
        #expect(try JSONValue(parsing: #""\ud834\udd1e""#) == "𝄞")
    }

    @Test("malformed documents throw protocolError",
          arguments: ["", "   ", "{", #"{"a":}"#, "[1,]", "{} {}", "tru", "nul", "[1] x", "\u{FEFF}{}"])
    func malformedDocuments(text: String) {
        #expect(throws: QMPError.self) { try JSONValue(parsing: text) }
        do {
            _ = try JSONValue(parsing: text)
        } catch {
            guard case .protocolError(let message) = error else {
                Issue.record("expected protocolError, got \(error)")
                return
            }
            #expect(!message.isEmpty)
        }
    }
}
