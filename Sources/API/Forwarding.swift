import CorralControl
import CorralModel
import CorralWire
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// In a cluster, a request about a VM this daemon does not have (`/v1/vms/{name}…`) goes to the VM's owner, and a
/// request about another host (`/v1/hosts/{name}/…`) to that host; the answer, streamed or not, comes back as the
/// owner gave it.
///
/// The forwarded request carries the caller's own credentials: over TCP the admin token it presented; from the Unix
/// socket (root on this host) the admin token this daemon's TCP listener takes, which every host of a cluster
/// shares. A request with the peer token is never forwarded (a peer asks about this host's copy, and the peer token
/// must not reach other hosts' routes), and a forwarded request is never forwarded again (`X-Corral-Forwarded`).
struct ForwardingMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext
    static let header = HTTPField.Name("X-Corral-Forwarded")!
    /// Longest body forwarded (requests are small JSON documents).
    static let maxBody = 1 << 20

    let control: any DaemonControl
    /// This listener's admin token; nil: the Unix socket.
    let token: String?
    /// What a Unix-socket request is forwarded with.
    let adminToken: String?
    let tls: TLSFiles?
    let logger: Logger

    /// What a request is about, when it is something that may live on another host.
    static func subject(method: HTTPTypes.HTTPRequest.Method, path: String) -> ForwardSubject? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard parts.count >= 3, parts[0] == "v1", !parts.contains(where: \.isEmpty) else { return nil }
        let name = parts[2].removingPercentEncoding ?? parts[2]
        switch parts[1] {
        case "vms": return .vm(name)
        case "hosts" where parts.count == 4: return .host(name)
        default: return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard request.headers[Self.header] == nil,
              let subject = Self.subject(method: request.method, path: request.uri.path),
              let credential = credential(request, context),
              let target = await control.forwardTarget(subject)
        else { return try await next(request, context) }

        var request = request
        let body = try await request.collectBody(upTo: Self.maxBody)
        var headers: [(name: String, value: String)] = [
            ("Authorization", "Bearer \(credential)"), (Self.header.rawName, target.host),
        ]
        if let type = request.headers[.contentType] { headers.append(("Content-Type", type)) }
        let outgoing = CorralWire.HTTPRequest(method: request.method.rawValue, target: request.uri.description, headers: headers,
                                   body: body.readableBytes > 0 || request.method == .post ? Array(body.readableBytesView) : nil)
        let response: HTTPStreamingResponse
        do {
            response = try await HTTPCall.send(outgoing, to: .tcp(target.address, tls: tls), timeout: .seconds(600),
                                               timeoutCoversBody: false)
        } catch {
            throw ControlError.unreachable("this request belongs to host \(target.host) (\(target.address)), "
                + "which cannot be reached: \(error)")
        }
        logger.debug("forwarded", metadata: ["path": "\(request.uri.path)", "to": "\(target.host)"])
        var fields = HTTPFields()
        if let type = response.head.header("Content-Type") { fields[.contentType] = type }
        fields[Self.header] = target.host
        let pieces = response.body
        return Response(status: .init(code: response.head.status), headers: fields, body: ResponseBody { writer in
            do {
                for try await piece in pieces { try await writer.write(ByteBuffer(bytes: piece)) }
            } catch {
                // The owner went away mid-answer: the caller sees the stream end without its last line.
            }
            try await writer.finish(nil)
        })
    }

    /// The token a forwarded request carries; nil: not forwarded.
    private func credential(_ request: Request, _ context: CorralRequestContext) -> String? {
        guard let token else { return adminToken }
        // A dashboard session was opened with the admin token: the request goes on with it.
        if context.webSession != nil { return token }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), BearerToken.matches(String(header.dropFirst(7)), token) else { return nil }
        return token
    }
}
