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

enum TreeBuilder {
    /// Parses one file's text. Throws diagnostics for YAML syntax errors and non-scalar keys.
    static func parse(_ text: String, file: SourceFile) throws(ProfileErrors) -> TreeNode? {
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
        let tree = convert(node, file: file, problems: &problems)
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

    private static func convert(_ node: Node, file: SourceFile, problems: inout [Diagnostic]) -> TreeNode {
        switch node {
        case .scalar(let scalar):
            return .scalar(TreeScalar(text: scalar.string, plain: scalar.style == .plain || scalar.style == .any,
                                      location: location(scalar.mark, file)))
        case .sequence(let sequence):
            let items = sequence.map { convert($0, file: file, problems: &problems) }
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
                entries.append(TreeEntry(key: keyScalar.string, keyLocation: keyLocation,
                                         value: convert(value, file: file, problems: &problems)))
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
