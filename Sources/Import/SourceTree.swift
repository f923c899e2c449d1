/// The imported document as a tree that remembers what the mapping read: every element and attribute has an XPath,
/// and whatever was never read is reported at the end (`unreadNotes`), so nothing is dropped without a word.
final class SourceNode {
    /// The element without its children (they are `children`).
    let element: XMLElement
    let path: String
    private(set) var children: [SourceNode] = []
    /// The element itself was taken into account (read, or explained by a note).
    var used = false
    /// Attributes read or explained, by qualified name.
    var usedAttributes: Set<String> = []

    /// - Parameter alwaysIndexed: local names of elements whose children always carry `[n]` in their XPath.
    init(_ element: XMLElement, path: String, alwaysIndexed: Set<String>) {
        var bare = element
        bare.children = []
        self.element = bare
        self.path = path
        var counts: [String: Int] = [:]
        for child in element.children { counts[child.name, default: 0] += 1 }
        var seen: [String: Int] = [:]
        let indexAll = alwaysIndexed.contains(element.localName)
        for child in element.children {
            seen[child.name, default: 0] += 1
            let step = indexAll || counts[child.name, default: 0] > 1
                ? "\(child.name)[\(seen[child.name, default: 0])]" : child.name
            children.append(SourceNode(child, path: path + "/" + step, alwaysIndexed: alwaysIndexed))
        }
    }

    convenience init(root: XMLElement, alwaysIndexed: Set<String>) {
        self.init(root, path: "/" + root.name, alwaysIndexed: alwaysIndexed)
        used = true
    }

    var name: String { element.name }
    var localName: String { element.localName }
    var line: Int { element.line }

    // MARK: - Reading (marks what is read)

    /// The first child with this qualified name, marked used.
    func child(_ name: String) -> SourceNode? {
        guard let node = children.first(where: { $0.name == name }) else { return nil }
        node.used = true
        return node
    }

    /// Children with this qualified name, marked used.
    func children(_ name: String) -> [SourceNode] {
        let nodes = children.filter { $0.name == name }
        for node in nodes { node.used = true }
        return nodes
    }

    /// Children with this local name (any prefix), marked used.
    func children(local: String) -> [SourceNode] {
        let nodes = children.filter { $0.localName == local }
        for node in nodes { node.used = true }
        return nodes
    }

    func child(local: String) -> SourceNode? { children(local: local).first }

    /// The first child with this local name, not marked: for looking ahead.
    func peek(local: String) -> SourceNode? {
        children.first { $0.localName == local }
    }

    /// The attribute's value, marked read.
    func attribute(_ name: String) -> String? {
        guard let value = element.attribute(name) else { return nil }
        usedAttributes.insert(name)
        return value
    }

    /// An attribute by local name (any prefix: OVF writers differ), marked read.
    func attribute(local: String) -> String? {
        guard let attribute = element.attributes.first(where: { $0.localName == local && $0.prefix != "xmlns" })
        else { return nil }
        usedAttributes.insert(attribute.name)
        return attribute.value
    }

    /// The trimmed text, marking the element used.
    var text: String {
        used = true
        return element.trimmedText
    }

    /// Marks this element and everything in it as taken into account (its notes say how).
    func useAll() {
        used = true
        for attribute in element.attributes { usedAttributes.insert(attribute.name) }
        for child in children { child.useAll() }
    }

    func attributePath(_ name: String) -> String { path + "/@" + name }

    func attributeLine(_ name: String) -> Int {
        element.attributes.first { $0.name == name }?.line ?? element.line
    }

    // MARK: - Describing

    /// `<graphics type='vnc' port='-1'>`, or `<on_crash>destroy</on_crash>` for short text; at most ~160 characters.
    var summary: String {
        var text = "<" + element.name
        for attribute in element.attributes where attribute.prefix != "xmlns" && attribute.name != "xmlns" {
            text += " \(attribute.name)='\(Self.clip(attribute.value, 60))'"
        }
        let body = element.trimmedText
        if !body.isEmpty && children.isEmpty {
            text += ">" + Self.clip(body, 60) + "</\(element.name)>"
        } else {
            text += children.isEmpty ? "/>" : ">"
        }
        return Self.clip(text, 160)
    }

    static func clip(_ text: String, _ limit: Int) -> String {
        let oneLine = ImportNote.printable(text)
        return oneLine.count <= limit ? oneLine : String(oneLine.prefix(limit - 1)) + "…"
    }

    /// Notes for every element never used (once, for the element, not its contents) and every attribute never
    /// read on a used element, in document order. `explain` gives the action for an element or attribute path
    /// with the indices taken out (`/domain/devices/graphics`, `/domain/vcpu/@placement`).
    func unreadNotes(explain: (String) -> String) -> [ImportNote] {
        var notes: [ImportNote] = []
        collect(into: &notes, explain: explain)
        return notes
    }

    private func collect(into notes: inout [ImportNote], explain: (String) -> String) {
        guard used else {
            notes.append(ImportNote(path: ImportNote.printable(path), line: line, what: summary,
                                    action: explain(Self.pattern(path))))
            return
        }
        for attribute in element.attributes where !usedAttributes.contains(attribute.name) {
            // Namespace declarations are how the document is written, not what it says.
            if attribute.name == "xmlns" || attribute.prefix == "xmlns" { continue }
            let path = attributePath(attribute.name)
            notes.append(ImportNote(path: ImportNote.printable(path), line: attribute.line,
                                    what: "\(attribute.name)='\(Self.clip(attribute.value, 80))'",
                                    action: explain(Self.pattern(path))))
        }
        for child in children { child.collect(into: &notes, explain: explain) }
    }

    /// The path without `[n]` steps.
    static func pattern(_ path: String) -> String {
        var out = ""
        var skipping = false
        for c in path {
            if c == "[" { skipping = true } else if c == "]" { skipping = false } else if !skipping { out.append(c) }
        }
        return out
    }
}
