import CorralModel
import CorralWire
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import CorralControl

/// Why the daemon does not start.
public enum DaemonError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another daemon answers on the socket.
    case alreadyRunning(String)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .alreadyRunning(let path):
            return "another corral daemon answers on \(path); stop it first (or choose another --socket)"
        case .invalidConfiguration(let message):
            return message
        }
    }
}

/// Wraps the TCP listener's HTTP server in TLS with the given files (`APITLS.MutualTLS`).
public protocol TLSServerWrapping: Sendable {
    func wrap(_ server: HTTPServerBuilder, files: TLSFiles) throws(DaemonError) -> HTTPServerBuilder
}

/// Where the daemon listens.
public struct DaemonConfiguration: Sendable {
    /// The optional TCP listener: every request must carry the token.
    public struct TCPListener: Sendable, Equatable {
        /// Port 0: the kernel picks one (reported by `DaemonListener.tcp`).
        public var address: HostPort
        public var token: String
        /// Other daemons' key: only the migration routes (`PeerScope`).
        public var peerToken: String?
        /// A scraper's key: only `GET /metrics`.
        public var metricsToken: String?
        /// Mutual TLS (`--api-tls`): every client must present a certificate from this CA; nil: plain HTTP.
        public var tls: TLSFiles?
        /// The web dashboard on this listener too (`--web-on-listen`): its page, and sessions beside the tokens.
        public var web: WebAssets?
        public init(address: HostPort, token: String, peerToken: String? = nil, metricsToken: String? = nil,
                    tls: TLSFiles? = nil, web: WebAssets? = nil) {
            self.web = web
            self.address = address
            self.token = token
            self.peerToken = peerToken
            self.metricsToken = metricsToken
            self.tls = tls
        }
    }

    /// The web dashboard's listener (`--web`): the API with the admin token or a session cookie, and the page.
    public struct WebListener: Sendable {
        /// Port 0: the kernel picks one (reported by `DaemonListener.web`).
        public var address: HostPort
        /// The admin token: the login, and a bearer token on this listener too.
        public var token: String
        public var assets: WebAssets
        public var sessionLimits: WebSessions.Limits

        public init(address: HostPort, token: String, assets: WebAssets,
                    sessionLimits: WebSessions.Limits = WebSessions.Limits()) {
            self.address = address
            self.token = token
            self.assets = assets
            self.sessionLimits = sessionLimits
        }
    }

    /// What one client may cost a listener.
    public struct Limits: Sendable, Equatable {
        /// A connection that sends nothing (between requests, or in the middle of one) for this long is closed.
        /// Streams (events, console, migrate) are not reads and are not cut.
        public var idleTimeout: Duration
        /// Open connections per listener; more wait in the kernel's backlog.
        public var connections: Int
        /// One header field, and all of a request's headers together.
        public var headerBytes: Int
        public var headerFields: Int

        public init(idleTimeout: Duration = .seconds(30), connections: Int = 256, headerBytes: Int = 16 << 10,
                    headerFields: Int = 64) {
            self.idleTimeout = idleTimeout
            self.connections = connections
            self.headerBytes = headerBytes
            self.headerFields = headerFields
        }
    }

    public var socketPath: String
    public var tcp: TCPListener?
    public var web: WebListener?
    public var limits: Limits
    /// A listening Unix socket passed by systemd (socket activation) for `socketPath`: served as it is, never bound,
    /// replaced or removed by the daemon.
    public var inheritedSocket: Int32?

    /// Puts TLS on the TCP listener when it has `tls` files (`APITLS.MutualTLS`; kept out of this module so that
    /// what links the API alone, such as the fuzz targets, does not carry a TLS library).
    public var tlsServer: (any TLSServerWrapping)?
    /// Client credentials towards other hosts' APIs (`--api-tls`), for requests forwarded to a VM's owner.
    public var clientTLS: TLSFiles?

