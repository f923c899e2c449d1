import CorralModel
import CorralWire
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /web/login`'s body.
struct WebLoginRequest: Decodable {
    var token: String
}

/// What the page learns about its session: the CSRF token to send back, and when the session ends.
struct WebSessionReply: Codable {
    var csrf: String
    var expiresAt: Double
}

extension CorralAPI {
    /// The dashboard: its page and files, and the session routes (`/web/session`, `/web/login`, `/web/logout`).
    func addWebRoutes(_ router: Router<CorralRequestContext>, web: WebDashboard) {
        router.get("/") { _, _ in
            var response = Self.file(web.assets.index)
            response.headers[HTTPField.Name("Content-Security-Policy")!] = WebDashboard.contentSecurityPolicy
            return response
        }
        router.get("/assets/:file") { _, context in
            let name = try Self.parameter("file", context)
            guard let file = web.assets.assets[name] else {
                throw ControlError.notFound("no dashboard file \(name)")
            }
            var response = Self.file(file)
            response.headers[.cacheControl] = "no-cache"
            return response
        }
        router.get("/web/session") { _, context in
            guard let session = context.webSession else {
                throw ControlError.invalidRequest("this request has no dashboard session (it came with the token)")
            }
            return try Reply.json(WebSessionReply(csrf: session.csrf, expiresAt: session.expiresAt))
        }
        router.post("/web/login") { request, context in
            // A login from another site's page is refused, like every cookie request that changes something.
            if let origin = request.headers[.origin], !web.isSameOrigin(origin, of: request.head) {
                return Reply.error(ErrorBody(error: "forbidden", message: "a login from \(origin) is refused"),
                                   status: 403)
            }
            guard request.headers[.contentType]?.hasPrefix("application/json") == true else {
                throw ControlError.invalidRequest("send the token as JSON: {\"token\": \"…\"}")
            }
            let login = try await Self.decodeBody(WebLoginRequest.self, request, context)
            switch await web.sessions.login(presented: login.token) {
            case .accepted(let session):
                var response = try Reply.json(WebSessionReply(csrf: session.csrf, expiresAt: session.expiresAt))
                response.headers[.setCookie] = WebCookie.setSession(
                    session, maxAge: Int(web.sessions.limits.lifetime), secure: web.secure)
                return response
            case .refused:
                return Reply.error(ErrorBody(error: "unauthorized", message: "wrong token"), status: 401)
            case .throttled(let seconds):
                var response = Reply.error(
                    ErrorBody(error: "too-many-requests",
                              message: "too many failed logins: try again in \(seconds) s"), status: 429)
                response.headers[.retryAfter] = "\(seconds)"
                return response
            }
        }
        router.post("/web/logout") { _, context in
            if let session = context.webSession { await web.sessions.logout(session.id) }
            var response = Response(status: .noContent)
            response.headers[.setCookie] = WebCookie.clear(secure: web.secure)
            return response
        }
    }

    static func file(_ file: WebAssets.File) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = file.contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}
