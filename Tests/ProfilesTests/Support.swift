import Testing
@testable import Profiles

/// Loads `path` (relative to `/vm` unless absolute) from in-memory files.
func load(
    _ path: String, files: [String: String], existing: Set<String> = [], checkFiles: Bool = true,
    currentDirectory: String = "/vm"
) -> Result<Profile, ProfileErrors> {
    let source = InMemorySource(files: files, existing: existing, currentDirectory: currentDirectory)
    let loader = ProfileLoader(checkFiles: checkFiles, source: source)
    do throws(ProfileErrors) {
        return .success(try loader.load(path: path))
    } catch {
        return .failure(error)
    }
}

/// Loads and expects success; records an issue with every diagnostic otherwise.
func loadValid(
    _ path: String, files: [String: String], existing: Set<String> = [], checkFiles: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Profile? {
    switch load(path, files: files, existing: existing, checkFiles: checkFiles) {
    case .success(let profile):
        return profile
    case .failure(let errors):
        Issue.record("expected a valid profile, got:\n\(errors)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Loads and returns the diagnostics as strings (empty when the profile is valid).
func diagnostics(
    _ path: String, files: [String: String], existing: Set<String> = [], checkFiles: Bool = true,
    currentDirectory: String = "/vm"
) -> [String] {
    switch load(path, files: files, existing: existing, checkFiles: checkFiles, currentDirectory: currentDirectory) {
    case .success: return []
    case .failure(let errors): return errors.diagnostics.map(\.description)
    }
}

/// Replaces whole lines (1-based) of `text`. A replacement may contain newlines.
func patch(_ text: String, _ replacements: [Int: String]) -> String {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for (line, replacement) in replacements {
        precondition(line >= 1 && line <= lines.count, "no line \(line)")
        lines[line - 1] = replacement
    }
    return lines.joined(separator: "\n")
}
