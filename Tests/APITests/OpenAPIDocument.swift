import Foundation
import JSON
import Yams

/// docs/openapi.yaml as a `JSONValue`, with the look-ups OpenAPITests needs.
struct OpenAPIDocument: Sendable {
    let root: JSONValue

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    /// The repository's docs/openapi.yaml (found from this file's path: Tests/APITests/…).
    static var path: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml").path
    }

    static func load() throws -> OpenAPIDocument {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let node = try Yams.compose(yaml: text) else { throw LoadError("\(path) is empty") }
        return OpenAPIDocument(root: try json(node))
    }

    struct LoadError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// YAML → JSON by the scalars' resolved tags: `"200"` stays a string, `200` is a number.
    static func json(_ node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return .bool(node.bool!)
            case Tag.Name.int.rawValue: return .int(Int64(node.int!))
            case Tag.Name.float.rawValue: return .double(node.float!)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping {
                guard let name = key.string else { throw LoadError("a mapping key that is not a scalar: \(key)") }
                guard object[name] == nil else { throw LoadError("duplicate key \(name)") }
                object[name] = try json(value)
            }
            return .object(object)
        case .sequence(let sequence):
            return .array(try sequence.map(json))
        case .alias:
            throw LoadError("YAML aliases are not used in the document")
        }
    }

    // MARK: Look-ups

    var paths: JSONObject { root["paths"]?.objectValue ?? JSONObject() }

    /// `GET /v1/vms/{name}` for every operation.
    var operations: Set<String> {
        var out: Set<String> = []
        for (template, item) in paths {
            for method in Self.methods where item[method] != nil { out.insert("\(method.uppercased()) \(template)") }
        }
        return out
    }

    /// The value a local `$ref` (`#/components/schemas/VMStatus`) points at.
    func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var value = root
        for token in reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = value[key] else { return nil }
            value = next
        }
        return value
    }

    /// Follows `$ref` until a value that is not one (responses and parameters are referenced too).
    func dereferenced(_ value: JSONValue) -> JSONValue? {
        var value = value
        var hops = 0
        while let reference = value["$ref"]?.stringValue {
            guard let next = resolve(reference), hops < 16 else { return nil }
            value = next
            hops += 1
        }
        return value
    }

    /// The path template a concrete path matches: literal segments equal, `{x}` any non-empty segment; the match
    /// with the most literal segments wins.
    func template(for path: String) -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var best: (template: String, literals: Int)?
        for (template, _) in paths {
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count else { continue }
            var literals = 0
            var matches = true
            for (part, segment) in zip(parts, segments) {
                if part.hasPrefix("{") && part.hasSuffix("}") {
                    if segment.isEmpty { matches = false }
                } else if part == segment {
                    literals += 1
                } else {
                    matches = false
                }
            }
            if matches, literals > best?.literals ?? -1 { best = (template, literals) }
        }
        return best?.template
    }

    /// The documented response of an operation for a status (the exact code, else `default`).
    func response(_ method: String, _ template: String, status: Int) -> JSONValue? {
        guard let responses = paths[template]?[method.lowercased()]?["responses"] else { return nil }
        guard let response = responses[String(status)] ?? responses["default"] else { return nil }
        return dereferenced(response)
    }
}

/// A JSON Schema checker for the subset docs/openapi.yaml uses (OpenAPI 3.0 schema objects). A keyword it does
/// not know is a problem in itself, so the document cannot quietly outgrow the checker.
///
/// It also remembers, per object schema, which of its declared properties some checked value carried:
/// `neverSeen` lists documented reply fields no reply produced.
struct SchemaChecker {
    let document: OpenAPIDocument
    private(set) var problems: [String] = []
    private var declared: [String: Set<String>] = [:]
    private var seen: [String: Set<String>] = [:]

    static let annotations: Set<String> = ["description", "example", "format", "title", "deprecated"]
    static let keywords: Set<String> = [
        "$ref", "allOf", "anyOf", "nullable", "type", "enum", "required", "properties", "additionalProperties",
        "items", "pattern", "minLength", "maxLength", "minimum", "maximum", "minProperties", "maxProperties",
    ]

    init(document: OpenAPIDocument) { self.document = document }

    /// Checks `value` against `schema`; `context` (the exchange) starts every message, `path` names the value.
    mutating func check(_ value: JSONValue, _ schema: JSONValue, context: String, path: String = "$") {
        problems += check(value, schema, location: "schema", path: path, record: true).map { "\(context): \($0)" }
    }

    /// `(schema location, property)` pairs declared by a checked object schema that no checked value carried.
    var neverSeen: [String] {
        declared.flatMap { location, names in
            names.subtracting(seen[location] ?? []).map { "\(location): \($0)" }
        }.sorted()
    }

