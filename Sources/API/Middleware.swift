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

/// Demands `Authorization: Bearer <token>` before a request reaches any route.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = CorralRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), BearerToken.matches(String(header.dropFirst(prefix.count)), token) else {
            var response = Reply.error(
                ErrorBody(error: "unauthorized", message: "this listener needs Authorization: Bearer <token>"),
                status: 401)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}
