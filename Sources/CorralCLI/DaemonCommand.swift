import API
import CorralWire
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

            Overcommit: with --cpu-overcommit / --memory-overcommit, starting a VM or plugging vCPUs or
            memory is refused when it would cross the ratio. Every --policy-interval seconds the balloon
            policy moves balloons under host memory pressure (--no-auto-balloon turns it off) and KSM is
            tuned to the memory pressure (--no-ksm leaves it alone).
            """)

    @OptionGroup var stateDir: StateDirOption
    @OptionGroup var socket: DaemonSocketOption

    @Option(help: "Also listen on TCP, HOST:PORT (e.g. 192.0.2.10:7070); needs --token-file.")
    var listen: String?

    @Option(help: "File whose first line is the bearer token TCP clients must present.")
    var tokenFile: String?

    @Option(help: ArgumentHelp("Refuse to start or grow VMs beyond RATIO online vCPUs per host CPU (e.g. 4).",
                               valueName: "RATIO"))
    var cpuOvercommit: Double?

    @Option(help: ArgumentHelp("Refuse to start or grow VMs beyond RATIO guest memory per host MemTotal (e.g. 1.5).",
                               valueName: "RATIO"))
    var memoryOvercommit: Double?

    @Option(help: ArgumentHelp("Seconds between looks at the host by the balloon and KSM policies.",
                               valueName: "SECONDS"))
    var policyInterval: Double = 5

    @Flag(help: "Do not move balloons automatically under host memory pressure.")
    var noAutoBalloon = false

    @Flag(help: "Leave KSM (/sys/kernel/mm/ksm) alone instead of tuning it.")
    var noKsm = false

    @Option(help: .hidden)
    var hostRoot: String = ""

    func validate() throws {
        for (flag, ratio) in [("--cpu-overcommit", cpuOvercommit), ("--memory-overcommit", memoryOvercommit)] {
            if let ratio, !(ratio.isFinite && ratio > 0) {
                throw ValidationError("\(flag) must be a ratio above 0 (e.g. 1.5), got \(ratio)")
            }
        }
        guard policyInterval.isFinite, policyInterval >= 0.1, policyInterval <= 3600 else {
            throw ValidationError("--policy-interval must be between 0.1 and 3600 seconds, got \(policyInterval)")
        }
        if !hostRoot.isEmpty && !hostRoot.hasPrefix("/") {
            throw ValidationError("--host-root must be an absolute path, got \(hostRoot)")
        }
        if let listen {
            guard DaemonConfiguration.TCPListener.parseAddress(listen) != nil else {
                throw ValidationError("--listen must be HOST:PORT, got \(listen)")
            }
            guard tokenFile != nil else { throw ValidationError("--listen needs --token-file") }
        } else if tokenFile != nil {
            throw ValidationError("--token-file only applies with --listen")
        }
    }

    /// What the flags ask of the supervisor. The CLI daemon manages KSM unless told not to.
    var options: DaemonOptions {
        var options = DaemonOptions(manageKSM: !noKsm)
        options.limits = .init(cpuRatio: cpuOvercommit, memoryRatio: memoryOvercommit)
        options.policyInterval = .milliseconds(Int64((policyInterval * 1000).rounded()))
        options.autoBalloon = !noAutoBalloon
        options.hostRoot = hostRoot
        return options
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
            let manager = try await VMManager.open(stateRoot: stateDir.resolved, logger: logger, options: options)
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
