import CorralControl
import Hummingbird
import HummingbirdWebSocket
import HummingbirdCore
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The API served on a listening socket the daemon was given (systemd socket activation) instead of one it binds.
///
/// Hummingbird's `Application` only binds addresses itself, so this is the same HTTP/1 child channel and the same
/// router, accepted from the passed descriptor with NIO's `ServerBootstrap`. The socket file belongs to whoever
/// passed it: it is never unlinked, and closing our descriptor leaves theirs open, so clients that connect while
/// the daemon restarts wait in its backlog for the next daemon.
struct InheritedSocketServer: Service {
    let descriptor: Int32
    let responder: RouterResponder<CorralRequestContext>
    let http: HTTP1WebSocketUpgradeChannel.Configuration
    let control: any DaemonControl
    let maxConnections: Int
    let logger: Logger
    let onServerRunning: @Sendable () async -> Void

    func run() async throws {
        let responder = self.responder
        let logger = self.logger
        let control = self.control
        let child = HeadDeadlineChannel(inner: HTTP1WebSocketUpgradeChannel(responder: { request, writer, channel in
            let context = CorralRequestContext(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error
            } catch {
                // The routes map their errors to responses; anything else is the server's fault.
                logger.error("unhandled route error", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            try await writer.write(response: response.head, body: response.body)
        }, configuration: http, shouldUpgrade: { request, _, logger in
            await WebSocketRoutes.decide(request, control: control, token: nil, logger: logger)
        }), timeout: http.http1.idleTimeout ?? .seconds(60))

        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        let maxConnections = self.maxConnections
        let server = try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionCap(limit: maxConnections))
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .bind(NIOBSDSocket.Handle(descriptor), cleanupExistingSocketFile: false, serverBackPressureStrategy: nil) {
                channel -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value> in
                child.setup(channel: channel, logger: logger)
            }
        await withGracefulShutdownHandler {
            await onServerRunning()
            await withDiscardingTaskGroup { tasks in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            tasks.addTask { await child.handle(value: connection, logger: logger) }
                        }
                    }
                } catch {
                    logger.error("accepting on the passed socket failed", metadata: ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            // Stop accepting, let open requests finish, then close: the same as the daemon's own listeners.
            let done = server.channel.eventLoop.makePromise(of: Void.self)
            quiescing.initiateShutdown(promise: done)
        }
    }
}

/// At most `limit` open connections: past it the server channel stops reading (accepting), so new clients wait in
/// the kernel's backlog until one closes.
final class ConnectionCap: ChannelDuplexHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    typealias OutboundIn = Never

    private let limit: Int
    private var open = 0
    private var readWanted = false

    init(limit: Int) { self.limit = max(1, limit) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let connection = unwrapInboundIn(data)
        open += 1
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        connection.closeFuture.hop(to: context.eventLoop).whenComplete { _ in
            let (cap, context) = loopBound.value
            cap.open -= 1
            if cap.readWanted, cap.open < cap.limit {
                cap.readWanted = false
                context.read()
            }
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if open >= limit {
            readWanted = true
        } else {
            context.read()
        }
    }
}