    public init(socketPath: String, tcp: TCPListener? = nil, web: WebListener? = nil, limits: Limits = Limits(),
                inheritedSocket: Int32? = nil, tlsServer: (any TLSServerWrapping)? = nil, clientTLS: TLSFiles? = nil) {
        self.web = web
        self.tlsServer = tlsServer
        self.clientTLS = clientTLS
        self.socketPath = socketPath
        self.tcp = tcp
        self.limits = limits
        self.inheritedSocket = inheritedSocket
    }
}

/// A listener the daemon opened, reported once it accepts connections.
public enum DaemonListener: Sendable, Equatable {
    case unixSocket(String)
    /// The listener's address with the port it actually got.
    case tcp(HostPort)
    /// The web dashboard's listener, with the port it actually got.
    case web(HostPort)
}

/// The daemon: the API on the Unix socket (and optionally TCP), plus the supervisor loop, as one
/// `Service`. Run it in a `ServiceGroup` with SIGTERM/SIGINT as graceful-shutdown signals: the
/// listeners close, the supervisor's task is cancelled (which must leave every VM running), the
/// socket file is removed, and `run()` returns.
public struct CorralDaemon: Service {
    public let configuration: DaemonConfiguration
    public let control: any DaemonControl
    private let supervise: @Sendable () async -> Void
    private let logger: Logger
    private let onListening: @Sendable (DaemonListener) async -> Void
    private let onStopping: @Sendable () -> Void

    /// - Parameters:
    ///   - supervise: runs until its task is cancelled (`VMManager.run()`).
    ///   - onListening: called once per listener when it accepts connections.
    public init(
        configuration: DaemonConfiguration,
        control: any DaemonControl,
        supervise: @escaping @Sendable () async -> Void,
        logger: Logger,
        onListening: @escaping @Sendable (DaemonListener) async -> Void = { _ in },
        onStopping: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.control = control
        self.supervise = supervise
        self.logger = logger
        self.onListening = onListening
        self.onStopping = onStopping
    }

    /// Checks the socket path before anything else happens (e.g. before the state is opened):
    /// refuses when another daemon answers there, removes a stale socket file.
    public static func prepareSocket(_ path: String) throws(DaemonError) {
        try DaemonSocket.prepare(path)
    }

