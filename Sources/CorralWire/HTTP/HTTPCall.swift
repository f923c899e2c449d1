#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import CorralModel
import UnixSockets

/// Where an HTTP server listens.
package enum HTTPEndpoint: Sendable, Equatable {
    case unixSocket(String)
    /// With `tls`, the exchange runs over mutual TLS with these credentials.
    case tcp(HostPort, tls: TLSFiles? = nil)

    /// The Host header's value.
    var hostHeader: String {
        switch self {
        case .unixSocket: return "localhost"
        case .tcp(let address, _): return address.description
        }
    }
}

/// Why an exchange failed, before or after the response head.
package enum HTTPTransportError: Error, Sendable, Equatable {
    /// Could not connect (nothing listens, refused, unreachable, timed out).
    case connect(SocketFailure)
    /// The connection broke or a read timed out.
    case io(SocketFailure)
    /// The server sent something that is not HTTP/1.1.
    case malformed(HTTPParseError)
    /// The body was longer than the caller allowed.
    case tooLarge(Int)
    case cancelled
}

/// A response whose body is still arriving.
package struct HTTPStreamingResponse: Sendable {
    package var head: HTTPResponseHead
    /// The body in pieces as they arrive; dropping the stream closes the connection.
    package var body: AsyncThrowingStream<[UInt8], any Error>

    /// The whole body, at most `limit` bytes.
    package func collect(limit: Int = 64 << 20) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await piece in body {
            bytes += piece
            if bytes.count > limit { throw HTTPTransportError.tooLarge(limit) }
        }
        return bytes
    }
}

