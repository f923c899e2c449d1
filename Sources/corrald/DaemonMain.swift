import API
import Cluster
import Foundation
import APITLS
import CorralControl
import ArgumentParser
import CorralCLI
import CorralWire
import Logging
import Supervisor
import UnixSockets
#if canImport(Glibc)
import Glibc
#endif

/// `corrald`: the daemon executable (`corral daemon` execs it with its flags). It alone links the HTTP server.
@main
struct CorralDaemonMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corrald",
        abstract: "The corral daemon: supervise VMs and serve the API (usually started as `corral daemon`).")

    @OptionGroup var flags: DaemonFlags

    func run() async throws {
        let logger = {
            var logger = Logger(label: "corral.daemon")
            logger.logLevel = .info
            return logger
        }()
        do {
            // Started by systemd for corral.socket: serve the socket it holds (its path wins over --socket).
            let passed = try SocketActivation.adopt()
            guard passed.count <= 1 else {
                throw DaemonError.invalidConfiguration(
                    "socket activation passed \(passed.count) sockets; corral.socket must have exactly one ListenStream")
            }
            let inherited = passed.first
            let socketPath = try inherited.map { fd throws(SocketActivation.Failure) in
                try SocketActivation.unixListenerPath(fd)
            } ?? flags.socket.resolved
            var tcp: DaemonConfiguration.TCPListener?
            // The migration TLS folder: with --api-tls the API's certificates come from it too.
            let tlsFolder = flags.options.tlsDirectory ?? flags.stateDir.resolved + "/tls"
            let peerTLS = flags.apiTls ? TLSFiles.client(in: tlsFolder) : nil
            if let listen = flags.listen, let tokenFile = flags.tokenFile {
                tcp = .init(address: listen, token: try BearerToken.load(file: tokenFile),
                            peerToken: try flags.peerTokenFile.map { file throws(TokenFileError) in try BearerToken.load(file: file) },
                            metricsToken: try flags.metricsTokenFile.map { file throws(TokenFileError) in
                                try BearerToken.load(file: file)
                            },
                            tls: flags.apiTls ? .server(in: tlsFolder) : nil)
                if let peer = tcp?.peerToken, peer == tcp?.token {
                    throw DaemonError.invalidConfiguration(
                        "--peer-token-file holds the same token as --token-file; the peer token must be a different, narrower key")
                }
                if let metrics = tcp?.metricsToken, metrics == tcp?.token || metrics == tcp?.peerToken {
                    throw DaemonError.invalidConfiguration(
                        "--metrics-token-file holds the same token as --token-file or --peer-token-file; the metrics "
                            + "token must be a key of its own")
                }
            }
            var web: DaemonConfiguration.WebListener?
            if flags.web != nil || flags.webOnListen, let tokenFile = flags.tokenFile {
                let folder = flags.webAssets ?? WebAssets.defaultFolder(
                    environment: ProcessInfo.processInfo.environment,
                    executable: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                        ?? CommandLine.arguments[0])
                let assets = try WebAssets.load(from: folder)
                if flags.webOnListen { tcp?.web = assets }
                if let address = flags.web {
                    web = .init(address: address, token: try BearerToken.load(file: tokenFile), assets: assets)
                }
            }
            // A certificate that cannot be loaded stops the daemon before it takes over any VM.
            if let files = tcp?.tls { try MutualTLS.check(files) }
            // Before touching the state: a second daemon must not take over the first one's VMs. (A passed socket
            // is systemd's, which starts one daemon per socket.)
            if inherited == nil { try CorralDaemon.prepareSocket(socketPath) }
            if flags.qemuUser == "root" {
                logger.critical("--qemu-user root: every QEMU runs as root, unconfined; a guest that escapes into its QEMU owns this host and every other VM's disks")
            }
            var options = flags.options
            if let urls = flags.cluster, let host = flags.host {
                // Joined before any VM is taken over: each is claimed again on this daemon's lease.
                let store = try EtcdGateway(urls: urls.split(separator: ",").map { String($0) },
                                            tls: flags.clusterTls.map { TLSFiles.client(in: $0) })
                let address = flags.hostAddress?.description ?? flags.listen?.description ?? ""
                let member = ClusterMember(host: host, store: store,
                                           record: HostRecord(address: address, joinedAt: Date().timeIntervalSince1970),
                                           logger: logger)
                try await member.join()
                options.cluster = member
                options.clusterPeerToken = tcp?.peerToken
            }
            // Migrations reach other daemons over their TCP API with the token the user gave.
            let manager = try await VMManager.open(
                stateRoot: flags.stateDir.resolved, logger: logger, options: options,
                peerConnector: { destination, token in HTTPMigrationPeer(address: destination, token: token, tls: peerTLS) })
            if options.cluster != nil, let adminToken = tcp?.token {
                // restore asks other hosts to migrate VMs back with the admin token every host of the cluster shares.
                await manager.setClusterConnector { address in HTTPClusterPeer(address: address, token: adminToken, tls: peerTLS) }
            }
            // systemd (Type=notify) hears READY=1 once every listener accepts connections; every VM was reattached
            // before the listeners opened (VMManager.open).
            let readiness = Readiness(listeners: 1 + (tcp == nil ? 0 : 1) + (web == nil ? 0 : 1))
            let daemon = CorralDaemon(
                configuration: DaemonConfiguration(socketPath: socketPath, tcp: tcp, web: web, inheritedSocket: inherited,
                                                   tlsServer: MutualTLS(), clientTLS: peerTLS),
                control: manager,
                supervise: { await manager.run() },
                logger: logger,
                onListening: { listener in
                    switch listener {
                    case .unixSocket(let path): logger.info("listening", metadata: ["socket": "\(path)"])
                    case .tcp(let address): logger.info("listening", metadata: ["tcp": "\(address)"])
                    case .web(let address): logger.info("listening", metadata: ["web": "http://\(address)/"])
                    }
                    if await readiness.listening() {
                        ServiceNotify.send("READY=1\nSTATUS=serving \(socketPath)\nMAINPID=\(getpid())")
                    }
                },
                onStopping: { ServiceNotify.send("STOPPING=1") })
            try await daemon.runUntilSignalled()
        } catch let error as SocketActivation.Failure {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        } catch let error as ClusterError {
            Terminal.err("error: --cluster: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        } catch let error as WebAssetsError {
            Terminal.err("error: \(error.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
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

/// Counts listeners up to the number the daemon opens: true once, when the last one listens.
actor Readiness {
    private var remaining: Int
    init(listeners: Int) { remaining = listeners }

    func listening() -> Bool {
        remaining -= 1
        return remaining == 0
    }
}
