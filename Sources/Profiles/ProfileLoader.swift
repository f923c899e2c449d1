import CorralModel

/// Loads a profile: reads it (through `ProfileSource`), merges its `extends` chain, decodes strictly,
/// fills defaults, resolves relative paths and validates, reporting every problem at once.
public struct ProfileLoader: Sendable {
    public var checkFiles: Bool
    public var source: any ProfileSource

    /// - Parameter checkFiles: when false, disk images, kernels and initrds are not required to exist
    ///   (for golden tests on machines without the test guest). Everything else is still validated.
    public init(checkFiles: Bool = true, source: any ProfileSource = LocalFileSource()) {
        self.checkFiles = checkFiles
        self.source = source
    }

    /// Reads, merges `extends`, decodes strictly, fills defaults, resolves relative paths, validates.
    public func load(path: String) throws(ProfileErrors) -> Profile {
        let top = SourceFile(display: path, absolute: PathText.resolve(path, against: source.currentDirectory()),
                             order: 0)
        var context = LoadContext(source: source)
        let tree = context.loadTree(top, includedFrom: nil, chain: [])
        guard context.problems.isEmpty, let tree else {
            throw ProfileErrors(diagnostics: Self.sorted(context.problems, files: context.files))
        }

        var checker = ProfileChecker(rootLocation: tree.location)
        var profile = checker.decode(tree)
        checker.validate(&profile, source: source, checkFiles: checkFiles)
        guard checker.diagnostics.isEmpty else {
            throw ProfileErrors(diagnostics: Self.sorted(checker.diagnostics, files: context.files))
        }
        return profile
    }

    /// File order (top file first, then along the `extends` chain), then line, then column;
    /// problems at the same position keep the order they were found in.
    static func sorted(_ diagnostics: [Diagnostic], files: [SourceFile]) -> [Diagnostic] {
        var order: [String: Int] = [:]
        for file in files where order[file.display] == nil { order[file.display] = file.order }
        return diagnostics.enumerated().sorted { a, b in
            let keyA = (order[a.element.file] ?? Int.max, a.element.line, a.element.column, a.offset)
            let keyB = (order[b.element.file] ?? Int.max, b.element.line, b.element.column, b.offset)
            return keyA < keyB
        }.map(\.element)
    }
}

/// The `extends` walk: reads each file once, follows `extends` relative to the file containing it,
/// detects cycles, and merges parents under children.
private struct LoadContext {
    let source: any ProfileSource
    var problems: [Diagnostic] = []
    var files: [SourceFile] = []

    init(source: any ProfileSource) { self.source = source }

    mutating func problem(_ location: Location?, file: SourceFile, path: String, _ message: String) {
        problems.append(Diagnostic(file: file.display, line: location?.line ?? 0, column: location?.column ?? 0,
                                   path: path, message: message))
    }

    /// - Parameters:
    ///   - includedFrom: the `extends` value that named this file; nil for the top file.
    ///   - chain: the files above this one, top file first.
    mutating func loadTree(_ file: SourceFile, includedFrom: TreeScalar?, chain: [SourceFile]) -> TreeNode? {
        files.append(file)
        let text: String
        do {
            text = try source.read(file.absolute)
        } catch {
            if let includedFrom {
                problem(includedFrom.location, file: includedFrom.location.file, path: "extends",
                        "cannot read \(file.display): \(error)")
            } else {
                problem(nil, file: file, path: "", "cannot read the profile: \(error)")
            }
            return nil
        }

        let parsed: TreeNode?
        do {
            parsed = try TreeBuilder.parse(text, file: file)
        } catch {
            problems += error.diagnostics
            return nil
        }
        guard let parsed else {
            problem(nil, file: file, path: "", "the profile is empty")
            return nil
        }
        guard case .map(let root) = TreeBuilder.expandShorthands(parsed) else {
            problem(parsed.location, file: file, path: "",
                    "expected a mapping of profile keys, got \(parsed.kindDescription)")
            return nil
        }
        guard let extendsNode = root.value("extends") else { return .map(root.removing("extends")) }
        guard case .scalar(let extends) = extendsNode, !extends.text.isEmpty else {
            problem(extendsNode.location, file: file, path: "extends",
                    "expected a file name, got \(extendsNode.kindDescription)")
            return nil
        }

        let parentDisplay = extends.text.hasPrefix("/")
            ? PathText.normalize(extends.text)
            : PathText.resolve(extends.text, against: PathText.directory(of: file.display))
        let parent = SourceFile(display: parentDisplay,
                                absolute: PathText.resolve(extends.text, against: file.directory),
                                order: files.count)
        let lineage = chain + [file]
        if lineage.contains(where: { $0.absolute == parent.absolute }) {
            let names = (lineage + [parent]).map(\.display).joined(separator: " → ")
            problem(extends.location, file: file, path: "extends", "circular extends: \(names)")
            return nil
        }
        if lineage.count >= ProfileLimits.extendsChain {
            problem(extends.location, file: file, path: "extends",
                    "more than \(ProfileLimits.extendsChain) files in the extends chain; "
                        + "a profile extends at most \(ProfileLimits.extendsChain - 1) others")
            return nil
        }
        guard source.exists(parent.absolute) else {
            problem(extends.location, file: file, path: "extends",
                    "\(parent.display) not found (looked for \(parent.absolute))")
            return nil
        }
        guard let base = loadTree(parent, includedFrom: extends, chain: lineage) else { return nil }
        return TreeBuilder.merge(base: base, child: .map(root.removing("extends")))
    }
}