/// One HTTP/1.1 exchange on its own connection (`Connection: close`). `send` runs the blocking socket I/O on a
/// thread of its own so no Swift concurrency thread ever waits on a socket; cancelling the calling task, or
/// dropping the body stream, shuts the socket down and the thread ends. `exchange` runs the same I/O on the
/// caller's thread, for a caller outside Swift concurrency.
package final class HTTPCall: Sendable {
    /// The connection once it exists, and whether the call was cancelled (before or after that).
    private let state = Mutex<(socket: StreamSocket?, cancelled: Bool)>((nil, false))

    private init() {}

    /// Sends `request` and returns once the response head has arrived.
    /// - Parameters:
    ///   - connectTimeout: seconds a TCP connect may take.
    ///   - timeout: how long the head may take to arrive; with `timeoutCoversBody`, the whole body too.
    package static func send(_ request: HTTPRequest, to endpoint: HTTPEndpoint, connectTimeout: Double = 5,
                             timeout: Duration?, timeoutCoversBody: Bool) async throws(HTTPTransportError)
        -> HTTPStreamingResponse
    {
        let call = HTTPCall()
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        // Only this function and its caller hold the stream, so the caller dropping it terminates it.
        let (body, bodyContinuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        bodyContinuation.onTermination = { _ in call.cancel() }
        do {
            let head = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (head: CheckedContinuation<HTTPResponseHead, any Error>) in
                    IOThread.start {
                        call.run(request, endpoint, connectTimeout, headDeadline: deadline,
                                 bodyDeadline: timeoutCoversBody ? deadline : nil, head: head, body: bodyContinuation)
                    }
                }
            } onCancel: {
                call.cancel()
            }
            return HTTPStreamingResponse(head: head, body: body)
        } catch let error as HTTPTransportError {
            throw error
        } catch {
            throw .cancelled
        }
    }

    /// Shuts the connection down (now, or as soon as it exists).
    private func cancel() {
        state.withLock { state in
            state.cancelled = true
            state.socket?.shutdown()
        }
    }

    private func run(_ request: HTTPRequest, _ endpoint: HTTPEndpoint, _ connectTimeout: Double,
                     headDeadline: ContinuousClock.Instant?, bodyDeadline: ContinuousClock.Instant?,
                     head: CheckedContinuation<HTTPResponseHead, any Error>,
                     body: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
        var headSent = false
        do throws(HTTPTransportError) {
            try exchange(request, endpoint, connectTimeout, headDeadline: headDeadline, bodyDeadline: bodyDeadline,
                         head: { responseHead in
                             headSent = true
                             head.resume(returning: responseHead)
                         },
                         body: { bytes in body.yield(bytes) })
            body.finish()
        } catch {
            if headSent { body.finish(throwing: error) } else { head.resume(throwing: error) }
        }
    }

    /// Sends `request` and waits for the whole answer on the calling thread: for a short-lived process that has
    /// nothing else to do meanwhile (`corral up`), this saves starting a thread and Swift's concurrency runtime.
    /// `timeout` covers the whole exchange; the body may be at most `limit` bytes.
    package static func exchange(_ request: HTTPRequest, to endpoint: HTTPEndpoint, connectTimeout: Double = 5,
                                 timeout: Duration?, limit: Int = 64 << 20)
        throws(HTTPTransportError) -> (head: HTTPResponseHead, body: [UInt8])
    {
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        try HTTPCall().exchange(request, endpoint, connectTimeout, headDeadline: deadline, bodyDeadline: deadline,
                                head: { head = $0 },
                                body: { bytes throws(HTTPTransportError) in
                                    body += bytes
                                    if body.count > limit { throw .tooLarge(limit) }
                                })
        guard let head else { throw .malformed(HTTPParseError("the connection closed before a response")) }
        return (head, body)
    }

    /// The exchange itself, blocking: connects, writes the request, hands over the head and each piece of the
    /// body as they arrive, and returns once the body is complete. An error `body` throws ends the exchange.
    private func exchange(_ request: HTTPRequest, _ endpoint: HTTPEndpoint, _ connectTimeout: Double,
                          headDeadline: ContinuousClock.Instant?, bodyDeadline: ContinuousClock.Instant?,
                          head: (HTTPResponseHead) -> Void, body: ([UInt8]) throws(HTTPTransportError) -> Void)
        throws(HTTPTransportError)
    {
        let connection: StreamSocket
        do throws(SocketFailure) {
            switch endpoint {
            case .unixSocket(let path):
                do throws(UnixStreamConnect.Failure) {
                    connection = try StreamSocket.connect(path: path)
                } catch {
                    throw SocketFailure(error)
                }
            case .tcp(let address, _):
                connection = try TCPConnect.connect(host: address.host, port: address.port, timeout: connectTimeout)
            }
        } catch {
            throw .connect(error)
        }
        defer { connection.close() }
        state.withLock { state in
            state.socket = connection
            if state.cancelled { connection.shutdown() }
        }
        let stream: any ByteStream
        if case .tcp(let address, let credentials?) = endpoint {
            let session: TLSSession
            do throws(SocketFailure) {
                session = try TLSSession(over: connection, host: address.host, credentials: credentials)
            } catch {
                throw error == .shutDown ? .cancelled : .connect(error)
            }
            stream = session
        } else {
            stream = connection
        }
        defer { (stream as? TLSSession)?.close() }

        var decoder = HTTPResponseDecoder()
        var headSeen = false
        do throws(SocketFailure) {
            try stream.send(request.serialized(host: endpoint.hostHeader))
        } catch {
            throw error == .shutDown ? .cancelled : .io(error)
        }
        while true {
            while let event = try mapParse({ () throws(HTTPParseError) in try decoder.next() }) {
                switch event {
                case .head(let responseHead):
                    headSeen = true
                    head(responseHead)
                case .body(let bytes):
                    try body(bytes)
                case .end:
                    return
                }
            }
            let bytes: [UInt8]
            do throws(SocketFailure) {
                bytes = try stream.receive(deadline: headSeen ? bodyDeadline : headDeadline)
            } catch {
                throw error == .shutDown ? .cancelled : .io(error)
            }
            if bytes.isEmpty {
                _ = try mapParse({ () throws(HTTPParseError) in try decoder.endOfInput() })
                return
            }
            decoder.feed(bytes)
        }
    }

    private func mapParse<T>(_ body: () throws(HTTPParseError) -> T) throws(HTTPTransportError) -> T {
        do { return try body() } catch { throw .malformed(error) }
    }
}
