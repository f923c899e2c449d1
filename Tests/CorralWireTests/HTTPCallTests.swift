import CorralModel
@testable import CorralWire
import Foundation
import Synchronization
import Testing
import UnixSockets

#if canImport(Glibc)
import Glibc
#endif

/// A one-connection HTTP server on a Unix socket whose every move is scripted: what it answers, in which pieces,
/// and when it stops answering. It records the request it read, and tells when it has read it and when the client
/// hung up.
final class ScriptedHTTPServer: Sendable {
    enum Step: Sendable {
        case send(String)
        case pause(milliseconds: Int)
        /// Waits until the client closes its end (read returns 0), then says so (`clientHungUp()`).
        case awaitHangUp
        case close
    }

    let path: String
    private let listener: Int32
    let request = Mutex<String?>(nil)
    private let requestRead: AsyncStream<Void>
    private let hungUp: AsyncStream<Void>

    init(_ steps: [Step]) throws {
        let (requestRead, announceRequest) = AsyncStream<Void>.makeStream()
        let (hungUp, announceHangUp) = AsyncStream<Void>.makeStream()
        self.requestRead = requestRead
        self.hungUp = hungUp
        path = FileManager.default.temporaryDirectory.path + "/corral-http-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
        listener = try UnixStreamListen.listen(path: path)
        let listener = self.listener
        Thread.detachNewThread { [self] in
            defer {
                announceRequest.finish()
                announceHangUp.finish()
            }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { Glibc.close(fd) }
            let text = Self.readRequest(fd)
            self.request.withLock { $0 = text }
            announceRequest.yield()
            for step in steps {
                switch step {
                case .send(let text):
                    let sent = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if sent < 0 { return }
                case .pause(let milliseconds):
                    usleep(UInt32(milliseconds) * 1000)
                case .awaitHangUp:
                    var byte: UInt8 = 0
                    while true {
                        let count = read(fd, &byte, 1)
                        if count <= 0 { break }
                    }
                    announceHangUp.yield()
                case .close:
                    return
                }
            }
        }
    }

    /// Returns once the whole request has been read: the client now waits for the head. False if the server
    /// ended without reading one.
    func requestArrived() async -> Bool {
        for await _ in requestRead { return true }
        return false
    }

    /// Returns once the client has closed its end (for `.awaitHangUp`). False if the server ended without
    /// seeing that.
    func clientHungUp() async -> Bool {
        for await _ in hungUp { return true }
        return false
    }

    deinit {
        Glibc.close(listener)
        unlink(path)
    }

    /// The request head (and a body up to Content-Length).
    private static func readRequest(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 {
            data.append(byte)
            if data.count >= 4 && Array(data.suffix(4)) == Array("\r\n\r\n".utf8) { break }
        }
        let head = String(decoding: data, as: UTF8.self)
        let length = head.components(separatedBy: "\r\n")
            .first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var body = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let count = body.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, length - got) }
            if count <= 0 { break }
            got += count
        }
        return head + String(decoding: body.prefix(got), as: UTF8.self)
    }
}

/// `HTTPCall` against scripted servers: framing over real sockets, timeouts, cancellation, refusals.
@Suite("HTTP call over a socket", .timeLimit(.minutes(1)))
struct HTTPCallTests {
    static func get(_ server: ScriptedHTTPServer, timeout: Duration? = .seconds(10), streaming: Bool = false)
        async throws(HTTPTransportError) -> HTTPStreamingResponse
    {
        try await HTTPCall.send(HTTPRequest(method: "GET", target: "/v1/vms"), to: .unixSocket(server.path),
                                timeout: timeout, timeoutCoversBody: !streaming)
    }

