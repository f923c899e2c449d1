import CorralModel
import Profiles

/// How many devices an import carries at most: far above a real VM, and below what the machine's PCI slots hold.
public enum ImportLimits {
    public static let disks = 24
    public static let nics = 16
    public static let hostdevs = 16
}

/// State shared by the importers while they map one document: the notes so far, where each profile value came from
/// (for validation errors), and the bounds.
struct Mapping {
    var notes: [ImportNote] = []
    /// Profile field path (`disks[1]`, `nics[0].mac`) → the XPath and line it came from.
    var origins: [String: (path: String, line: Int, column: Int)] = [:]

    /// Notes hold document text: made printable here, once (`ImportNote.printable`).
    mutating func note(_ node: SourceNode, _ what: String, _ action: String) {
        notes.append(ImportNote(path: ImportNote.printable(node.path), line: node.line,
                                what: ImportNote.printable(what), action: ImportNote.printable(action)))
    }

    /// A note about one attribute of `node`, which counts as read.
    mutating func note(_ node: SourceNode, attribute: String, _ what: String, _ action: String) {
        node.usedAttributes.insert(attribute)
        notes.append(ImportNote(path: ImportNote.printable(node.attributePath(attribute)),
                                line: node.attributeLine(attribute), what: ImportNote.printable(what),
                                action: ImportNote.printable(action)))
    }

    mutating func origin(_ profilePath: String, _ node: SourceNode) {
        origins[profilePath] = (node.path, node.line, node.element.column)
    }

    func error(_ node: SourceNode, _ message: String) -> ImportError {
        ImportError(path: node.path, line: node.line, column: node.element.column, message: message)
    }

    /// A host path from the document: absolute (libvirt's are), normalized as the profile loader keeps paths.
    func absolutePath(_ path: String, _ node: SourceNode, attribute: String? = nil) throws(ImportError) -> String {
        guard path.hasPrefix("/") else {
            let message = "'\(ImportText.shown(path))' is not an absolute path"
            throw attribute.map { error(node, attribute: $0, message) } ?? error(node, message)
        }
        return ProfileLoader.normalizedPath(path)
    }

    func error(_ node: SourceNode, attribute: String, _ message: String) -> ImportError {
        let attr = node.element.attributes.first { $0.name == attribute }
        return ImportError(path: node.attributePath(attribute), line: attr?.line ?? node.line,
                           column: attr?.column ?? node.element.column, message: message)
    }

    /// Runs the profile validator (`Profile.problems()`) and turns its first problem into an error naming the XPath
    /// of the element the value came from.
    func validate(_ profile: Profile, root: SourceNode) throws(ImportError) {
        let problems = profile.problems()
        guard let first = problems.first else { return }
        let (field, message) = Self.split(first)
        var key = field
        while origins[key] == nil && !key.isEmpty {
            guard let cut = key.lastIndex(where: { $0 == "." || $0 == "[" }) else { key = ""; break }
            key = String(key[..<cut])
        }
        let origin = origins[key] ?? (root.path, root.line, root.element.column)
        let more = problems.count > 1 ? " (and \(problems.count - 1) more: \(problems.dropFirst().joined(separator: "; ")))" : ""
        throw ImportError(path: origin.path, line: origin.line, column: origin.column,
                          message: "the imported profile is not valid: \(field.isEmpty ? "" : field + ": ")\(message)\(more)")
    }

    static func split(_ problem: String) -> (String, String) {
        guard let range = problem.firstRange(of: ": ") else { return ("", problem) }
        return (String(problem[..<range.lowerBound]), String(problem[range.upperBound...]))
    }

    /// Notes in document order (line, then the order they were made).
    func sortedNotes(adding more: [ImportNote]) -> [ImportNote] {
        (notes + more).enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
    }
}

enum ImportText {
    /// A valid corral VM name from any text: lower case, anything else than letters and digits becomes `-`, runs of
    /// `-` collapse, at most 63 characters, starting with a letter or digit. nil when nothing is left.
    static func vmName(_ text: String) -> String? {
        var out = ""
        for scalar in text.lowercased().unicodeScalars {
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9")
            if ok {
                out.unicodeScalars.append(scalar)
            } else if !out.isEmpty && !out.hasSuffix("-") {
                out += "-"
            }
            if out.utf8.count >= VMName.maxLength { break }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? nil : String(out.prefix(VMName.maxLength))
    }

    /// A valid device id from any text (`vda`, `scsi0-0-0`): letters, digits, `_`, `-`; starting with a letter.
    static func deviceID(_ text: String, fallback: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let letter = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
            let digit = scalar >= "0" && scalar <= "9"
            if letter || ((digit || scalar == "_" || scalar == "-") && !out.isEmpty) {
                out.unicodeScalars.append(scalar)
            }
        }
        let id = String(out.prefix(DeviceID.maxLength))
        return DeviceID.isValid(id) ? id : fallback
    }

    /// A decimal or `0x` hexadecimal number.
    static func integer(_ text: String) -> UInt64? {
        let t = text.trimmingCharactersInWhitespace()
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16) }
        guard !t.isEmpty, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(t)
    }

    /// A non-negative count that fits an Int and `limit`.
    static func count(_ text: String, limit: Int) -> Int? {
        guard let n = integer(text), n <= UInt64(limit) else { return nil }
        return Int(n)
    }

    /// Text that never contains `\0` or line breaks, for messages.
    static func shown(_ text: String) -> String { SourceNode.clip(text, 80) }
}

/// libvirt's size units (`virScaleInteger`): `b`/`bytes`; `k`, `KiB`… powers of 1024; `KB`, `MB`… powers of 1000;
/// case does not matter. (OVF's units, `byte * 2^20` and `MegaBytes`, are `OVFUnits`.)
enum LibvirtUnits {
    static let allowed = "b, bytes, k, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB, P, PiB, PB, E, EiB, EB"

    /// The factor for a unit; nil when unknown.
    static func factor(_ unit: String) -> UInt64? {
        let lower = unit.lowercased()
        if lower == "b" || lower == "bytes" { return 1 }
        guard let first = lower.first else { return nil }
        let exponents: [Character: UInt64] = ["k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6]
        guard let exponent = exponents[first] else { return nil }
        let rest = lower.dropFirst()
        let base: UInt64
        switch rest {
        case "", "ib": base = 1024
        case "b": base = 1000
        default: return nil
        }
        var factor: UInt64 = 1
        for _ in 0..<exponent { factor *= base }
        return factor
    }

    /// `value` × `unit` in bytes; nil when not a number, an unknown unit, or past 2^64.
    static func bytes(_ value: String, unit: String) -> UInt64? {
        guard let number = ImportText.integer(value), let factor = factor(unit) else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }
}
