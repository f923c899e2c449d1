import API
import CorralModel
import CorralWire
import Foundation
import Testing

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

    @Test func pathsAreParsedStrictly() {
        #expect(WebSocketRoutesProbe.target("/v1/vms/web/console/attach?force=true") == "console web force")
        #expect(WebSocketRoutesProbe.target("/v1/vms/a%20b/vnc") == "vnc a b")
        #expect(WebSocketRoutesProbe.target("/v1/vms/web/console") == nil)
        #expect(WebSocketRoutesProbe.target("/v1/vms//vnc") == nil)
        #expect(WebSocketRoutesProbe.target("/v2/vms/web/vnc") == nil)
    }
}
