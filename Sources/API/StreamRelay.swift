import Hummingbird
import NIOCore
import ServiceLifecycle

/// A streamed response body that ends when its source ends, when the client goes away, or when
/// the daemon shuts down — whichever comes first.
///
/// HTTP/1 gives a server no signal while it only writes: a quiet stream would hold its source
/// (a log follower's thread, an event subscription) until the next write failed. So the relay
/// watches the connection itself (input closed, channel inactive) and ends the stream at once.
enum StreamRelay {
    typealias Sink = AsyncStream<ByteBuffer>.Continuation

    static func body(
        first: ByteBuffer?,
        channel: any Channel,
        pump: @escaping @Sendable (Sink) async -> Void
    ) -> ResponseBody {
        ResponseBody { writer in
            let (relay, sink) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .unbounded)
            if let first, first.readableBytes > 0 { sink.yield(first) }
            let watcher = DisconnectWatcher { sink.finish() }
            try? await channel.pipeline.addHandler(watcher, position: .first).get()
            channel.closeFuture.whenComplete { _ in sink.finish() }
            defer { channel.pipeline.removeHandler(watcher, promise: nil) }

            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        await pump(sink)
                        sink.finish()
                    }
                    for await buffer in relay {
                        try await writer.write(buffer)
                    }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                sink.finish()
            }
            try await writer.finish(nil)
        }
    }
}

/// Calls `onClose` once the peer closes its side or the connection drops; passes everything on.
final class DisconnectWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    private let onClose: @Sendable () -> Void

    init(onClose: @escaping @Sendable () -> Void) {
        self.onClose = onClose
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { onClose() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        onClose()
        context.fireErrorCaught(error)
    }
}
