import CorralModel
@testable import CorralWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `HTTPCall.exchange` and `CorralClient.blocking`: the same exchange on the caller's thread, against scripted
/// servers, with the same framing, timeouts and error mapping as the async calls.
@Suite("Blocking calls", .timeLimit(.minutes(1)))
struct BlockingCallTests {
    static func exchange(_ server: ScriptedHTTPServer, timeout: Duration? = .seconds(10), limit: Int = 64 << 20)
        throws(HTTPTransportError) -> (head: HTTPResponseHead, body: [UInt8])
    {
        try HTTPCall.exchange(HTTPRequest(method: "GET", target: "/v1/vms"), to: .unixSocket(server.path),
                              timeout: timeout, limit: limit)
    }

    @Test func aResponseInSmallPiecesArrivesWhole() throws {
        let server = try ScriptedHTTPServer([
            .send("HTTP/1.1 200 OK\r\nTransfer-"), .pause(milliseconds: 20), .send("Encoding: chunked\r\n\r\n3\r"),
            .pause(milliseconds: 20), .send("\nabc\r\n2\r\nde\r\n0\r\n\r\n"), .awaitHangUp,
        ])
        let answer = try Self.exchange(server)
        #expect(answer.head.status == 200)
        #expect(answer.body == Array("abcde".utf8))
        #expect(server.request.withLock { $0 } == "GET /v1/vms HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    }

    @Test func aBodyThatEndsWithTheConnectionIsWhole() throws {
        let server = try ScriptedHTTPServer([.send("HTTP/1.1 200 OK\r\n\r\nuntil close"), .close])
        #expect(try Self.exchange(server).body == Array("until close".utf8))
    }

    @Test func aServerThatNeverAnswersTimesOut() throws {
        let server = try ScriptedHTTPServer([.awaitHangUp])
        #expect(throws: HTTPTransportError.io(.timedOut)) { _ = try Self.exchange(server, timeout: .milliseconds(300)) }
    }

    @Test func aBodyCutShortIsAnError() throws {
        let server = try ScriptedHTTPServer([.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), .close])
        #expect(throws: HTTPTransportError.malformed(
            HTTPParseError("the connection closed before the response body was complete"))) {
            _ = try Self.exchange(server)
        }
    }

    @Test func aServerThatClosesBeforeAnsweringIsAnError() throws {
        let server = try ScriptedHTTPServer([.close])
        #expect(throws: HTTPTransportError.malformed(HTTPParseError("the connection closed before a response"))) {
            _ = try Self.exchange(server)
        }
    }

    @Test func aBodyOverTheLimitIsRefused() throws {
        let server = try ScriptedHTTPServer([.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"), .close])
        #expect(throws: HTTPTransportError.tooLarge(4)) { _ = try Self.exchange(server, limit: 4) }
    }

    @Test func upSendsTheRequestAndDecodesTheStatus() throws {
        let status = VMStatus(
            name: "web", state: .running, pid: 4242, accel: "tcg", uptimeSeconds: 0.5,
            cpus: .init(online: 1, max: 4), memory: .init(sizeBytes: 256 << 20, maxBytes: 1 << 30, balloonBytes: nil),
            disks: [], nics: [.init(id: "net0", mac: "52:54:00:12:34:56", mode: "user")], qmpSocket: "/s/qmp.sock",
            serialLog: "/s/serial.log", restartCount: 0, lastExit: nil)
        let body = String(decoding: try WireCoding.encode(status), as: UTF8.self)
        let server = try ScriptedHTTPServer([
            .send("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                + body),
            .close,
        ])
        let client = CorralClient(endpoint: .unixSocket(server.path))
        let reply = try client.blocking.up(UpRequest(profile: "/p/web.yaml", name: "web", accel: .tcg))
        #expect(reply == status)
        let request = try #require(server.request.withLock { $0 })
        #expect(request.hasPrefix("POST /v1/vms HTTP/1.1\r\n"), "\(request)")
        #expect(request.contains("Content-Type: application/json"), "\(request)")
        let sent = try JSONDecoder().decode(UpRequest.self, from: Data(request.components(separatedBy: "\r\n\r\n")[1].utf8))
        #expect(sent == UpRequest(profile: "/p/web.yaml", name: "web", accel: .tcg))
    }

    @Test func anErrorAnswerIsTheDaemonsControlError() throws {
        let body = #"{"error":"not-found","message":"no VM named db (known: web)"}"#
        let server = try ScriptedHTTPServer([
            .send("HTTP/1.1 404 Not Found\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body), .close,
        ])
        let client = CorralClient(endpoint: .unixSocket(server.path))
        #expect(throws: ControlError.notFound("no VM named db (known: web)")) { _ = try client.blocking.status("db") }
        #expect(server.request.withLock { $0 }?.hasPrefix("GET /v1/vms/db HTTP/1.1\r\n") == true)
    }

    @Test func aReplyThatIsNotTheStatusIsABadResponse() throws {
        let server = try ScriptedHTTPServer([.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"), .close])
        let client = CorralClient(endpoint: .unixSocket(server.path))
        #expect(throws: CorralClientError.badResponse("unexpected reply to GET /v1/vms: malformed JSON body: expected an array")) {
            _ = try client.blocking.list()
        }
    }

    @Test func noDaemonSaysHowToStartOne() throws {
        let missing = FileManager.default.temporaryDirectory.path + "/corral-blocking-none-\(getpid()).sock"
        let client = CorralClient(endpoint: .unixSocket(missing))
        #expect(throws: CorralClientError.noDaemon(
            "no corral daemon answers on \(missing): start one with `corral daemon` (or `systemctl start corral`)")) {
            _ = try client.blocking.list()
        }
    }
}