    @Test func aResponseInSmallPiecesArrivesWhole() async throws {
        let server = try ScriptedHTTPServer([
            .send("HTTP/1.1 200 OK\r\nTransfer-"), .pause(milliseconds: 20), .send("Encoding: chunked\r\n\r\n3\r"),
            .pause(milliseconds: 20), .send("\nabc\r\n2\r\nde\r\n0\r\n\r\n"), .awaitHangUp,
        ])
        let response = try await Self.get(server)
        #expect(response.head.status == 200)
        #expect(try await response.collect() == Array("abcde".utf8))
        #expect(server.request.withLock { $0 } == "GET /v1/vms HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        let server = try ScriptedHTTPServer([.awaitHangUp])
        await #expect(throws: HTTPTransportError.io(.timedOut)) {
            _ = try await Self.get(server, timeout: .milliseconds(300))
        }
    }

    @Test func aBodyCutShortIsAnError() async throws {
        let server = try ScriptedHTTPServer([.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), .close])
        let response = try await Self.get(server)
        await #expect(throws: HTTPTransportError.malformed(
            HTTPParseError("the connection closed before the response body was complete"))) {
            _ = try await response.collect()
        }
    }

    @Test func droppingAStreamedBodyHangsUp() async throws {
        let server = try ScriptedHTTPServer([
            .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nline1\n\r\n"), .awaitHangUp,
        ])
        let response = try await Self.get(server, timeout: .seconds(5), streaming: true)
        var iterator = response.body.makeAsyncIterator()
        #expect(try await iterator.next() == Array("line1\n".utf8))
        // The stream (and its iterator) go away here: the connection must close.
        _ = consume iterator
        _ = consume response
        #expect(await server.clientHungUp(), "the client closed the connection")
    }

    @Test func cancellingTheTaskWhileWaitingForTheHeadEndsTheCall() async throws {
        let server = try ScriptedHTTPServer([.awaitHangUp])
        let call = Task { () async throws(HTTPTransportError) -> HTTPStreamingResponse in
            try await Self.get(server, timeout: nil)
        }
        #expect(await server.requestArrived(), "the request was sent: the call now waits for the head")
        call.cancel()
        await #expect(throws: HTTPTransportError.cancelled) { _ = try await call.value }
        #expect(await server.clientHungUp())
    }

    @Test func nothingAtThePathOrAStaleSocketIsAConnectFailure() async throws {
        let missing = FileManager.default.temporaryDirectory.path + "/corral-no-such-\(getpid()).sock"
        await #expect(throws: HTTPTransportError.connect(.connect(errno: ENOENT))) {
            _ = try await HTTPCall.send(HTTPRequest(method: "GET", target: "/"), to: .unixSocket(missing),
                                        timeout: .seconds(1), timeoutCoversBody: true)
        }
        // A socket file nobody listens on.
        let stale = FileManager.default.temporaryDirectory.path + "/corral-stale-\(getpid()).sock"
        close(try UnixStreamListen.bind(path: stale))
        defer { unlink(stale) }
        await #expect(throws: HTTPTransportError.connect(.connect(errno: ECONNREFUSED))) {
            _ = try await HTTPCall.send(HTTPRequest(method: "GET", target: "/"), to: .unixSocket(stale),
                                        timeout: .seconds(1), timeoutCoversBody: true)
        }
    }

    @Test func aSocketPathLongerThanAUnixAddressIsRefusedBeforeConnecting() async throws {
        let path = "/tmp/" + String(repeating: "s", count: 120) + ".sock"
        await #expect(throws: HTTPTransportError.connect(.pathTooLong(path.utf8.count))) {
            _ = try await HTTPCall.send(HTTPRequest(method: "GET", target: "/"), to: .unixSocket(path),
                                        timeout: .seconds(1), timeoutCoversBody: true)
        }
        #expect(SocketFailure.pathTooLong(130).message == "the socket path is 130 bytes long; Unix sockets allow at most 107")
    }

    @Test func aClosedTCPPortIsRefused() async throws {
        // Bind an ephemeral port, learn it, close it: nothing listens there now.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length); return getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(fd)
        await #expect(throws: HTTPTransportError.connect(.connect(errno: ECONNREFUSED))) {
            _ = try await HTTPCall.send(HTTPRequest(method: "GET", target: "/"), to: .tcp(try HostPort(host: "127.0.0.1", port: port)),
                                        timeout: .seconds(1), timeoutCoversBody: true)
        }
    }
}
