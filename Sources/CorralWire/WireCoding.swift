#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One JSON configuration for every body the API reads or writes, daemon and client alike.
package enum WireCoding {
    package static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    package static func decoder() -> JSONDecoder { JSONDecoder() }

    package static func encode(_ value: some Encodable) throws -> Data {
        try encoder().encode(value)
    }

    /// Decodes a request or response body; a failure names the field and the problem.
    package static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(BodyError) -> T {
        do {
            return try decoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw BodyError(message: describe(error))
        } catch {
            throw BodyError(message: "malformed JSON body: \(error)")
        }
    }

    /// "missing field `command`", "field `timeoutSeconds`: expected a number", …
    package static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
                .joined().drop(while: { $0 == "." }).description
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            return "missing field `\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)`"
        case .typeMismatch(let type, let context):
            let at = path(context.codingPath)
            return at.isEmpty
                ? "malformed JSON body: expected \(describe(type))"
                : "field `\(at)`: expected \(describe(type))"
        case .valueNotFound(let type, let context):
            let at = path(context.codingPath)
            return at.isEmpty ? "empty JSON body" : "field `\(at)`: expected \(describe(type)), found null"
        case .dataCorrupted(let context):
            let at = path(context.codingPath)
            return at.isEmpty
                ? "malformed JSON body: \(context.debugDescription)" : "field `\(at)`: \(context.debugDescription)"
        @unknown default:
            return "malformed JSON body"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type: return "an integer"
        case is [Any].Type: return "an array"
        case is [String: Any].Type: return "an object"
        default: return "\(type)"
        }
    }
}

/// A request or response body that does not decode.
package struct BodyError: Error, Sendable {
    package var message: String
    package init(message: String) { self.message = message }
}
