import CorralWire
import HTTPTypes
import Hummingbird
import NIOCore

/// The web dashboard on a listener: its files, its sessions, and whether the listener is TLS (the cookie is then
/// `Secure` and origins are `https://`).
public struct WebDashboard: Sendable {
    public let assets: WebAssets
    public let sessions: WebSessions
    public let secure: Bool

    public init(assets: WebAssets, sessions: WebSessions, secure: Bool = false) {
        self.assets = assets
        self.sessions = sessions
        self.secure = secure
    }

    /// The page's policy: its own files only, no inline script, never framed. (xterm.js sets inline styles.)
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        + "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        + "frame-ancestors 'none'"

    /// The header a state-changing request authenticated by the cookie must carry, with the session's CSRF token.
    public static let csrfHeader = HTTPField.Name("X-Corral-CSRF")!

    /// Requests that change nothing (the only ones a cookie alone may make).
    static func isSafe(_ method: HTTPRequest.Method) -> Bool { method == .get || method == .head }

    /// Reached without a session: the page, its files, and the login itself.
    static func isPublic(_ method: HTTPRequest.Method, _ path: String) -> Bool {
        if isSafe(method) {
            return path == "/" || (path.hasPrefix("/assets/") && WebAssets.served[String(path.dropFirst(8))] != nil)
        }
        return method == .post && path == "/web/login"
    }

    /// Whether `origin` (an `Origin` header) is this listener as the browser addressed it (`Host`).
    func isSameOrigin(_ origin: String, of head: HTTPRequest) -> Bool {
        // (HTTP/1's Host header is the authority.)
        guard let authority = head.authority, !authority.isEmpty else { return false }
        return origin == (secure ? "https://" : "http://") + authority
    }

    /// The session a request's cookie names, if it is live.
    func session(_ fields: HTTPFields) async -> WebSessions.Session? {
        await sessions.session(cookies: fields[values: .cookie])
    }
}

/// On the dashboard's listener, before every route: the admin token (`Authorization: Bearer`) or a session cookie.
/// With the cookie, a request that changes something must carry the session's CSRF token in `X-Corral-CSRF` and,
/// when the browser names its `Origin`, come from this listener's own origin. Every answer gets headers that keep
/// the browser from sniffing types, leaking the address or framing the page.
struct WebAuthMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext
    /// The listener's tokens (on the TCP listener the peer and metrics tokens keep their narrow scopes).
    let bearer: BearerTokenMiddleware
    let web: WebDashboard

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let path = request.uri.path
        if WebDashboard.isPublic(request.method, path) { return try await next(request, context) }
        // A request with a token is judged by the token alone.
        if request.headers[.authorization] != nil { return try await bearer.handle(request, context: context, next: next) }
        guard let session = await web.session(request.headers) else {
            return Reply.error(
                ErrorBody(error: "unauthorized",
                          message: "log in to the dashboard (POST /web/login) or send Authorization: Bearer <token>"),
                status: 401)
        }
        if !WebDashboard.isSafe(request.method) {
            if let origin = request.headers[.origin], !web.isSameOrigin(origin, of: request.head) {
                return Reply.error(
                    ErrorBody(error: "forbidden", message: "a request from \(origin) cannot use this dashboard's session"),
                    status: 403)
            }
            guard let presented = request.headers[WebDashboard.csrfHeader],
                  BearerToken.matches(presented, session.csrf)
            else {
                return Reply.error(
                    ErrorBody(error: "forbidden",
                              message: "this request needs the session's X-Corral-CSRF header: reload the dashboard"),
                    status: 403)
            }
        }
        var context = context
        context.webSession = session
        return try await next(request, context)
    }
}

/// Outermost on the dashboard's listener: headers for every answer, errors included.
struct WebHeadersMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}