    private mutating func check(_ value: JSONValue, _ schema: JSONValue, location: String, path: String,
                                record: Bool) -> [String] {
        guard let object = schema.objectValue else { return ["\(location): a schema must be an object"] }
        var out: [String] = []
        for (keyword, _) in object where !Self.keywords.contains(keyword) && !Self.annotations.contains(keyword) {
            out.append("\(location): the checker does not know the keyword `\(keyword)`")
        }
        if let reference = object["$ref"]?.stringValue {
            guard let target = document.resolve(reference) else { return out + ["\(location): unresolved $ref \(reference)"] }
            return out + check(value, target, location: reference, path: path, record: record)
        }
        if value.isNull {
            if object["nullable"]?.boolValue == true || object["type"] == nil && object["enum"] == nil { return out }
            return out + ["\(path): null where \(location) allows none"]
        }
        for (index, part) in (object["allOf"]?.arrayValue ?? []).enumerated() {
            out += check(value, part, location: "\(location)/allOf/\(index)", path: path, record: record)
        }
        if let branches = object["anyOf"]?.arrayValue {
            let matching = branches.indices.first { index in
                check(value, branches[index], location: "\(location)/anyOf/\(index)", path: path, record: false).isEmpty
            }
            if matching == nil { out.append("\(path): matches none of \(location)/anyOf") }
        }
        if let type = object["type"]?.stringValue, !Self.has(value, type: type) {
            return out + ["\(path): \(value.compactText) is not of type \(type) (\(location))"]
        }
        if let allowed = object["enum"]?.arrayValue, !allowed.contains(value) {
            out.append("\(path): \(value.compactText) is not one of \(JSONValue.array(allowed).compactText) (\(location))")
        }
        switch value {
        case .string(let text):
            out += checkString(text, object, location: location, path: path)
        case .int, .double:
            let number = value.doubleValue!
            if let minimum = object["minimum"]?.doubleValue, number < minimum {
                out.append("\(path): \(value.compactText) is below the minimum \(minimum) (\(location))")
            }
            if let maximum = object["maximum"]?.doubleValue, number > maximum {
                out.append("\(path): \(value.compactText) is above the maximum \(maximum) (\(location))")
            }
        case .array(let items):
            if let itemSchema = object["items"] {
                for (index, item) in items.enumerated() {
                    out += check(item, itemSchema, location: "\(location)/items", path: "\(path)[\(index)]",
                                 record: record)
                }
            }
        case .object(let members):
            out += checkObject(members, object, location: location, path: path, record: record)
        default:
            break
        }
        return out
    }

    private func checkString(_ text: String, _ schema: JSONObject, location: String, path: String) -> [String] {
        var out: [String] = []
        if let minimum = schema["minLength"]?.intValue.map(Int.init), text.count < minimum {
            out.append("\(path): '\(text)' is shorter than \(minimum) (\(location))")
        }
        if let maximum = schema["maxLength"]?.intValue.map(Int.init), text.count > maximum {
            out.append("\(path): '\(text)' is longer than \(maximum) (\(location))")
        }
        if let pattern = schema["pattern"]?.stringValue {
            do {
                let expression = try NSRegularExpression(pattern: pattern)
                let range = NSRange(text.startIndex..., in: text)
                if expression.firstMatch(in: text, range: range) == nil {
                    out.append("\(path): '\(text)' does not match \(pattern) (\(location))")
                }
            } catch {
                out.append("\(location): pattern \(pattern) does not compile: \(error)")
            }
        }
        return out
    }

    private mutating func checkObject(_ members: JSONObject, _ schema: JSONObject, location: String, path: String,
                                      record: Bool) -> [String] {
        var out: [String] = []
        let properties = schema["properties"]?.objectValue ?? JSONObject()
        for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
            out.append("\(path): the required `\(name)` is missing (\(location))")
        }
        if let minimum = schema["minProperties"]?.intValue.map(Int.init), members.count < minimum {
            out.append("\(path): fewer than \(minimum) keys (\(location))")
        }
        if let maximum = schema["maxProperties"]?.intValue.map(Int.init), members.count > maximum {
            out.append("\(path): more than \(maximum) keys (\(location))")
        }
        if record, !properties.isEmpty {
            declared[location, default: []].formUnion(properties.keys)
        }
        for (name, member) in members {
            if let propertySchema = properties[name] {
                if record { seen[location, default: []].insert(name) }
                out += check(member, propertySchema, location: "\(location)/properties/\(name)",
                             path: "\(path).\(name)", record: record)
                continue
            }
            switch schema["additionalProperties"] {
            case .bool(false)?:
                out.append("\(path): `\(name)` is not a documented property (\(location))")
            case .object?:
                out += check(member, schema["additionalProperties"]!, location: "\(location)/additionalProperties",
                             path: "\(path).\(name)", record: record)
            default:
                break
            }
        }
        return out
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool): return true
        case ("number", .int), ("number", .double): return true
        case ("integer", .int): return true
        case ("integer", .double(let number)): return number.rounded() == number
        default: return false
        }
    }
}
