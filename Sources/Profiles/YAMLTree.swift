import CorralModel
import Yams

/// A profile file taking part in a load: the top file or one reached through `extends`.
struct SourceFile: Sendable, Equatable {
    /// Name shown in diagnostics.
    var display: String
    /// Absolute, normalized path.
    var absolute: String
    /// 0 for the top file, then 1, 2, … along the `extends` chain; orders diagnostics.
    var order: Int

    var directory: String { PathText.directory(of: absolute) }
}

/// Where a node came from. Nodes keep their own file because `extends` merges several files.
struct Location: Sendable, Equatable {
    var file: SourceFile
    var line: Int
    var column: Int
}

/// The YAML tree the loader works on: Yams' nodes reduced to what a profile needs, each with its file.
indirect enum TreeNode: Sendable {
    case scalar(TreeScalar)
    case map(TreeMap)
    case list(TreeList)

    var location: Location {
        switch self {
        case .scalar(let s): return s.location
        case .map(let m): return m.location
        case .list(let l): return l.location
        }
    }

    /// A plain `~`, `null` or empty scalar: "no value". In an `extends` child it clears the inherited value.
    var isNull: Bool {
        guard case .scalar(let s) = self else { return false }
        return s.isNull
    }

    /// Human name of the node's kind, for "expected X, got Y" messages.
    var kindDescription: String {
        switch self {
        case .scalar(let s): return "'\(s.text)'"
        case .map: return "a mapping"
        case .list: return "a list"
        }
    }
}

struct TreeScalar: Sendable {
    var text: String
    /// Quoted or block scalars are always strings; only plain scalars can be numbers, booleans or null.
    var plain: Bool
    var location: Location

    var isNull: Bool {
        plain && ["", "~", "null", "Null", "NULL"].contains(text)
    }

    var bool: Bool? {
        guard plain else { return nil }
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    var int: Int? {
        guard plain else { return nil }
        return Int(text)
    }
}

struct TreeEntry: Sendable {
    var key: String
    var keyLocation: Location
    var value: TreeNode
}

struct TreeMap: Sendable {
    var entries: [TreeEntry]
    var location: Location

    subscript(key: String) -> TreeEntry? {
        entries.first { $0.key == key }
    }

    /// The value for `key`, nil when absent or null.
    func value(_ key: String) -> TreeNode? {
        guard let entry = self[key], !entry.value.isNull else { return nil }
        return entry.value
    }

    func removing(_ key: String) -> TreeMap {
        TreeMap(entries: entries.filter { $0.key != key }, location: location)
    }
}

struct TreeList: Sendable {
    var items: [TreeNode]
    var location: Location
}

/// What a profile may be at most. Each limit is far above any real profile (a few hundred nodes, a few levels)
/// and far below what hurts the host: a refusal comes in milliseconds, naming the line.
public enum ProfileLimits {
    /// A profile file's size.
    public static let fileBytes = 1 << 20
    /// Nodes after YAML aliases are expanded: aliases are fine, a "billion laughs" is not.
    public static let nodes = 20_000
    /// Nesting of mappings and lists.
    public static let depth = 32
    /// Items in one list.
    public static let listItems = 1_000
    /// Files in an `extends` chain (the top file included).
    public static let extendsChain = 8
}

enum TreeBuilder {
    /// Parses one file's text. Throws diagnostics for YAML syntax errors and non-scalar keys.
    static func parse(_ text: String, file: SourceFile) throws(ProfileErrors) -> TreeNode? {
        if text.utf8.count > ProfileLimits.fileBytes {
            throw ProfileErrors(diagnostics: [Diagnostic(
                file: file.display, line: 0, column: 0, path: "",
                message: "the profile is \(text.utf8.count) bytes; a profile is at most \(ProfileLimits.fileBytes / 1024) KiB")])
        }
        // The YAML library builds its tree recursively: refuse nesting it would choke on before it sees it.
        if let deep = FlowDepth.firstTooDeep(text, limit: ProfileLimits.depth) {
            throw ProfileErrors(diagnostics: [Diagnostic(
                file: file.display, line: deep.line, column: deep.column, path: "",
                message: "nested more than \(ProfileLimits.depth) levels deep; a profile is at most \(ProfileLimits.depth)")])
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ProfileErrors(diagnostics: [syntaxDiagnostic(error, file: file)])
        } catch {
            throw ProfileErrors(diagnostics: [
                Diagnostic(file: file.display, line: 0, column: 0, path: "", message: "invalid YAML: \(error)"),
            ])
        }
        guard let node else { return nil }
        var problems: [Diagnostic] = []
        var budget = Budget()
        guard let tree = convert(node, file: file, problems: &problems, budget: &budget, depth: 0,
                                 usedAt: location(node.mark, file))
        else {
            throw ProfileErrors(diagnostics: [budget.refusal!])
        }
        if !problems.isEmpty { throw ProfileErrors(diagnostics: problems) }
        return tree
    }

