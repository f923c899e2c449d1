import Foundation
import CorralModel
import Hummingbird
import JSON
import Logging
import NIOCore
import CorralWire
import CorralControl
import LogTail

/// The daemon's HTTP+JSON API: a Hummingbird router over any `DaemonControl` (docs/api.md).
///
/// The same routes serve the Unix socket (no token) and the TCP listener, where `token` makes
/// every request present `Authorization: Bearer <token>` before anything else happens.
public struct CorralAPI: Sendable {
    public let control: any DaemonControl
    public let logger: Logger

    /// `console` sends this many past lines when the request names no `lines`.
    public static let defaultConsoleLines = 50

    /// In a cluster: the admin token every host accepts (`--token-file`, the same file on every host), with which
    /// a request that arrived on the Unix socket (root on this host) is forwarded to the VM's owner; a request that
    /// arrived over TCP is forwarded with its own token. nil: requests arriving on the socket are not forwarded.
    public var forwardingToken: String?
    /// Mutual TLS towards other hosts' APIs (`--api-tls`).
    public var forwardingTLS: TLSFiles?

    public init(control: any DaemonControl, logger: Logger = Logger(label: "corral.api"),
                forwardingToken: String? = nil, forwardingTLS: TLSFiles? = nil) {
        self.control = control
        self.logger = logger
        self.forwardingToken = forwardingToken
        self.forwardingTLS = forwardingTLS
    }

    /// The router; `token` nil serves without authentication (the Unix socket's case). With `web` (the dashboard's
    /// listener, which needs `token`) it also serves the dashboard, and a session cookie stands for the token.
    public func router(token: String? = nil, peerToken: String? = nil, metricsToken: String? = nil,
                       web: WebDashboard? = nil) -> Router<CorralRequestContext>
    {
        // (the Unix socket's router has no token of its own: it forwards with the TCP listener's admin token)
        let router = Router(context: CorralRequestContext.self)
        if web != nil { router.add(middleware: WebHeadersMiddleware()) }
        router.add(middleware: ErrorMiddleware(logger: logger))
        if let token {
            let bearer = BearerTokenMiddleware(token: token, peerToken: peerToken, metricsToken: metricsToken)
            if let web {
                router.add(middleware: WebAuthMiddleware(bearer: bearer, web: web))
            } else {
                router.add(middleware: bearer)
            }
        }
        router.add(middleware: QueryKeysMiddleware())
        // After the token check: a request is forwarded with the credentials it came with.
        router.add(middleware: ForwardingMiddleware(control: control, token: token, adminToken: forwardingToken,
                                                    tls: forwardingTLS, logger: logger))

        // Each area registers its own routes (one small function per area, one file per new area).
        let v1 = router.group("v1")
        addLifecycleRoutes(v1)
        addStreamRoutes(v1)
        addHotplugRoutes(v1)
        addTuningRoutes(v1)
        addMigrationRoutes(v1)
        addNetworkRoutes(v1)
        addClusterRoutes(v1)
        addMetricsRoutes(router)
        if let web { addWebRoutes(router, web: web) }
        return router
    }

