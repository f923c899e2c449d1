#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif
import CorralModel
import JSON

/// Failures of the transport, not of the operation (those arrive as `ControlError`).
public enum CorralClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing listens where the client looked.
    case noDaemon(String)
    /// The TCP listener refused the token (HTTP 401).
    case unauthorized(String)
    /// The token is valid but does not open this route (HTTP 403: a peer token outside the migration routes).
    case forbidden(String)
    /// The daemon could not be reached or the connection broke.
    case transport(String)
    /// The daemon answered something this client does not understand.
    case badResponse(String)
    /// The daemon does not offer this operation (HTTP 501).
    case notSupported(String)

    public var description: String {
        switch self {
        case .noDaemon(let m), .unauthorized(let m), .forbidden(let m), .transport(let m), .badResponse(let m),
             .notSupported(let m):
            return m
        }
    }
}

/// A typed client of the daemon's API (docs/api.md), over its Unix socket or over TCP with a
/// bearer token. Operation failures throw `ControlError` as the daemon reported it; transport
/// failures throw `CorralClientError`.
///
/// Each call is one HTTP/1.1 exchange on its own connection (`HTTPCall`): no event loop, no pool, nothing to
/// shut down, so a CLI process that makes one call pays only for that call.
public struct CorralClient: Sendable {
    public enum Endpoint: Sendable, Equatable {
        case unixSocket(String)
        case tcp(HostPort, token: String)
    }

    public let endpoint: Endpoint
    /// Over TCP: mutual TLS with these credentials (a daemon started with `--api-tls`); nil: plain HTTP.
    public let tls: TLSFiles?
    /// Requests other than `stop` get this long to answer (`up` waits for QEMU to boot).
    private let requestTimeout: Duration = .seconds(600)

    public init(endpoint: Endpoint, tls: TLSFiles? = nil) {
        self.endpoint = endpoint
        self.tls = tls
    }

    /// Runs `body` with a client (kept for symmetry with clients that hold resources; this one holds none).
    @discardableResult
    public static func withClient<T: Sendable>(
        _ endpoint: Endpoint, tls: TLSFiles? = nil, _ body: (CorralClient) async throws -> T
    ) async throws -> T {
        try await body(CorralClient(endpoint: endpoint, tls: tls))
    }

    // MARK: Operations

    public func health() async throws -> HealthReply {
        try await call("GET", "/v1/health", as: HealthReply.self)
    }

    public func up(_ request: UpRequest) async throws -> VMStatus {
        try await call("POST", "/v1/vms", body: request, as: VMStatus.self)
    }

    public func list() async throws -> [VMStatus] {
        try await call("GET", "/v1/vms", as: [VMStatus].self)
    }

    public func status(_ name: String) async throws -> VMStatus {
        try await call("GET", vmPath(name), as: VMStatus.self)
    }

    public func start(_ name: String) async throws -> VMStatus {
        try await call("POST", vmPath(name, "start"), as: VMStatus.self)
    }

    /// `timeout` nil lets the daemon use its default (30 s).
    public func stop(_ name: String, timeout: Duration? = nil) async throws -> VMStatus {
        let seconds = timeout.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        let wait = Duration.seconds((seconds ?? StopRequest.defaultTimeoutSeconds) + 120)
        return try await call("POST", vmPath(name, "stop"), body: StopRequest(timeoutSeconds: seconds),
                              as: VMStatus.self, timeout: wait)
    }

    public func kill(_ name: String) async throws -> VMStatus {
        try await call("POST", vmPath(name, "kill"), as: VMStatus.self)
    }

    public func remove(_ name: String, force: Bool = false, volumes: VolumeDisposition? = nil) async throws {
        let query = "?force=\(force)" + (volumes.map { "&volumes=\($0.rawValue)" } ?? "")
        _ = try await collect(try await send("DELETE", vmPath(name) + query, body: nil))
    }

    public func pause(_ name: String) async throws -> VMStatus {
        try await call("POST", vmPath(name, "pause"), as: VMStatus.self)
    }

    public func resume(_ name: String) async throws -> VMStatus {
        try await call("POST", vmPath(name, "resume"), as: VMStatus.self)
    }

    /// QMP's `return` value.
    public func qmp(_ name: String, command: String, arguments: JSONObject? = nil) async throws -> JSONValue {
        let reply = try await call("POST", vmPath(name, "qmp"), body: QMPRequest(command: command, arguments: arguments),
                                   as: QMPReply.self)
        return reply.return
    }

    /// The last `lines` lines of the serial console; with `follow`, then new ones until the
    /// stream is dropped (or the daemon stops).
    public func console(_ name: String, lines: Int? = nil, follow: Bool = false) async throws
        -> AsyncThrowingStream<String, any Error>
    {
        var query = "?follow=\(follow)"
        if let lines { query += "&lines=\(lines)" }
        let response = try await send("GET", vmPath(name, "console") + query, body: nil, streaming: true)
        try await throwIfFailed(response)
        return self.lines(of: response.body) { $0 }
    }

