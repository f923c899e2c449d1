import CorralModel
import Import
import Profiles

/// `corral import`'s inputs. The bytes go to the XML parser, and, when they are UTF-8, to both importers (libvirt and
/// OVF) and the compat variants.
///
/// Properties: the parser returns a tree within its limits (depth, elements, attributes per element, lines that start
/// at 1) or an error at a line and column inside the input, with a message; an importer returns a profile the
/// validator accepts, whose every disk has an `ImportedDisk` at its index and whose notes carry XPaths, in line
/// order, and whose YAML (`ProfileYAMLWriter`) loads back to the same profile — or an error at a position inside the
/// input with a message; and all of it takes well under a second of CPU whatever the input.
enum ImportFuzz {
    static let budget = Duration.seconds(2)

    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        let start = ProfileFuzz.threadCPUTime()
        let lines = 1 + data.filter { $0 == 0x0A || $0 == 0x0D }.count
        let parsed: Result<XMLDocument, XMLError>
        do { parsed = .success(try XMLDocument.parse(bytes: data)) } catch { parsed = .failure(error) }
        switch parsed {
        case .success(let document):
            try checkTree(document.root, depth: 1, lines: lines)
        case .failure(let error):
            try require(error.line >= 1 && error.line <= lines, "a parse error's line is in the input",
                        "\(error) (the input has \(lines) lines)")
            try require(error.column >= 1, "a parse error's column is a position", error.description)
            try require(!error.message.isEmpty, "a parse error has a message", error.description)
        }
        if let text = String(validating: data, as: UTF8.self) {
            for compat in [false, true] {
                let options = ImportOptions(compat: compat)
                try check(lines: lines) { () throws(ImportError) in try LibvirtImport.importDomain(text, options: options) }
                try check(lines: lines) { () throws(ImportError) in
                    try OVFImport.importEnvelope(text, options: options, diskDirectory: "/import")
                }
            }
        }
        let elapsed = ProfileFuzz.threadCPUTime() - start
        try require(elapsed < budget, "an import takes less than \(budget) of CPU", "took \(elapsed)")
    }

    static func checkTree(_ element: XMLElement, depth: Int, lines: Int) throws(FuzzFailure) {
        var stack = [(element, depth)]
        var count = 0
        while let (node, level) = stack.popLast() {
            count += 1
            try require(level <= XMLLimits.standard.depth, "a tree is at most the depth limit", "depth \(level)")
            try require(node.line >= 1 && node.line <= lines, "an element's line is in the input", "\(node.line)")
            try require(!node.name.isEmpty && node.name.utf8.count <= XMLLimits.standard.nameLength,
                        "an element has a name within the limit", node.name)
            try require(node.attributes.count <= XMLLimits.standard.attributesPerElement,
                        "an element has at most the attribute limit", "\(node.attributes.count)")
            var names = Set<String>()
            for attribute in node.attributes {
                try require(names.insert(attribute.name).inserted, "attribute names are unique", attribute.name)
            }
            stack += node.children.map { ($0, level + 1) }
        }
        try require(count <= XMLLimits.standard.elements, "a tree has at most the element limit", "\(count)")
    }

    static func check(lines: Int, _ body: () throws(ImportError) -> ImportResult) throws(FuzzFailure) {
        let result: ImportResult
        do {
            result = try body()
        } catch {
            try require(!error.message.isEmpty, "an import error has a message", error.description)
            try require(error.line >= 0 && error.line <= lines, "an import error's line is in the input",
                        error.description)
            try require(error.path.isEmpty || error.path.hasPrefix("/"), "an import error's XPath is absolute",
                        error.description)
            return
        }
        let problems = result.profile.problems()
        try require(problems.isEmpty, "an imported profile is valid", problems.joined(separator: "; "))
        try require(result.disks.count == result.profile.disks.count, "every disk has an ImportedDisk",
                    "\(result.disks.count) for \(result.profile.disks.count)")
        for (index, disk) in result.disks.enumerated() {
            try require(disk.profileIndex == index && disk.id == result.profile.disks[index].id,
                        "ImportedDisk i describes profile disk i", "\(disk)")
        }
        var previous = 0
        for note in result.notes {
            try require(note.path.hasPrefix("/"), "a note's XPath is absolute", note.description)
            try require(note.line >= previous, "notes are in line order", note.description)
            try require(!note.action.isEmpty, "a note says what corral did", note.description)
            previous = note.line
        }
        let yaml = ProfileYAMLWriter.render(result.profile, header: result.notes.map(\.description))
        let source = InMemorySource(files: ["/import/p.yaml": yaml], existing: [], currentDirectory: "/import")
        let loaded: Profile
        do {
            loaded = try ProfileLoader(checkFiles: false, source: source).load(path: "/import/p.yaml")
        } catch {
            throw FuzzFailure("the written profile loads", "\(error)\n\(yaml)")
        }
        try require(loaded == result.profile, "the written profile loads back the same", yaml)
    }
}

/// OVA packages: tar headers read through a closure.
///
/// Properties: the reader lists members within its limits, each with a name and its data inside the input, in order
/// — or refuses with an offset inside the input and a message.
enum TarFuzz {
    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        let members: [TarMember]
        do {
            members = try TarReader.members(archiveSize: UInt64(data.count)) { offset, count in
                guard offset < UInt64(data.count) else { return [] }
                let start = Int(offset)
                return Array(data[start..<min(data.count, start + count)])
            }
        } catch {
            try require(error.offset <= UInt64(data.count), "a refusal's offset is in the archive", error.description)
            try require(!error.message.isEmpty, "a refusal has a message", error.description)
            return
        }
        try require(members.count <= TarLimits.standard.members, "at most the member limit", "\(members.count)")
        var previous: UInt64 = 0
        for member in members {
            try require(!member.name.isEmpty, "a member has a name")
            try require(member.dataOffset >= previous, "members are in order", member.name)
            try require(member.dataOffset + member.size <= UInt64(data.count), "a member's data is in the archive",
                        "\(member)")
            try require(member.headerOffset + 512 <= member.dataOffset, "a header comes before its data", "\(member)")
            previous = member.dataOffset + member.size
        }
    }
}
