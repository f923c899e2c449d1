import ArgumentParser
import JSON
import QMP

struct QMPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qmp",
        abstract: "Send one QMP command to a QMP socket and pretty-print the reply.",
        discussion: """
            Example: corral qmp --socket /tmp/vm/qmp.sock query-status
                     corral qmp --socket /tmp/vm/qmp.sock human-monitor-command '{"command-line":"info cpus"}'
            """)

    @Option(help: "Path of the QMP Unix socket.")
    var socket: String

    @Argument(help: "QMP command name, e.g. query-status.")
    var command: String

    @Argument(help: "Arguments as one JSON object, e.g. '{\"id\":\"disk1\"}'.")
    var arguments: String?

    @Option(help: "Seconds to wait for the reply.")
    var timeout: Double = 10

    func run() async throws {
        var object: JSONObject?
        if let arguments {
            guard let parsed = try? JSONValue(parsing: arguments), let parsedObject = parsed.objectValue else {
                Terminal.err("error: arguments must be one JSON object, e.g. '{\"id\":\"disk1\"}'")
                throw ExitCode(ExitCodeValue.invalid.rawValue)
            }
            object = parsedObject
        }
        do {
            let client = try await QMPClient.connect(socketPath: socket, connectTimeout: .seconds(2))
            let reply = try await client.execute(command, object, timeout: .milliseconds(Int64(timeout * 1000)))
            await client.close()
            Terminal.out(reply.prettyText)
        } catch {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}
