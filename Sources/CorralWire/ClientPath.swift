#if canImport(Glibc)
import Glibc
#endif

/// Paths the client sends to the daemon (a profile, a disk image) are absolute: the daemon has its own working
/// folder. Pure string work, no file-system access, so a path that does not exist yet is fine.
public enum ClientPath {
    /// `path` made absolute against `folder` (the client's working folder) with `.` and `..` resolved and repeated
    /// slashes folded; symlinks are left alone, as `realpath` would not be (the file may not exist yet).
    public static func absolute(_ path: String, in folder: String) -> String {
        let joined = path.hasPrefix("/") ? path : folder + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// `path` made absolute against this process's working folder.
    public static func absolute(_ path: String) -> String {
        absolute(path, in: currentFolder())
    }

    static func currentFolder() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(cString: buffer)
    }
}
