import CorralModel

extension Profile {
    /// What is wrong with a profile that did not come from a YAML file (a peer daemon's live config, a state file):
    /// the checks `ProfileLoader` makes after decoding, with every value counting as written and no file looked
    /// at. Each problem reads `path: message`; empty when the profile is valid.
    ///
    /// A profile `ProfileLoader` returns has none (the `profile` fuzz target checks it).
    public func problems() -> [String] {
        let nowhere = Location(file: SourceFile(display: "", absolute: "/", order: 0), line: 0, column: 0)
        var checker = ProfileChecker(rootLocation: nowhere)
        checker.everythingGiven = true
        var copy = self
        checker.validate(&copy, source: InMemorySource(files: [:]), checkFiles: false)
        return checker.diagnostics.map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" }
    }
}
