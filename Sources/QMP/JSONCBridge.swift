import CJSONC
import JSON

// Layer 1: JSONValue ⇄ json-c.
//
// Ownership rules (json-c reference counting):
//  - every `json_object_new_*` returns an object with one reference owned by the caller;
//  - `json_object_object_add` / `json_object_array_add` take over that reference;
//  - `json_tokener_parse_ex` returns a tree with one reference owned by the caller;
//  - a json-c `null` is a NULL pointer, so "no object" and JSON null are the same thing.
// Every function below either hands its reference to a parent or releases it with `json_object_put`.

extension JSONValue {
    /// Parses one JSON document with json-c. Surrounding whitespace is allowed; anything else after the value is an
    /// error, as is an incomplete document.
    public init(parsing text: String) throws(QMPError) {
        var text = text
        let result: Result<JSONValue, QMPError> = text.withUTF8 { bytes in
            JSONCDocumentParser.parse(bytes)
        }
        self = try result.get()
    }

    /// Compact wire text produced by json-c (`JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE`): no spaces,
    /// `/` left alone, control characters escaped as `\uXXXX`, non-ASCII written as UTF-8.
    public var wireText: String {
        var text = ""
        withWireBytes { text = String(decoding: $0, as: UTF8.self) }
        return text
    }

    /// Calls `body` with the compact json-c encoding of this value. The bytes are only valid inside `body`.
    func withWireBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let object = makeJSONCObject()
        defer { json_object_put(object) }
        var length = 0
        let flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE
        guard let cString = json_object_to_json_string_length(object, flags, &length) else {
            return "null".utf8.withContiguousStorageIfAvailable(body)!
        }
        return cString.withMemoryRebound(to: UInt8.self, capacity: length) { pointer in
            body(UnsafeBufferPointer(start: pointer, count: length))
        }
    }

    /// A new json-c tree for this value with one reference owned by the caller (NULL for `.null`).
    func makeJSONCObject() -> OpaquePointer? {
        switch self {
        case .null:
            return nil
        case .bool(let flag):
            return json_object_new_boolean(flag ? 1 : 0)
        case .int(let number):
            return json_object_new_int64(number)
        case .double(let number):
            // JSON has no NaN or infinities; write null like JSONValue.compactText does.
            guard number.isFinite else { return nil }
            // Give json-c Swift's shortest round-tripping text ("0.1", not "0.10000000000000001").
            return json_object_new_double_s(number, String(number))
        case .string(let string):
            var string = string
            return string.withUTF8 { bytes in
                guard let base = bytes.baseAddress, bytes.count > 0 else { return json_object_new_string("") }
                return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    json_object_new_string_len($0, Int32(clamping: bytes.count))
                }
            }
        case .array(let items):
            let array = json_object_new_array_ext(Int32(clamping: items.count))
            for item in items {
                // json_object_array_add takes over the child's reference.
                json_object_array_add(array, item.makeJSONCObject())
            }
            return array
        case .object(let members):
            let object = json_object_new_object()
            for (key, value) in members {
                // JSONObject keys are unique, so json-c may skip its own duplicate lookup. The key is copied.
                json_object_object_add_ex(object, key, value.makeJSONCObject(), UInt32(JSON_C_OBJECT_ADD_KEY_IS_NEW))
            }
            return object
        }
    }

    /// Converts a json-c tree without taking over its reference (the caller still owns and releases it).
    init(borrowingJSONC object: OpaquePointer?) {
        switch json_object_get_type(object) {
        case json_type_null:
            self = .null
        case json_type_boolean:
            self = .bool(json_object_get_boolean(object) != 0)
        case json_type_int:
            let signed = json_object_get_int64(object)
            if signed == Int64.max {
                // json-c keeps integers above Int64.max as uint64; JSONValue has no UInt64, so keep the magnitude.
                let unsigned = json_object_get_uint64(object)
                self = unsigned > UInt64(Int64.max) ? .double(Double(unsigned)) : .int(signed)
            } else {
                self = .int(signed)
            }
        case json_type_double:
            // json-c reads NaN and Infinity even in strict mode (and 1e400 as infinity); JSON has neither, and
            // JSONValue writes a non-finite double as null: read them as null too (found by the fuzzer).
            let number = json_object_get_double(object)
            self = number.isFinite ? .double(number) : .null
        case json_type_string:
            let length = Int(json_object_get_string_len(object))
            guard let chars = json_object_get_string(object) else { self = .string(""); return }
            self = chars.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                .string(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
            }
        case json_type_array:
            let count = json_object_array_length(object)
            var items: [JSONValue] = []
            items.reserveCapacity(count)
            for index in 0..<count {
                items.append(JSONValue(borrowingJSONC: json_object_array_get_idx(object, index)))
            }
            self = .array(items)
        case json_type_object:
            // json-c objects remember insertion order; the iterator walks it.
            var members = JSONObject()
            var iterator = json_object_iter_begin(object)
            var end = json_object_iter_end(object)
            while json_object_iter_equal(&iterator, &end) == 0 {
                let key = String(cString: json_object_iter_peek_name(&iterator))
                members[key] = JSONValue(borrowingJSONC: json_object_iter_peek_value(&iterator))
                json_object_iter_next(&iterator)
            }
            self = .object(members)
        default:
            self = .null
        }
    }
}

/// A one-shot parse of a complete document (used by `JSONValue(parsing:)`).
enum JSONCDocumentParser {
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, QMPError> {
        guard let tokener = json_tokener_new_ex(QMPStreamDecoder.maximumDepth) else {
            return .failure(.protocolError("json-c could not allocate a tokener"))
        }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, QMPStreamDecoder.tokenerFlags)

        var start = 0
        while start < bytes.count, QMPStreamDecoder.isWhitespace(bytes[start]) { start += 1 }
        var end = bytes.count
        while end > start, QMPStreamDecoder.isWhitespace(bytes[end - 1]) { end -= 1 }
        guard start < end else { return .failure(.protocolError("empty JSON document")) }
        guard end - start < Int(Int32.max) else { return .failure(.protocolError("JSON document larger than 2 GiB")) }

        let base = bytes.baseAddress!.advanced(by: start)
        let count = end - start
        let object = base.withMemoryRebound(to: CChar.self, capacity: count) {
            json_tokener_parse_ex(tokener, $0, Int32(count))
        }
        var error = json_tokener_get_error(tokener)
        var value = JSONValue.null
        var consumed = json_tokener_get_parse_end(tokener)
        if error == json_tokener_continue {
            // A bare number ("12") has no terminator of its own: tell json-c the input ends here.
            var terminator: CChar = 0
            let tail = json_tokener_parse_ex(tokener, &terminator, 1)
            error = json_tokener_get_error(tokener)
            if error == json_tokener_success {
                value = JSONValue(borrowingJSONC: tail)
                json_object_put(tail)
                consumed = count
            }
        } else if error == json_tokener_success {
            value = JSONValue(borrowingJSONC: object)
            json_object_put(object)
        }
        switch error {
        case json_tokener_success:
            guard consumed == count else {
                return .failure(.protocolError("unexpected text after the JSON value at byte \(start + consumed)"))
            }
            return .success(value)
        case json_tokener_continue:
            return .failure(.protocolError("incomplete JSON document"))
        default:
            let reason = String(cString: json_tokener_error_desc(error))
            return .failure(.protocolError("malformed JSON: \(reason) at byte \(start + consumed)"))
        }
    }
}
