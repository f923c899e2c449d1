import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The executables `corral` hands work to, found beside `corral` (else in PATH) and run with `execv`, so the
/// process id, the terminal, the signals and the exit status stay the caller's.
///
/// `corrald` serves the API; `corral-local` runs what needs the profile loader, the argv builder or QEMU
/// on this host (`check`, `argv`, `run`, `convert`, `qmp --socket`). Keeping them out of `corral` keeps every daemon
/// call from loading code it does not use.
package enum Helper: String {
    case daemon = "corrald"
    case local = "corral-local"

    /// Replaces this process with the helper. Returns only by throwing, after saying what went wrong.
    package func exec(_ arguments: [String]) throws -> Never {
        guard let path = executable() else {
            Terminal.err("error: cannot find \(rawValue) (\(role)) next to corral or in PATH; "
                + "install it beside corral (swift build builds it)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
        var cArguments = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, &cArguments)
        let reason = String(cString: strerror(errno))
        Terminal.err("error: cannot run \(path): \(reason)")
        throw ExitCode(ExitCodeValue.failure.rawValue)
    }

    /// Hands the current command line over: `corral VERB ARGS…` becomes `corral-local VERB ARGS…`.
    /// `corral` itself takes no options before the verb, so the verb is always the first argument.
    package func forward(verb: String) throws -> Never {
        let words = CommandLine.arguments.dropFirst()
        guard words.first == verb else {
            Terminal.err("error: expected `corral \(verb) …`, got `corral \(words.joined(separator: " "))`")
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
        try exec(Array(words))
    }

    private var role: String {
        switch self {
        case .daemon: return "the daemon executable"
        case .local: return "the executable for check, argv, run, convert and qmp --socket"
        }
    }

    /// Beside this executable, else the first in PATH.
    package func executable() -> String? {
        let files = FileManager.default
        var candidates: [String] = []
        if let me = try? files.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent(rawValue).path)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        candidates += path.split(separator: ":").map { "\($0)/\(rawValue)" }
        return candidates.first { files.isExecutableFile(atPath: $0) }
    }
}
