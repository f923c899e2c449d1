import Foundation
import Hummingbird
import Logging
import NIOCore
import CorralWire
import Supervisor

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
        } catch let error as NotSupportedError {
            return Reply.error(ErrorBody(error: NotSupportedError.code, message: error.message), status: 501)
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

/// A route whose operations the control object behind the API does not offer (e.g. a fake
/// `VMControl` without `HotplugControl`): `501 {"error":"not-supported"}`.
struct NotSupportedError: Error, Sendable {
    static let code = NotSupportedCode.code
    /// What is missing: "hotplug", "tuning".
    var feature: String
    var message: String { "\(feature) is not supported by this daemon" }
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

/// The TCP listener's shared secret.
public enum BearerToken {
    /// Compares in time that depends only on the lengths, not on where the texts differ.
    public static func matches(_ presented: String, _ expected: String) -> Bool {
        let a = Array(presented.utf8)
        let b = Array(expected.utf8)
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    /// Reads a token file: the first line, trimmed; refuses an empty one.
    public static func load(file: String) throws(DaemonError) -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .invalidConfiguration("cannot read token file \(file)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let token = text.split(whereSeparator: \.isNewline).first.map {
            $0.trimmingCharacters(in: .whitespaces)
        } ?? ""
        guard !token.isEmpty else { throw .invalidConfiguration("token file \(file) is empty") }
        guard token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw .invalidConfiguration("token in \(file) must be printable ASCII without spaces")
        }
        return token
    }
}
