import CorralWire
import ArgumentParser
import JSON
import QMP

struct QMPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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

    @Option(name: [.customLong("socket"), .customLong("qmp-socket")],
            help: "Talk to this QMP Unix socket directly instead of through the daemon.")
    var socket: String?

    @Option(name: .customLong("daemon-socket"),
            help: "The daemon's socket (default: $CORRAL_SOCKET or /run/corral/corral.sock).")
    var daemonSocket: String?

    @Argument(help: "NAME COMMAND [JSON-ARGS] through the daemon; COMMAND [JSON-ARGS] with --socket.")
    var words: [String] = []

    @Option(help: "Seconds to wait for the reply (direct form).")
    var timeout: Double = 10

    func validate() throws {
        if socket != nil {
            guard (1...2).contains(words.count) else {
                throw ValidationError("with --socket, give COMMAND [JSON-ARGS]")
            }
            if daemonSocket != nil { throw ValidationError("--socket (direct) and --daemon-socket exclude each other") }
        } else {
            guard (2...3).contains(words.count) else { throw ValidationError("give NAME COMMAND [JSON-ARGS]") }
        }
    }

    func run() async throws {
        if let socket {
            try await direct(socket: socket, command: words[0], arguments: try parse(words.count > 1 ? words[1] : nil))
        } else {
            let name = words[0]
            let command = words[1]
            let arguments = try parse(words.count > 2 ? words[2] : nil)
            let path = DaemonSocketOption(path: daemonSocket).resolved
            let reply = try await DaemonCall.run(socket: path) {
                try await $0.qmp(name, command: command, arguments: arguments)
            }
            Terminal.out(reply.prettyText)
        }
    }

    private func parse(_ arguments: String?) throws -> JSONObject? {
        guard let arguments else { return nil }
        guard let parsed = try? JSONValue(parsing: arguments), let object = parsed.objectValue else {
            Terminal.err("error: arguments must be one JSON object, e.g. '{\"id\":\"disk1\"}'")
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
        return object
    }

    private func direct(socket: String, command: String, arguments: JSONObject?) async throws {
        do {
            let client = try await QMPClient.connect(socketPath: socket, connectTimeout: .seconds(2))
            let reply = try await client.execute(command, arguments, timeout: .milliseconds(Int64(timeout * 1000)))
            await client.close()
            Terminal.out(reply.prettyText)
        } catch {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}

extension DaemonSocketOption {
    init(path: String?) {
        self.init()
        self.path = path
    }
}