    /// Past events (at most `history`) then, with `follow`, live ones, for one VM or (nil) every VM. Without
    /// `follow` the stream ends after the past ones.
    public func events(vm: String? = nil, history: Int = 0, follow: Bool = true) async throws
        -> AsyncThrowingStream<CorralEvent, any Error>
    {
        var query = "?history=\(history)"
        if !follow { query += "&follow=false" }
        if let vm { query += "&vm=" + Self.percentEncoded(vm) }
        let response = try await send("GET", "/v1/events" + query, body: nil, streaming: true)
        try await throwIfFailed(response)
        return self.lines(of: response.body) { line throws(BodyError) in
            try WireCoding.decode(CorralEvent.self, from: Data(line.utf8))
        }
    }

    // MARK: Plumbing

    package func call<Reply: Decodable>(
        _ method: String, _ path: String, as type: Reply.Type, timeout: Duration? = nil
    ) async throws -> Reply {
        try await call(method, path, body: Optional<StopRequest>.none, as: type, timeout: timeout)
    }

    package func call<Body: Encodable, Reply: Decodable>(
        _ method: String, _ path: String, body: Body?, as type: Reply.Type, timeout: Duration? = nil
    ) async throws -> Reply {
        let data = try body.map { try WireCoding.encode($0) }
        let bytes = try await collect(try await send(method, path, body: data, timeout: timeout))
        return try Self.reply(type, from: bytes, to: method, path)
    }

    /// The same exchange on the calling thread (`HTTPCall.exchange`): no task, no second thread.
    private func callBlocking<Body: Encodable, Reply: Decodable>(
        _ method: String, _ path: String, body: Body?, as type: Reply.Type
    ) throws -> Reply {
        let data = try body.map { try WireCoding.encode($0) }
        let (request, target) = prepared(method, path, body: data)
        let answer: (head: HTTPResponseHead, body: [UInt8])
        do {
            answer = try HTTPCall.exchange(request, to: target, timeout: requestTimeout)
        } catch {
            throw transportError(error)
        }
        let bytes = Data(answer.body)
        if answer.head.status >= 400 { throw Self.failure(status: answer.head.status, body: bytes) }
        return try Self.reply(type, from: bytes, to: method, path)
    }

    private static func reply<Reply: Decodable>(_ type: Reply.Type, from bytes: Data, to method: String,
                                                _ path: String) throws -> Reply {
        do {
            return try WireCoding.decode(type, from: bytes)
        } catch {
            throw CorralClientError.badResponse("unexpected reply to \(method) \(path): \(error.message)")
        }
    }

    /// The HTTP request for an API call, and where it goes (with the bearer token over TCP).
    private func prepared(_ method: String, _ path: String, body: Data?) -> (HTTPRequest, HTTPEndpoint) {
        var headers: [(name: String, value: String)] = []
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let target: HTTPEndpoint
        switch endpoint {
        case .unixSocket(let path):
            target = .unixSocket(path)
        case .tcp(let address, let token):
            target = .tcp(address, tls: tls)
            headers.append(("Authorization", "Bearer \(token)"))
        }
        return (HTTPRequest(method: method, target: path, headers: headers, body: body.map { Array($0) }), target)
    }

    /// Sends one request and returns at its response head. A `streaming` response's body may take as long as it
    /// takes; otherwise `timeout` (default: 10 minutes) covers the whole answer.
    package func send(_ method: String, _ path: String, body: Data?, timeout: Duration? = nil,
                      streaming: Bool = false) async throws -> HTTPStreamingResponse
    {
        let (request, target) = prepared(method, path, body: body)
        do {
            return try await HTTPCall.send(request, to: target, timeout: timeout ?? requestTimeout,
                                           timeoutCoversBody: !streaming)
        } catch .cancelled {
            throw CancellationError()
        } catch {
            throw transportError(error)
        }
    }

    func vmPath(_ name: String, _ action: String? = nil, _ id: String? = nil) -> String {
        "/v1/vms/" + Self.percentEncoded(name) + (action.map { "/" + $0 } ?? "")
            + (id.map { "/" + Self.percentEncoded($0) } ?? "")
    }

