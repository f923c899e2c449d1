/// One problem found in a profile, pointing at the offending value (or key).
///
/// `description` is `FILE:LINE:COL: path: message`. When `path` is empty (a problem with the
/// whole document) the `path: ` part is left out; when the position is unknown (`line == 0`,
/// e.g. an unreadable file) the `:LINE:COL` part is left out.
public struct Diagnostic: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The file as the user named it (top file), or as reached through `extends`
    /// (joined onto the including file's name, so it reads relative to the same directory).
    public var file: String
    /// 1-based; 0 when there is no position.
    public var line: Int
    /// 1-based; 0 when there is no position.
    public var column: Int
    /// Field path such as `cpu.count` or `disks[1].file`; `""` for whole-document problems.
    public var path: String
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = file
        if line > 0 { text += ":\(line):\(column)" }
        text += ": "
        if !path.isEmpty { text += path + ": " }
        return text + message
    }
}
