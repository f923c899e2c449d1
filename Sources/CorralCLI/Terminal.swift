#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Output helpers shared by the commands: stdout for results, stderr for diagnostics.
package enum Terminal {
    package static func out(_ line: String) {
        write(line + "\n", to: 1)
    }

    package static func err(_ line: String) {
        write(line + "\n", to: 2)
    }

    /// Whole-line writes straight to the descriptor. When the reader has gone (`corral events | head`),
    /// exit quietly with status 0 like other Unix tools instead of dying on SIGPIPE or a write error.
    private static func write(_ text: String, to fd: Int32) {
        signal(SIGPIPE, SIG_IGN)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { exit(0) }
                return
            }
            offset += n
        }
    }

    static var stdoutIsTTY: Bool { isatty(1) != 0 }

    /// Quotes one argument for a POSIX shell only when it needs it.
    package static func shellQuote(_ arg: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !arg.isEmpty && arg.allSatisfy({ safe.contains($0) }) { return arg }
        return "'" + arg.split(separator: "'", omittingEmptySubsequences: false).joined(separator: #"'\''"#) + "'"
    }
}

/// Exit codes, documented in the README.
package enum ExitCodeValue: Int32 {
    case failure = 1
    case invalid = 2
}
