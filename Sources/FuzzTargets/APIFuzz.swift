import API
import CorralWire
import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import JSON
import Logging
import NIOEmbedded

/// The daemon's request decoding and routing. The input is a request much as an HTTP parser delivers it: a first
/// line `METHOD PATH`, header lines `Name: value`, a blank line, the body. Inputs an HTTP parser would refuse
/// (an unknown method token, control bytes in the path, a malformed header name) are skipped.
///
/// Properties: every request gets an answer below 500 (the fake control never fails on its own, so a 5xx is the
/// API's fault); every error answer is a JSON `ErrorBody`; every JSON answer is valid JSON.
enum APIFuzz {
    static let responder = CorralAPI(control: FuzzControl(), logger: Logger(label: "fuzz", factory: { _ in
        SwiftLogNoOpLogHandler()
    })).router().buildResponder()
    static let channel = NIOAsyncTestingChannel()

    static func request(_ data: [UInt8]) -> (Request, ByteBuffer)? {
        let blank = data.indices.first { index in
            data[index] == UInt8(ascii: "\n") && index + 1 < data.count && data[index + 1] == UInt8(ascii: "\n")
        }
        let headBytes = blank.map { data[..<$0] } ?? data[...]
        let body = blank.map { Array(data[($0 + 2)...]) } ?? []
        let lines = headBytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard let first = lines.first else { return nil }
        let parts = first.split(separator: UInt8(ascii: " "), maxSplits: 1)
        guard parts.count == 2, let method = HTTPRequest.Method(String(decoding: parts[0], as: UTF8.self)) else {
            return nil
        }
        let pathBytes = parts[1]
        guard pathBytes.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return nil }
        var headers = HTTPFields()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")),
                  let name = HTTPField.Name(String(decoding: line[..<colon], as: UTF8.self))
            else { return nil }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            headers.append(HTTPField(name: name, value: value))
        }
        headers[.contentLength] = String(body.count)
        let buffer = ByteBuffer(bytes: body)
        let head = HTTPRequest(method: method, scheme: "http", authority: "localhost",
                               path: String(decoding: pathBytes, as: UTF8.self), headerFields: headers)
        return (Request(head: head, body: RequestBody(buffer: buffer)), buffer)
    }

    static func run(_ data: [UInt8]) async throws(FuzzFailure) {
        guard let (request, _) = request(data) else { return }
        let context = CorralRequestContext(
            source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "fuzz", factory: { _ in
                SwiftLogNoOpLogHandler()
            })))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch {
            throw FuzzFailure("the router answers every request (errors become responses)", "\(error)")
        }
        let status = response.status.code
        try require(status < 500, "no request gets a 5xx from a healthy daemon",
                    "\(request.method) \(request.uri): \(status)")
        let type = response.headers[.contentType] ?? ""
        // Streamed answers (events, console, migration progress) follow the daemon's state: not read here.
        guard type == "application/json" else { return }
        let body = await bytes(of: response)
        if status >= 400 {
            do { _ = try JSONDecoder().decode(ErrorBody.self, from: Data(body)) } catch {
                throw FuzzFailure("an error answer is an ErrorBody", String(decoding: body, as: UTF8.self))
            }
        } else {
            do { _ = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) } catch {
                throw FuzzFailure("a JSON answer is valid JSON", String(decoding: body, as: UTF8.self))
            }
        }
    }

    /// From the fuzzer's own thread (not a concurrency thread): waits for the async body.
    static func runBlocking(_ data: [UInt8]) throws(FuzzFailure) {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        Task {
            do throws(FuzzFailure) { try await run(data) } catch { result.failure = error }
            done.signal()
        }
        done.wait()
        if let failure = result.failure { throw failure }
    }

    final class ResultBox: @unchecked Sendable {
        var failure: FuzzFailure?
    }

    static func bytes(of response: Response) async -> [UInt8] {
        let writer = CollectingWriter()
        try? await response.body.write(writer)
        return writer.bytes
    }

    final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
        var bytes: [UInt8] = []
        func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytesView }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