    /// health, list, up, status, remove, start/stop/kill/pause/resume, qmp.
    func addLifecycleRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let control = self.control
        v1.get("health") { _, _ in
            try Reply.json(HealthReply(status: "ok", version: CorralVersion.string))
        }
        v1.get("vms") { _, _ in
            try Reply.json(await control.list())
        }
        v1.post("vms") { request, context in
            let up = try await Self.decodeBody(UpRequest.self, request, context)
            return try Reply.json(try await control.up(up), status: .created)
        }
        v1.get("vms/:name") { _, context in
            try Reply.json(try await control.status(Self.name(context)))
        }
        v1.delete("vms/:name") { request, context in
            let force = try Self.boolQuery(request, "force") ?? false
            var volumes: VolumeDisposition?
            if let text = request.uri.queryParameters.get("volumes") {
                guard let value = VolumeDisposition(rawValue: String(text)) else {
                    throw ControlError.invalidRequest("volumes must be delete or keep, got \(text)")
                }
                volumes = value
            }
            try await control.remove(Self.name(context), force: force, volumes: volumes)
            return Response(status: .noContent)
        }
        v1.post("vms/:name/start") { _, context in
            try Reply.json(try await control.start(Self.name(context)))
        }
        v1.post("vms/:name/stop") { request, context in
            let body = try await Self.decodeOptionalBody(StopRequest.self, request, context)
            let seconds = body?.timeoutSeconds ?? StopRequest.defaultTimeoutSeconds
            guard seconds.isFinite, seconds >= 0, seconds <= 86_400 else {
                throw ControlError.invalidRequest("timeoutSeconds must be between 0 and 86400, got \(seconds)")
            }
            let timeout = Duration.milliseconds(Int64((seconds * 1000).rounded()))
            return try Reply.json(try await control.stop(Self.name(context), timeout: timeout))
        }
        v1.post("vms/:name/kill") { _, context in
            try Reply.json(try await control.kill(Self.name(context)))
        }
        v1.post("vms/:name/pause") { _, context in
            try Reply.json(try await control.pause(Self.name(context)))
        }
        v1.post("vms/:name/resume") { _, context in
            try Reply.json(try await control.resume(Self.name(context)))
        }
        v1.post("vms/:name/qmp") { request, context in
            let body = try await Self.decodeBody(QMPRequest.self, request, context)
            guard !body.command.isEmpty else { throw ControlError.invalidRequest("command must not be empty") }
            var arguments: JSONObject?
            switch body.arguments {
            case nil, .null?: arguments = nil
            case .object(let object)?: arguments = object
            case let other?:
                throw ControlError.invalidRequest("arguments must be a JSON object, got \(other.compactText)")
            }
            let value = try await control.qmp(Self.name(context), command: body.command, arguments: arguments)
            return try Reply.json(QMPReply(return: value))
        }
    }

    /// The serial console and the event stream (both streamed).
    func addStreamRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let control = self.control
        v1.get("vms/:name/console") { request, context in
            let lines = try Self.intQuery(request, "lines") ?? Self.defaultConsoleLines
            let follow = try Self.boolQuery(request, "follow") ?? false
            let path = try await control.serialLog(Self.name(context))
            return Self.console(path: path, lines: lines, follow: follow, channel: context.channel)
        }
        // WebSocket routes (`WebSocketRoutes`): the upgrade never reaches the router; a plain request does.
        for route in ["vms/:name/console/attach", "vms/:name/vnc"] {
            v1.get(RouterPath(route)) { _, context -> Response in
                _ = try await control.status(Self.name(context))
                throw ControlError.invalidRequest("this route is a WebSocket: send Upgrade: websocket "
                    + "(corral console NAME --attach, corral vnc NAME)")
            }
        }
        v1.get("vms/:name/screenshot") { _, context in
            let png = try await control.screenshot(Self.name(context))
            var headers = HTTPFields()
            headers[.contentType] = "image/png"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: png)))
        }
        v1.get("events") { request, context in
            let history = try Self.intQuery(request, "history") ?? 0
            let follow = try Self.boolQuery(request, "follow") ?? true
            let vm = request.uri.queryParameters.get("vm")
            if let vm, vm.isEmpty { throw ControlError.invalidRequest("vm must not be empty") }
            let events = await control.events(vm: vm, history: history, follow: follow)
            return Self.events(events, channel: context.channel)
        }
    }

    // MARK: Streaming routes

    private static func console(path: String, lines: Int, follow: Bool, channel: any Channel) -> Response {
        let tail = SerialTail.read(path: path, lines: lines, includePartial: !follow)
        var head = ByteBuffer()
        for line in tail.lines { head.writeString(line + "\n") }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        guard follow else {
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: head))
        }
        let body = StreamRelay.body(first: head, channel: channel) { sink in
            let follower = LogFollower(path: path)
            for await line in follower.lines(from: tail.resumeOffset) {
                sink.yield(ByteBuffer(string: line + "\n"))
            }
            follower.stop()
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    private static func events(_ events: AsyncStream<CorralEvent>, channel: any Channel) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        let body = StreamRelay.body(first: nil, channel: channel) { sink in
            let encoder = WireCoding.encoder()
            for await event in events {
                guard var data = try? encoder.encode(event) else { continue }
                data.append(UInt8(ascii: "\n"))
                sink.yield(ByteBuffer(bytes: data))
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    // MARK: Request helpers

    static func name(_ context: CorralRequestContext) throws -> String {
        try parameter("name", context)
    }

    /// A path parameter, percent-decoded.
    static func parameter(_ key: String, _ context: CorralRequestContext) throws -> String {
        let value = try context.parameters.require(key)
        return value.removingPercentEncoding ?? value
    }

    static func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request, _ context: CorralRequestContext)
        async throws -> T
    {
        guard let value = try await decodeOptionalBody(type, request, context) else {
            throw ControlError.invalidRequest("missing JSON body")
        }
        return value
    }

    /// nil for an empty body.
    static func decodeOptionalBody<T: Decodable>(_ type: T.Type, _ request: Request, _ context: CorralRequestContext)
        async throws -> T?
    {
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { return nil }
        do {
            return try WireCoding.decode(type, from: Data(buffer.readableBytesView))
        } catch {
            throw ControlError.invalidRequest(error.message)
        }
    }

    static func boolQuery(_ request: Request, _ key: String) throws(ControlError) -> Bool? {
        guard let text = request.uri.queryParameters.get(key) else { return nil }
        switch text {
        case "true", "1", "": return true
        case "false", "0": return false
        default: throw .invalidRequest("\(key) must be true or false, got \(text)")
        }
    }

    static func intQuery(_ request: Request, _ key: String) throws(ControlError) -> Int? {
        guard let text = request.uri.queryParameters.get(key) else { return nil }
        guard let value = Int(text), value >= 0, value <= 1_000_000 else {
            throw .invalidRequest("\(key) must be a whole number from 0 to 1000000, got \(text)")
        }
        return value
    }
}

/// JSON responses.
enum Reply {
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try WireCoding.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ body: ErrorBody, status: Int) -> Response {
        let data = (try? WireCoding.encode(body)) ?? Data(#"{"error":"internal","message":"unencodable error"}"#.utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