    /// Runs the daemon in its own `ServiceGroup` until SIGTERM or SIGINT, then shuts down gracefully.
    public func runUntilSignalled() async throws {
        let group = ServiceGroup(configuration: .init(
            services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    public func run() async throws {
        let socketPath = configuration.socketPath
        let listener: UnixListener
        if let inherited = configuration.inheritedSocket {
            listener = .inherited(inherited)
        } else {
            try DaemonSocket.prepare(socketPath)
            listener = .staged(DaemonSocket.Staging(finalPath: socketPath))
        }
        defer {
            if case .staged(let staging) = listener {
                staging.cleanUp()
                DaemonSocket.remove(socketPath)
            }
        }
        let logger = self.logger
        let api = CorralAPI(control: control, logger: logger, forwardingToken: configuration.tcp?.token,
                            forwardingTLS: configuration.clientTLS)
        let onListening = self.onListening
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: SupervisorService(supervise: supervise),
                  successTerminationBehavior: .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup)
        ]
        let limits = configuration.limits
        let http = HTTP1Channel.Configuration(
            idleTimeout: .nanoseconds(Int64(limits.idleTimeout.components.seconds) * 1_000_000_000
                + limits.idleTimeout.components.attoseconds / 1_000_000_000),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.headerBytes, maxHeaderListSize: limits.headerBytes,
                                            maxHeaderFieldCount: limits.headerFields))
        let control = self.control
        let upgrade = HTTP1WebSocketUpgradeChannel.Configuration(http1: http, ws: WebSocketRoutes.configuration)
        // The Unix socket trusts its callers (its mode does); the TCP listener wants the admin token on upgrades too.
        let headTimeout = http.idleTimeout ?? .seconds(60)
        func builder(token: String?, web: WebDashboard? = nil) -> HTTPServerBuilder {
            HTTPServerBuilder { responder in
                HeadDeadlineChannel(inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder, configuration: upgrade,
                    shouldUpgrade: { request, _, logger in
                        await WebSocketRoutes.decide(request, control: control, token: token, web: web, logger: logger)
                    }), timeout: headTimeout)
            }
        }
        let server = builder(token: nil)
        let unix: any Service
        switch listener {
        case .inherited(let inherited):
            unix = InheritedSocketServer(
                descriptor: inherited, responder: api.router().buildResponder(), http: upgrade, control: control,
                maxConnections: limits.connections,
                logger: logger,
                onServerRunning: {
                    DaemonSocket.closeListenersOnExec()
                    await onListening(.unixSocket(socketPath))
                })
        case .staged(let staging):
            unix = Application(
                router: api.router(),
                server: server,
                configuration: .init(address: .unixDomainSocket(path: staging.bindPath), serverName: nil,
                                     availableConnectionsDelegate: MaximumAvailableConnections(limits.connections)),
                onServerRunning: { _ in
                    DaemonSocket.closeListenersOnExec()
                    if let problem = staging.publish() {
                        logger.error("socket not published", metadata: ["error": "\(problem)"])
                        return
                    }
                    await onListening(.unixSocket(socketPath))
                },
                logger: logger)
        }
        services.append(.init(service: unix, successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
        if let tcp = configuration.tcp {
            let web = tcp.web.map { assets in
                WebDashboard(assets: assets, sessions: WebSessions(token: tcp.token), secure: tcp.tls != nil)
            }
            let server = builder(token: tcp.token, web: web)
            let app = Application(
                router: api.router(token: tcp.token, peerToken: tcp.peerToken, metricsToken: tcp.metricsToken, web: web),
                server: try tcp.tls.map { files in
                    guard let wrapping = configuration.tlsServer else {
                        throw DaemonError.invalidConfiguration("--api-tls: this daemon was built without TLS support")
                    }
                    return try wrapping.wrap(server, files: files)
                } ?? server,
                configuration: .init(address: .hostname(tcp.address.host, port: tcp.address.port), serverName: nil,
                                     availableConnectionsDelegate: MaximumAvailableConnections(limits.connections)),
                onServerRunning: { channel in
                    DaemonSocket.closeListenersOnExec()
                    let port = channel.localAddress?.port ?? tcp.address.port
                    await onListening(.tcp((try? tcp.address.with(port: port)) ?? tcp.address))
                },
                logger: logger)
            services.append(.init(service: app, successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let listener = configuration.web {
            let web = WebDashboard(assets: listener.assets,
                                   sessions: WebSessions(token: listener.token, limits: listener.sessionLimits))
            let app = Application(
                router: api.router(token: listener.token, web: web),
                server: builder(token: listener.token, web: web),
                configuration: .init(address: .hostname(listener.address.host, port: listener.address.port),
                                     serverName: nil,
                                     availableConnectionsDelegate: MaximumAvailableConnections(limits.connections)),
                onServerRunning: { channel in
                    DaemonSocket.closeListenersOnExec()
                    let port = channel.localAddress?.port ?? listener.address.port
                    await onListening(.web((try? listener.address.with(port: port)) ?? listener.address))
                },
                logger: logger)
            services.append(.init(service: app, successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        // Services shut down in reverse order: the listeners first, then the supervisor.
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let onStopping = self.onStopping
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            onStopping()
        }
    }
}

/// The daemon's Unix socket: passed by systemd, or bound by the daemon in a staging folder and moved into place.
private enum UnixListener {
    case inherited(Int32)
    case staged(DaemonSocket.Staging)
}

/// Runs the supervisor loop until graceful shutdown, then cancels it.
struct SupervisorService: Service {
    let supervise: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await supervise()
        }
    }
}