    private static func syntaxDiagnostic(_ error: YamlError, file: SourceFile) -> Diagnostic {
        func make(_ mark: Mark, _ message: String) -> Diagnostic {
            Diagnostic(file: file.display, line: mark.line, column: mark.column, path: "", message: message)
        }
        func withContext(_ context: YamlError.Context?, _ problem: String) -> String {
            guard let context, !context.text.isEmpty else { return "invalid YAML: \(problem)" }
            return "invalid YAML: \(problem) (\(context.text) at \(context.mark.line):\(context.mark.column))"
        }
        switch error {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return make(mark, withContext(context, problem))
        case let .duplicatedKeysInMapping(duplicates, context):
            let names = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return make(context.mark, "duplicate key \(names)")
        default:
            return Diagnostic(file: file.display, line: 0, column: 0, path: "",
                              message: "invalid YAML: \(error)")
        }
    }

    private static func location(_ mark: Mark?, _ file: SourceFile) -> Location {
        Location(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// Counts the nodes the conversion makes: the YAML library shares an anchored node between its aliases, this
    /// tree does not, so the count is what the aliases expand to.
    struct Budget {
        var nodes = 0
        var refusal: Diagnostic?
    }

    /// nil once a limit is crossed (`budget.refusal` says which, at `usedAt`: where the expanding value is used, the
    /// line of the alias, since an aliased node keeps its anchor's position).
    private static func convert(_ node: Node, file: SourceFile, problems: inout [Diagnostic], budget: inout Budget,
                                depth: Int, usedAt: Location) -> TreeNode? {
        budget.nodes += 1
        func refuse(_ message: String) -> TreeNode? {
            budget.refusal = Diagnostic(file: file.display, line: usedAt.line, column: usedAt.column, path: "",
                                        message: message)
            return nil
        }
        if budget.nodes > ProfileLimits.nodes {
            return refuse("the profile expands to more than \(ProfileLimits.nodes) values (YAML aliases copy what "
                + "they name); refused")
        }
        if depth > ProfileLimits.depth {
            return refuse("nested more than \(ProfileLimits.depth) levels deep; a profile is at most \(ProfileLimits.depth)")
        }
        switch node {
        case .scalar(let scalar):
            return .scalar(TreeScalar(text: scalar.string, plain: scalar.style == .plain || scalar.style == .any,
                                      location: location(scalar.mark, file)))
        case .sequence(let sequence):
            if sequence.count > ProfileLimits.listItems {
                return refuse("a list of \(sequence.count) items; lists in a profile have at most \(ProfileLimits.listItems)")
            }
            var items: [TreeNode] = []
            for item in sequence {
                guard let converted = convert(item, file: file, problems: &problems, budget: &budget, depth: depth + 1,
                                              usedAt: usedAt)
                else { return nil }
                items.append(converted)
            }
            return .list(TreeList(items: items, location: location(sequence.mark, file)))
        case .mapping(let mapping):
            var entries: [TreeEntry] = []
            for (key, value) in mapping {
                let keyLocation = location(key.mark, file)
                guard case .scalar(let keyScalar) = key else {
                    problems.append(Diagnostic(file: file.display, line: keyLocation.line, column: keyLocation.column,
                                               path: "", message: "keys must be plain names, not \(key.kindName)"))
                    continue
                }
                // A key of an anchored mapping reached through an alias sits above the alias: keep the use site.
                let use = keyLocation.line >= usedAt.line ? keyLocation : usedAt
                guard let converted = convert(value, file: file, problems: &problems, budget: &budget,
                                              depth: depth + 1, usedAt: use)
                else { return nil }
                entries.append(TreeEntry(key: keyScalar.string, keyLocation: keyLocation, value: converted))
            }
            return .map(TreeMap(entries: entries, location: location(mapping.mark, file)))
        case .alias(let alias):
            // Yams resolves aliases while composing; this is only reached for a dangling one.
            let at = location(alias.mark, file)
            problems.append(Diagnostic(file: file.display, line: at.line, column: at.column, path: "",
                                       message: "unresolved alias"))
            return .scalar(TreeScalar(text: "", plain: true, location: at))
        }
    }

    /// `extends` semantics: maps merge key by key (recursively), everything else in `child` replaces `base`.
    static func merge(base: TreeNode, child: TreeNode) -> TreeNode {
        guard case .map(let baseMap) = base, case .map(let childMap) = child else { return child }
        var entries = baseMap.entries
        for entry in childMap.entries {
            if let index = entries.firstIndex(where: { $0.key == entry.key }) {
                entries[index] = TreeEntry(key: entry.key, keyLocation: entry.keyLocation,
                                           value: merge(base: entries[index].value, child: entry.value))
            } else {
                entries.append(entry)
            }
        }
        return .map(TreeMap(entries: entries, location: childMap.location))
    }

    /// Rewrites shorthand forms into their mapping form so that they merge like the long form:
    /// `memory: 1G` → `{size: 1G}`, `cpu: 2` → `{count: 2}`, `hotplug: 4` → `{slots: 4}`,
    /// `memory.balloon: true` → `{}`. Scalars that are not valid shorthand are left for the decoder to report.
    static func expandShorthands(_ node: TreeNode) -> TreeNode {
        guard case .map(var root) = node else { return node }
        for index in root.entries.indices {
            let entry = root.entries[index]
            switch entry.key {
            case "memory":
                if case .scalar(let s) = entry.value, !s.isNull, (try? ByteSize(parsing: s.text)) != nil {
                    root.entries[index].value = wrap(s, as: "size")
                } else if case .map(var memory) = entry.value {
                    if let balloonIndex = memory.entries.firstIndex(where: { $0.key == "balloon" }),
                       case .scalar(let b) = memory.entries[balloonIndex].value, b.bool == true {
                        memory.entries[balloonIndex].value = .map(TreeMap(entries: [], location: b.location))
                    }
                    root.entries[index].value = .map(memory)
                }
            case "cpu":
                if case .scalar(let s) = entry.value, s.int != nil {
                    root.entries[index].value = wrap(s, as: "count")
                }
            case "hotplug":
                if case .scalar(let s) = entry.value, s.int != nil {
                    root.entries[index].value = wrap(s, as: "slots")
                }
            default:
                break
            }
        }
        return .map(root)
    }

    private static func wrap(_ scalar: TreeScalar, as key: String) -> TreeNode {
        .map(TreeMap(entries: [TreeEntry(key: key, keyLocation: scalar.location, value: .scalar(scalar))],
                     location: scalar.location))
    }
}

extension Node {
    fileprivate var kindName: String {
        switch self {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}

/// Flow-style nesting (`[[[…` and `{{{…`) counted on the text, outside quotes and comments, before the YAML library
/// builds anything (it recurses once per level). Block nesting needs indentation, which the file size bounds.
enum FlowDepth {
    static func firstTooDeep(_ text: String, limit: Int) -> (line: Int, column: Int)? {
        var depth = 0
        var line = 1
        var column = 0
        var quote: UInt8?
        var comment = false
        for byte in text.utf8 {
            column += 1
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 0
                comment = false
                continue
            }
            if comment { continue }
            if let open = quote {
                if byte == open { quote = nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
            case UInt8(ascii: "#"): comment = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return (line, column) }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
        }
        return nil
    }
}
