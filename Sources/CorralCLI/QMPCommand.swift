import CorralWire
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JSON

package struct QMPCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qmp",
        abstract: "Send one QMP command to a VM (through the daemon) or to a QMP socket, and pretty-print the reply.",
        discussion: """
            Through the daemon (recorded in the VM's QMP transcript):
                corral qmp web query-status
                corral qmp web human-monitor-command '{"command-line":"info cpus"}'
            Directly to a QMP socket, with no daemon (--socket names the QMP socket here; --qmp-socket is the
            same option):
                corral qmp --socket /tmp/vm/qmp.sock query-status
            The daemon's socket is --daemon-socket (default: $CORRAL_SOCKET or /run/corral/corral.sock).
            """)

    @OptionGroup var arguments: QMPArguments

    package init() {}

    package func run() async throws {
        if arguments.socket != nil { try Helper.local.forward(verb: "qmp") }
        let words = arguments.words
        let name = words[0]
        let command = words[1]
        let parsed = try QMPArguments.object(words.count > 2 ? words[2] : nil)
        let path = DaemonSocketOption(path: arguments.daemonSocket).resolved
        let reply = try await DaemonCall.run(socket: path) {
            try await $0.qmp(name, command: command, arguments: parsed)
        }
        Terminal.out(reply.prettyText)
    }
}

/// `corral qmp`'s arguments: NAME COMMAND [JSON-ARGS] through the daemon, or COMMAND [JSON-ARGS] straight to a
/// QMP socket with --socket (which `corral-local` does).
package struct QMPArguments: ParsableArguments {
    @Option(name: [.customLong("socket"), .customLong("qmp-socket")],
            help: "Talk to this QMP Unix socket directly instead of through the daemon.")
    package var socket: String?

    @Option(name: .customLong("daemon-socket"),
            help: "The daemon's socket (default: $CORRAL_SOCKET or /run/corral/corral.sock).")
    package var daemonSocket: String?

    @Argument(help: "NAME COMMAND [JSON-ARGS] through the daemon; COMMAND [JSON-ARGS] with --socket.")
    package var words: [String] = []

    @Option(help: "Seconds to wait for the reply (direct form).")
    package var timeout: Double = 10

    package init() {}

    package func validate() throws {
        if socket != nil {
            guard (1...2).contains(words.count) else {
                throw ValidationError("with --socket, give COMMAND [JSON-ARGS]")
            }
            if daemonSocket != nil { throw ValidationError("--socket (direct) and --daemon-socket exclude each other") }
        } else {
            guard (2...3).contains(words.count) else { throw ValidationError("give NAME COMMAND [JSON-ARGS]") }
        }
    }

    /// The JSON-ARGS word as an object; exits 2 with an example when it is not one.
    package static func object(_ text: String?) throws -> JSONObject? {
        guard let text else { return nil }
        guard let parsed = try? WireCoding.decode(JSONValue.self, from: Data(text.utf8)), let object = parsed.objectValue else {
            Terminal.err("error: arguments must be one JSON object, e.g. '{\"id\":\"disk1\"}'")
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
        return object
    }
}

extension DaemonSocketOption {
    init(path: String?) {
        self.init()
        self.path = path
    }
}
