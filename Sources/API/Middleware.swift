import Foundation
import CorralModel
import Hummingbird
import Logging
import NIOCore
import CorralWire
import CorralControl

/// Turns every failure into the API's JSON error body: `ControlError` with its own status,
/// Hummingbird's errors (unknown route, body too large) with theirs, anything else as 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as ControlError {
            return Reply.error(ErrorBody(error), status: error.httpStatus)
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                return Reply.error(
                    ErrorBody(error: "not-found", message: "no route for \(request.method) \(request.uri.path)"),
                    status: 404)
            case .contentTooLarge:
                return Reply.error(tooLarge(context), status: 413)
            default:
                let code = error.status.code < 500 ? "invalid-request" : "internal"
                return Reply.error(
                    ErrorBody(error: code, message: error.body ?? error.status.reasonPhrase), status: error.status.code)
            }
        } catch is NIOTooManyBytesError {
            return Reply.error(tooLarge(context), status: 413)
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Reply.error(ErrorBody(error: "internal", message: "\(error)"), status: 500)
        }
    }

    private func tooLarge(_ context: Context) -> ErrorBody {
        ErrorBody(error: "too-large", message: "request body is larger than \(context.maxUploadSize) bytes")
    }
}

/// Demands `Authorization: Bearer <token>` before a request reaches any route: the admin token opens every route,
/// the peer token only the migration routes (`PeerScope`), the metrics token only `GET /metrics` (403 for the rest),
/// anything else is 401.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext
    let token: String
    var peerToken: String?
    var metricsToken: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        let presented = header.hasPrefix(prefix) ? String(header.dropFirst(prefix.count)) : nil
        if let presented, BearerToken.matches(presented, token) {
            return try await next(request, context)
        }
        if let presented, let peerToken, BearerToken.matches(presented, peerToken) {
            guard PeerScope.allows(method: request.method.rawValue, path: request.uri.path) else {
                return Reply.error(
                    ErrorBody(error: "forbidden",
                              message: "the peer token only allows migrations between daemons, not \(request.method) \(request.uri.path)"),
                    status: 403)
            }
            return try await next(request, context)
        }
        if let presented, let metricsToken, BearerToken.matches(presented, metricsToken) {
            guard request.method == .get, request.uri.path == "/metrics" else {
                return Reply.error(
                    ErrorBody(error: "forbidden",
                              message: "the metrics token only allows GET /metrics, not \(request.method) \(request.uri.path)"),
                    status: 403)
            }
            return try await next(request, context)
        }
        var response = Reply.error(
            ErrorBody(error: "unauthorized", message: "this listener needs Authorization: Bearer <token>"),
            status: 401)
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }
}

/// Refuses a query parameter the route does not take (`400`, naming it and the ones it takes): a misspelt
/// `?folow=true` must not be silently ignored. Runs after the token check, so it tells nothing to a stranger.
struct QueryKeysMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext

    /// The query parameters of a route, by method and path shape (`*` one path segment).
    static func allowed(method: HTTPRequest.Method, path: String) -> Set<String> {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        switch (method, parts.count) {
        case (.delete, 3) where parts[0] == "v1" && parts[1] == "vms": return ["force", "volumes"]
        case (.get, 4) where parts[0] == "v1" && parts[1] == "vms" && parts[3] == "console": return ["lines", "follow"]
        case (.get, 2) where parts[0] == "v1" && parts[1] == "events": return ["history", "follow", "vm"]
        case (.delete, 5) where parts[0] == "v1" && parts[1] == "vms" && parts[3] == "disks": return ["deleteImage"]
        case (.get, 4) where parts[0] == "v1" && parts[1] == "vms" && parts[3] == "placement": return ["to"]
        case (.get, 5) where parts[0] == "v1" && parts[1] == "vms" && parts[3] == "console" && parts[4] == "attach":
            return ["force"]
        default: return []
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let allowed = Self.allowed(method: request.method, path: request.uri.path)
        for (key, _) in request.uri.queryParameters where !allowed.contains(String(key)) {
            let takes = allowed.isEmpty ? "this route takes none" : "this route takes " + allowed.sorted().joined(separator: ", ")
            throw ControlError.invalidRequest("unknown query parameter '\(key)': \(takes)")
        }
        return try await next(request, context)
    }
}