    /// Every byte but unreserved ones (RFC 3986 §2.3) percent-encoded.
    package static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                encoded.append(Character(Unicode.Scalar(byte)))
            default:
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 15, radix: 16, uppercase: true)
            }
        }
        return encoded
    }

    /// What a failed exchange means to the user: no daemon, no permission, or a broken conversation.
    private func transportError(_ error: HTTPTransportError) -> CorralClientError {
        let place: String
        switch endpoint {
        case .unixSocket(let socket): place = socket
        case .tcp(let address, _): place = address.description
        }
        switch (endpoint, error) {
        case (.unixSocket(let socket), .connect(.connect(let code))):
            switch (code, SocketProbe.classify(connectErrno: code, path: socket)) {
            case (EACCES, _):
                return .transport("permission denied on \(socket): the daemon's socket is for root")
            case (_, .notASocket):
                return .noDaemon("\(socket) is not a socket: pass the daemon's socket with --socket (or set CORRAL_SOCKET)")
            case (ENOTDIR, _), (_, .absent), (_, .stale):
                return .noDaemon(
                    "no corral daemon answers on \(socket): start one with `corral daemon` (or `systemctl start corral`)")
            default:
                return .transport("\(socket): \(String(cString: strerror(code)))")
            }
        case (.unixSocket(let socket), .connect(let failure)):
            return .transport("\(socket): \(failure.message)")
        case (.tcp, .connect(.tls(let reason))):
            return .transport("\(place): \(reason) (mutual TLS: check the CA, this side's certificate and the daemon's)")
        case (.tcp, .connect(let failure)):
            return .noDaemon("no corral daemon answers on \(place): \(failure.message)")
        case (_, .io(let failure)):
            return .transport("talking to the corral daemon on \(place) failed: \(failure.message)")
        case (_, .malformed(let problem)):
            return .badResponse("the corral daemon on \(place) sent a malformed response: \(problem)")
        case (_, .tooLarge(let limit)):
            return .badResponse("the corral daemon on \(place) sent more than \(limit) bytes")
        case (_, .cancelled):
            return .transport("the call to the corral daemon on \(place) was cancelled")
        }
    }

    /// The whole body; an error status becomes the error it stands for.
    package func collect(_ response: HTTPStreamingResponse) async throws -> Data {
        let bytes: [UInt8]
        do {
            bytes = try await response.collect()
        } catch let error as HTTPTransportError {
            if error == .cancelled { throw CancellationError() }
            throw transportError(error)
        }
        let data = Data(bytes)
        if response.head.status >= 400 { throw Self.failure(status: response.head.status, body: data) }
        return data
    }

    func throwIfFailed(_ response: HTTPStreamingResponse) async throws {
        guard response.head.status >= 400 else { return }
        _ = try await collect(response)
    }

    /// The error an error response stands for.
    static func failure(status: Int, body: Data) -> any Error {
        guard let decoded = try? WireCoding.decode(ErrorBody.self, from: body) else {
            let text = String(decoding: body.prefix(500), as: UTF8.self)
            return CorralClientError.badResponse("HTTP \(status) from the daemon: \(text)")
        }
        if let control = decoded.controlError { return control }
        if status == 401 || decoded.error == "unauthorized" { return CorralClientError.unauthorized(decoded.message) }
        if status == 403 || decoded.error == "forbidden" { return CorralClientError.forbidden(decoded.message) }
        if decoded.error == NotSupportedCode.code { return CorralClientError.notSupported(decoded.message) }
        return CorralClientError.badResponse("HTTP \(status): \(decoded.error): \(decoded.message)")
    }

    /// Splits a streamed body into lines and maps each; cancelling the consumer cancels the read.
    func lines<Element: Sendable, Failure: Error>(
        of body: AsyncThrowingStream<[UInt8], any Error>, _ transform: @escaping @Sendable (String) throws(Failure) -> Element
    ) -> AsyncThrowingStream<Element, any Error> {
        AsyncThrowingStream { continuation in
            let reader = Task {
                var pending: [UInt8] = []
                do {
                    for try await piece in body {
                        pending.append(contentsOf: piece)
                        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = String(decoding: pending[..<newline], as: UTF8.self)
                            pending.removeSubrange(...newline)
                            continuation.yield(try transform(line))
                        }
                    }
                    if !pending.isEmpty { continuation.yield(try transform(String(decoding: pending, as: UTF8.self))) }
                    continuation.finish()
                } catch let error as BodyError {
                    continuation.finish(throwing: CorralClientError.badResponse("unexpected stream line: \(error.message)"))
                } catch let error as HTTPTransportError {
                    continuation.finish(throwing: error == .cancelled || Task.isCancelled
                        ? CancellationError() : transportError(error))
                } catch {
                    continuation.finish(throwing: Task.isCancelled ? CancellationError() : error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }
}

// MARK: Blocking calls

extension CorralClient {
    /// The calls a one-shot command makes, on the calling thread and outside Swift concurrency: `corral up`,
    /// `ls` and `status` run without starting the concurrency runtime or an I/O thread, which is a measurable part
    /// of a process that lives for a few milliseconds (docs/benchmarks.md). Same requests, replies and errors as
    /// the async calls.
    public var blocking: Blocking { Blocking(client: self) }

    public struct Blocking: Sendable {
        let client: CorralClient

        public func up(_ request: UpRequest) throws -> VMStatus {
            try client.callBlocking("POST", "/v1/vms", body: request, as: VMStatus.self)
        }

        public func list() throws -> [VMStatus] {
            try client.callBlocking("GET", "/v1/vms", body: Optional<StopRequest>.none, as: [VMStatus].self)
        }

        public func cluster() throws -> ClusterReport {
            try client.callBlocking("GET", "/v1/cluster", body: Optional<StopRequest>.none, as: ClusterReport.self)
        }

        public func status(_ name: String) throws -> VMStatus {
            try client.callBlocking("GET", client.vmPath(name), body: Optional<StopRequest>.none, as: VMStatus.self)
        }
    }
}
