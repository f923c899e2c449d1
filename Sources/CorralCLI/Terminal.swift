import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Output helpers shared by the commands: stdout for results, stderr for diagnostics.
enum Terminal {
    static func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func err(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static var stdoutIsTTY: Bool { isatty(1) != 0 }

    /// Quotes one argument for a POSIX shell only when it needs it.
    static func shellQuote(_ arg: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !arg.isEmpty && arg.allSatisfy({ safe.contains($0) }) { return arg }
        return "'" + arg.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}

/// Exit codes, documented in the README.
enum ExitCodeValue: Int32 {
    case failure = 1
    case invalid = 2
}
