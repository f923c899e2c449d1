import ArgumentParser
import CorralCLI
import QMP

/// `corral qmp --socket PATH COMMAND [JSON-ARGS]`, done: one command straight to a QMP socket, no daemon.
struct LocalQMP: AsyncParsableCommand {
    static let configuration = QMPCommand.configuration

    @OptionGroup var arguments: QMPArguments

    func validate() throws {
        if arguments.socket == nil { throw ValidationError("corral-local qmp talks to a QMP socket: give --socket") }
    }

    func run() async throws {
        guard let socket = arguments.socket else { return }
        let words = arguments.words
        let command = words[0]
        let parsed = try QMPArguments.object(words.count > 1 ? words[1] : nil)
        do {
            let client = try await QMPClient.connect(socketPath: socket, connectTimeout: .seconds(2))
            let reply = try await client.execute(command, parsed,
                                                 timeout: .milliseconds(Int64(arguments.timeout * 1000)))
            await client.close()
            Terminal.out(reply.prettyText)
        } catch {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}
