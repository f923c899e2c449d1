import API
import ArgumentParser
import Foundation
import Logging
import Supervisor

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the corral daemon in the foreground: supervise VMs and serve the API.",
        discussion: """
            Serves the HTTP+JSON API on a Unix socket (mode 0600) and, with --listen, on TCP where every
            request must carry `Authorization: Bearer <token>` (the token is the first line of --token-file).
            SIGTERM or SIGINT stops listening and returns; running VMs keep running and a later daemon
            takes them over. Refuses to start when another daemon answers on the socket.
            """)

    @OptionGroup var stateDir: StateDirOption
    @OptionGroup var socket: DaemonSocketOption

    @Option(help: "Also listen on TCP, HOST:PORT (e.g. 192.0.2.10:7070); needs --token-file.")
    var listen: String?

    @Option(help: "File whose first line is the bearer token TCP clients must present.")
    var tokenFile: String?

    func validate() throws {
        if let listen {
            guard DaemonConfiguration.TCPListener.parseAddress(listen) != nil else {
                throw ValidationError("--listen must be HOST:PORT, got \(listen)")
            }
            guard tokenFile != nil else { throw ValidationError("--listen needs --token-file") }
        } else if tokenFile != nil {
            throw ValidationError("--token-file only applies with --listen")
        }
    }

    func run() async throws {
        let logger = {
            var logger = Logger(label: "corral.daemon")
            logger.logLevel = .info
            return logger
        }()
        let socketPath = socket.resolved
        do {
            var tcp: DaemonConfiguration.TCPListener?
            if let listen, let tokenFile, let address = DaemonConfiguration.TCPListener.parseAddress(listen) {
                tcp = .init(host: address.host, port: address.port, token: try BearerToken.load(file: tokenFile))
            }
            // Before touching the state: a second daemon must not take over the first one's VMs.
            try CorralDaemon.prepareSocket(socketPath)
            let manager = try await VMManager.open(stateRoot: stateDir.resolved, logger: logger)
            let daemon = CorralDaemon(
                configuration: DaemonConfiguration(socketPath: socketPath, tcp: tcp),
                control: manager,
                supervise: { await manager.run() },
                logger: logger,
                onListening: { listener in
                    switch listener {
                    case .unixSocket(let path): logger.info("listening", metadata: ["socket": "\(path)"])
                    case .tcp(let host, let port): logger.info("listening", metadata: ["tcp": "\(host):\(port)"])
                    }
                })
            try await daemon.runUntilSignalled()
        } catch let error as DaemonError {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        } catch let error as ExitCode {
            throw error
        } catch {
            Terminal.err("error: \(error)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}
