import Foundation

/// The only I/O the profile loader does: reading profile files and asking whether a file exists.
///
/// Paths handed to a source are always absolute and lexically normalized (no `.`/`..`, no `//`).
public protocol ProfileSource: Sendable {
    /// Returns the contents of the file at `absolutePath`, or throws when it cannot be read.
    func read(_ absolutePath: String) throws -> String
    /// True when a file (disk image, kernel, profile) exists at `absolutePath`.
    func exists(_ absolutePath: String) -> Bool
    /// The directory that relative paths given to `ProfileLoader.load(path:)` are resolved against.
    func currentDirectory() -> String
}

extension ProfileSource {
    public func currentDirectory() -> String {
        FileManager.default.currentDirectoryPath
    }
}

/// Reads profiles from the local file system.
public struct LocalFileSource: ProfileSource {
    public init() {}

    /// Why a profile file cannot be read, in words for the user (not Foundation's error domains).
    public struct ReadError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public func read(_ absolutePath: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolutePath, isDirectory: &isDirectory) else {
            throw ReadError(description: "no such file: \(absolutePath)")
        }
        if isDirectory.boolValue { throw ReadError(description: "\(absolutePath) is a folder, not a file") }
        // Never read more than a profile may be: a huge file (or /dev/zero) is refused before it is read.
        let size = (try? FileManager.default.attributesOfItem(atPath: absolutePath)[.size] as? NSNumber)?.intValue ?? 0
        let regular = (try? FileManager.default.attributesOfItem(atPath: absolutePath)[.type] as? FileAttributeType)
            == .typeRegular
        guard regular else { throw ReadError(description: "\(absolutePath) is not a regular file") }
        guard size <= ProfileLimits.fileBytes else {
            throw ReadError(description: "\(absolutePath) is \(size) bytes; a profile is at most "
                + "\(ProfileLimits.fileBytes / 1024) KiB")
        }
        guard let data = FileManager.default.contents(atPath: absolutePath) else {
            throw ReadError(description: "cannot open \(absolutePath) (permission denied?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ReadError(description: "\(absolutePath) is not UTF-8 text")
        }
        return text
    }

    /// True for files and devices, false for directories.
    public func exists(_ absolutePath: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: absolutePath, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}

/// An in-memory file system for tests: profile texts keyed by absolute path, plus extra paths
/// (disk images, kernels) that should count as existing without having contents.
public struct InMemorySource: ProfileSource {
    public var files: [String: String]
    public var existing: Set<String>
    public var workingDirectory: String

    public struct NotFound: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "no such file: \(path)" }
    }

    public init(files: [String: String], existing: Set<String> = [], currentDirectory: String = "/") {
        self.files = files
        self.existing = existing
        self.workingDirectory = currentDirectory
    }

    public func read(_ absolutePath: String) throws -> String {
        guard let text = files[absolutePath] else { throw NotFound(path: absolutePath) }
        return text
    }

    public func exists(_ absolutePath: String) -> Bool {
        files[absolutePath] != nil || existing.contains(absolutePath)
    }

    public func currentDirectory() -> String { workingDirectory }
}

extension ProfileLoader {
    /// An absolute path as the loader keeps it (lexically normalized: no `.`, `..` or empty components), so a
    /// profile built in code and written out (`ProfileYAMLWriter`) loads back equal.
    public static func normalizedPath(_ absolutePath: String) -> String {
        PathText.normalize(absolutePath)
    }
}

/// Lexical path helpers (no file system access).
enum PathText {
    /// Joins `path` onto `directory` unless `path` is already absolute, then normalizes.
    static func resolve(_ path: String, against directory: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        if directory.isEmpty { return normalize(path) }
        return normalize(directory + "/" + path)
    }

    /// Removes `.`, empty components and `name/..` pairs. Keeps leading `..` of relative paths;
    /// `..` above `/` stays at `/`. An empty relative result is `.`.
    static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".":
                continue
            case "..":
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !absolute {
                    parts.append(part)
                }
            default:
                parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// The directory part of `path`: `""` for a bare file name, `/` for a file in the root.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}
