import API
import CorralModel
import CorralWire
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The WebSocket routes on a live daemon (FakeControl's console and display are echoes), driven by corral's own
/// client (`WebSocketConnection`): bytes both ways, one console writer, refusals as close codes, tokens on TCP.
@Suite struct WebSocketRouteTests {
    /// Reads messages until `expected` bytes arrived.
    static func read(_ connection: WebSocketConnection, count expected: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < expected, let more = try connection.receive() { bytes += more }
        return bytes
    }

    /// The client blocks: it runs on a thread of its own, never on the concurrency pool the daemon's routes need.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    @Test func theConsoleRelaysBothWaysAndHasOneWriterUnlessForced() async throws {
        let fake = FakeControl(vms: [FakeControl.status("web")])
        try await DaemonHarness.run(fake) { daemon in
            let client = CorralClient(endpoint: .unixSocket(daemon.socketPath))
            try await Self.onThread {
            let first = try WebSocketConnection.open(client, path: "/v1/vms/web/console/attach")
            #expect(try Self.read(first, count: 5) == Array("echo:".utf8))
            try first.send(Array("hello, guest\r".utf8))
            #expect(try Self.read(first, count: 13) == Array("hello, guest\r".utf8))
            // A big message arrives whole, in order, through the relay's back-pressure.
            let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
            try first.send(big)
            #expect(try Self.read(first, count: big.count) == big)

            #expect(throws: WebSocketError.closed(code: 4409, reason: "someone is attached to web's console")) {
                try WebSocketConnection.open(client, path: "/v1/vms/web/console/attach").receive()
            }
            let second = try WebSocketConnection.open(client, path: "/v1/vms/web/console/attach?force=true")
            #expect(try Self.read(second, count: 5) == Array("echo:".utf8))
            second.close()
            first.close()
            #expect(throws: WebSocketError.closed(code: 4404, reason: "no VM named ghost")) {
                try WebSocketConnection.open(client, path: "/v1/vms/ghost/vnc").receive()
            }
            }
        }
        let calls = await fake.calls
        #expect(calls.contains(.attachConsole("web", force: false)) && calls.contains(.attachConsole("web", force: true)))
    }

    @Test func theTCPListenerWantsTheTokenForAnUpgrade() async throws {
        let fake = FakeControl(vms: [FakeControl.status("web")])
        try await DaemonHarness.run(fake, token: "s3cret-token-for-ws") { daemon in
            let port = try #require(daemon.tcpPort)
            let address = try HostPort(host: "127.0.0.1", port: port)
            let right = CorralClient(endpoint: .tcp(address, token: "s3cret-token-for-ws"))
            try await Self.onThread {
            let vnc = try WebSocketConnection.open(right, path: "/v1/vms/web/vnc")
            #expect(try Self.read(vnc, count: 12) == Array("RFB 003.008\n".utf8))
            vnc.close()
            let wrong = CorralClient(endpoint: .tcp(address, token: "not-the-token-at-all"))
            #expect(throws: WebSocketError.closed(code: 4401, reason: "this listener needs Authorization: Bearer <token>")) {
                try WebSocketConnection.open(wrong, path: "/v1/vms/web/vnc").receive()
            }
            }
        }
        #expect(await fake.calls.filter { $0 == .openVNC("web") }.count == 1, "the wrong token never reached the control")
    }

    /// One HTTP/1.1 exchange over TCP on 127.0.0.1 (`Connection: close`): the whole answer as text.
    static func exchange(port: Int, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        _ = Array(request.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while case let got = buffer.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, 4096) }), got > 0 {
            reply += buffer[..<got]
        }
        return String(decoding: reply, as: UTF8.self)
    }

    @Test func onTheDashboardsListenerTheCookieOpensAWebSocketOnlyFromTheSameOrigin() async throws {
        let fake = FakeControl(vms: [FakeControl.status("web")])
        let token = "the-admin-token-of-this-test"
        let assets = WebAssets(index: .init(contentType: "text/html", bytes: Array("<html>".utf8)),
                               assets: [:])
        try await DaemonHarness.run(fake, web: .init(address: "127.0.0.1:0", token: token, assets: assets)) { daemon in
            let port = try #require(daemon.webPort)
            let origin = "http://127.0.0.1:\(port)"
            let body = #"{"token": "\#(token)"}"#
            let answer = try await Self.onThread {
                try Self.exchange(port: port, "POST /web/login HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nOrigin: \(origin)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
            }
            try #require(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            let setCookie = try #require(answer.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") })
            let cookie = String(try #require(setCookie.dropFirst("set-cookie:".count).split(separator: ";").first))
                .trimmingCharacters(in: .whitespaces)
            let client = CorralClient(endpoint: .tcp(try HostPort(host: "127.0.0.1", port: port), token: ""))
            try await Self.onThread {
                // The dashboard's own page: the cookie and its origin.
                let vnc = try WebSocketConnection.open(client, path: "/v1/vms/web/vnc",
                                                       headers: [("Cookie", cookie), ("Origin", origin)])
                #expect(try Self.read(vnc, count: 12) == Array("RFB 003.008\n".utf8))
                vnc.close()
                // Another site's page (the browser sends the cookie along), or no origin at all: refused.
                for headers in [[("Cookie", cookie), ("Origin", "http://evil.example")], [("Cookie", cookie)]] {
                    #expect(throws: WebSocketError.closed(
                        code: 4403, reason: "a WebSocket from another origin cannot use this dashboard's session")) {
                        try WebSocketConnection.open(client, path: "/v1/vms/web/console/attach", headers: headers)
                            .receive(deadline: ContinuousClock.now.advanced(by: .seconds(20)))
                    }
                }
                // No session: refused like a wrong token.
                #expect(throws: WebSocketError.self) {
                    try WebSocketConnection.open(client, path: "/v1/vms/web/vnc", headers: [("Origin", origin)])
                        .receive(deadline: ContinuousClock.now.advanced(by: .seconds(20)))
                }
            }
        }
        #expect(await fake.calls.filter { $0 == .openVNC("web") }.count == 1, "only the same-origin upgrade got through")
        #expect(await fake.calls.contains { if case .attachConsole = $0 { true } else { false } } == false)
    }

    @Test func pathsAreParsedStrictly() {
        #expect(WebSocketRoutesProbe.target("/v1/vms/web/console/attach?force=true") == "console web force")
        #expect(WebSocketRoutesProbe.target("/v1/vms/a%20b/vnc") == "vnc a b")
        #expect(WebSocketRoutesProbe.target("/v1/vms/web/console") == nil)
        #expect(WebSocketRoutesProbe.target("/v1/vms//vnc") == nil)
        #expect(WebSocketRoutesProbe.target("/v2/vms/web/vnc") == nil)
    }
}
