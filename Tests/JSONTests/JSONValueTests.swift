import JSON
import Testing

@Suite struct JSONValueTests {
    @Test func objectsKeepInsertionOrder() {
        let v: JSONValue = ["driver": "virtio-blk-pci", "id": "root", "bus": "hp0"]
        #expect(v.compactText == #"{"driver":"virtio-blk-pci","id":"root","bus":"hp0"}"#)
    }

    @Test func settingAnExistingKeyKeepsItsPlace() {
        var o: JSONObject = ["a": 1, "b": 2]
        o["a"] = 3
        #expect(JSONValue.object(o).compactText == #"{"a":3,"b":2}"#)
        o["a"] = nil
        #expect(JSONValue.object(o).compactText == #"{"b":2}"#)
    }

    @Test func stringsAreEscaped() {
        let v: JSONValue = .string("a\"b\\c\n\u{01},=x y")
        #expect(v.compactText == #""a\"b\\c\n\u0001,=x y""#)
    }

    @Test func subscriptsAndAccessors() {
        let v: JSONValue = ["return": ["status": "running", "running": true, "n": 3, "list": [1, 2.5]]]
        #expect(v["return"]?["status"]?.stringValue == "running")
        #expect(v["return"]?["running"]?.boolValue == true)
        #expect(v["return"]?["n"]?.intValue == 3)
        #expect(v["return"]?["list"]?[1]?.doubleValue == 2.5)
        #expect(v["missing"] == nil)
        #expect(v["return"]?["list"]?[7] == nil)
    }

    @Test func prettyText() {
        let v: JSONValue = ["a": [1, 2], "b": [:], "c": nil]
        #expect(v.prettyText == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": null\n}")
    }

    @Test func objectEqualityIgnoresOrder() {
        let a: JSONValue = ["x": 1, "y": 2]
        let b: JSONValue = ["y": 2, "x": 1]
        #expect(a == b)
    }
}

import Foundation

@Suite struct JSONCodableTests {
    @Test func roundTripsThroughFoundationCoding() throws {
        let value: JSONValue = ["a": [1, 2.5, "x", nil, true], "b": ["c": [:]]]
        let data = try JSONEncoder().encode(value)
        let back = try JSONDecoder().decode(JSONValue.self, from: data)
        #expect(back == value)
    }
}
