import CorralModel
import CorralWire
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JSON

/// `--socket`: where the daemon listens (then $CORRAL_SOCKET, then /run/corral/corral.sock).
package struct DaemonSocketOption: ParsableArguments {
    @Option(name: .customLong("socket"), help: "The daemon's socket (default: $CORRAL_SOCKET or /run/corral/corral.sock).")
    var path: String?

    package init() {}

    package var resolved: String {
        DaemonAddress.socketPath(option: path, environment: ProcessInfo.processInfo.environment)
    }
}

/// Talking to the daemon: one client per command, errors printed as `error: …` with the
/// documented exit code (2 for invalid input, 1 for everything else).
enum DaemonCall {
    static func run<T: Sendable>(socket: String, _ body: (CorralClient) async throws -> T) async throws -> T {
        do {
            return try await CorralClient.withClient(.unixSocket(socket), body)
        } catch {
            throw exit(for: error)
        }
    }

    /// The same for the calls a command makes on its own thread (`CorralClient.blocking`).
    static func runBlocking<T>(socket: String, _ body: (CorralClient.Blocking) throws -> T) throws -> T {
        do {
            return try body(CorralClient(endpoint: .unixSocket(socket)).blocking)
        } catch {
            throw exit(for: error)
        }
    }

    /// Reports `error` and returns the exit it calls for.
    private static func exit(for error: any Error) -> ExitCode {
        switch error {
        case let error as ControlError:
            report(error)
            switch error {
            case .invalidProfile, .invalidRequest: return ExitCode(ExitCodeValue.invalid.rawValue)
            default: return ExitCode(ExitCodeValue.failure.rawValue)
            }
        case let error as CorralClientError:
            Terminal.err("error: \(error.description)")
            return ExitCode(ExitCodeValue.failure.rawValue)
        case let error as ExitCode:
            return error
        case is CancellationError:
            return ExitCode(ExitCodeValue.failure.rawValue)
        default:
            Terminal.err("error: \(error)")
            return ExitCode(ExitCodeValue.failure.rawValue)
        }
    }

    /// Every diagnostic of an invalid profile, QEMU's own lines for a failed start.
    static func report(_ error: ControlError) {
        switch error {
        case .invalidProfile(let diagnostics):
            for diagnostic in diagnostics { Terminal.err(diagnostic.description) }
            Terminal.err("error: \(error.message)")
        case .startFailed(let reason, let output):
            Terminal.err("error: \(reason)")
            for line in output { Terminal.err("  qemu: \(line)") }
        default:
            Terminal.err("error: \(error.message)")
        }
    }
}

/// `--json` output: stable key order, readable.
enum JSONOutput {
    static func print(_ value: some Encodable, pretty: Bool = true) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty
            ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        var text = String(decoding: try encoder.encode(value), as: UTF8.self)
        // Foundation pretty-prints an empty array over three lines.
        if text.filter({ !$0.isWhitespace }) == "[]" { text = "[]" }
        Terminal.out(text)
    }
}
