import API
import CorralModel
import CorralWire
import Foundation
import HummingbirdTesting
import JSON
import Logging
import Profiles
import ServiceLifecycle
import CorralControl
import LogTail
import Supervisor
import Testing
import UnixSockets

/// The daemon on real listeners: the Unix socket through `CorralClient`, and the token rule on TCP.
@Suite(.timeLimit(.minutes(1))) struct LiveDaemonTests {
    let fake = FakeControl(vms: [FakeControl.status("web")])

    @Test func clientListsStatusesAndStartsOverTheUnixSocket() async throws {
        try await DaemonHarness.run(fake) { daemon in
            #expect(DaemonHarness.mode(daemon.socketPath) == 0o600)
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                #expect(try await client.health().status == "ok")
                #expect(try await client.list().map(\.name) == ["web"])
                #expect(try await client.status("web") == FakeControl.status("web"))
                let up = try await client.up(UpRequest(profile: "/p/db.yaml", name: "db", accel: .kvm))
                #expect(up.name == "db")
                #expect(try await client.stop("db", timeout: .seconds(7)).state == .stopped)
                try await client.remove("db", force: true)
                #expect(try await client.qmp("web", command: "query-status") == ["running": true, "status": "running"])
            }
        }
        #expect(await fake.calls == [
            .list, .status("web"), .up(UpRequest(profile: "/p/db.yaml", name: "db", accel: .kvm)),
            .stop("db", .seconds(7)), .remove("db", force: true), .qmp("web", command: "query-status", arguments: nil),
        ])
    }

    @Test func clientDecodesErrorsBackIntoControlErrors() async throws {
        try await DaemonHarness.run(fake) { daemon in
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                await #expect(throws: ControlError.notFound("no VM named ghost")) {
                    try await client.status("ghost")
                }
                let diagnostics = [Diagnostic(file: "/p/x.yaml", line: 4, column: 2, path: "cpu.count",
                                              message: "must be between 1 and 255, got 0")]
                await fake.setFailure(.invalidProfile(diagnostics))
                await #expect(throws: ControlError.invalidProfile(diagnostics)) {
                    try await client.up(UpRequest(profile: "/p/x.yaml"))
                }
                let failed = ControlError.startFailed(reason: "QEMU exited with status 1",
                                                      qemuOutput: ["qemu-system-x86_64: -accel kvm: no KVM"])
                await fake.setFailure(failed)
                await #expect(throws: failed) { try await client.start("web") }
            }
        }
    }

    @Test func noDaemonIsAClearError() async throws {
        let path = DaemonHarness.tempSocketPath()
        try await CorralClient.withClient(.unixSocket(path)) { client in
            await #expect(throws: CorralClientError.noDaemon(
                "no corral daemon answers on \(path): start one with `corral daemon` (or `systemctl start corral`)")
            ) {
                try await client.list()
            }
        }
        // A regular file where the socket should be: say so, not "no daemon".
        FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
        defer { unlink(path) }
        await #expect(throws: CorralClientError.noDaemon(
            "\(path) is not a socket: pass the daemon's socket with --socket (or set CORRAL_SOCKET)")
        ) {
            try await CorralClient(endpoint: .unixSocket(path)).list()
        }
    }

    @Test func eventsStreamDeliversEventsPushedAfterTheRequest() async throws {
        try await DaemonHarness.run(fake) { daemon in
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                let events = try await client.events(vm: "web", history: 5)
                await fake.waitForSubscribers(1)
                let first = CorralEvent(time: 1_700_000_000.25, vm: "web", name: "STOP")
                let second = CorralEvent(time: 1_700_000_001, vm: "web", name: "stopped",
                                         data: ["reason": "guest powered off"])
                await fake.push(first)
                await fake.push(second)
                var received: [CorralEvent] = []
                for try await event in events {
                    received.append(event)
                    if received.count == 2 { break }
                }
                #expect(received == [first, second])
            }
        }
        #expect(await fake.calls.contains(.events(vm: "web", history: 5)))
    }

    @Test func droppingTheEventsStreamEndsTheSubscription() async throws {
        try await DaemonHarness.run(fake) { daemon in
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                let events = try await client.events()
                await fake.waitForSubscribers(1)
                await fake.push(CorralEvent(time: 1, vm: "web", name: "started"))
                for try await _ in events { break }
            }
            // The client is shut down; the daemon notices the closed connection on its own.
            await fake.waitForTerminations(1)
        }
        #expect(await fake.terminatedSubscriptions == 1)
    }

    @Test func consoleFollowStreamsLinesWrittenLater() async throws {
        let folder = "/tmp/corral-api-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = folder + "/serial.log"
        try "boot 1\nboot 2\nhalf".write(toFile: log, atomically: true, encoding: .utf8)
        await fake.setSerialLog("web", path: log)
        try await DaemonHarness.run(fake) { daemon in
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                let lines = try await client.console("web", lines: 1, follow: true)
                var iterator = lines.makeAsyncIterator()
                #expect(try await iterator.next() == "boot 2")
                let handle = try #require(FileHandle(forWritingAtPath: log))
                try handle.seekToEnd()
                try handle.write(contentsOf: Data(" line\nheartbeat 1\n".utf8))
                try handle.close()
                #expect(try await iterator.next() == "half line")
                #expect(try await iterator.next() == "heartbeat 1")
            }
        }
    }

    @Test func tokenRuleOnTheTCPListener() async throws {
        try await DaemonHarness.run(fake, token: "correct-horse") { daemon in
            let port = try #require(daemon.tcpPort)
            let outcomes = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                let none = try await client.get("/v1/vms")
                let wrong = try await client.get("/v1/vms", headers: [.authorization: "Bearer correct-horsf"])
                let basic = try await client.get("/v1/vms", headers: [.authorization: "Basic Y29ycmVjdC1ob3JzZQ=="])
                let right = try await client.get("/v1/vms", headers: [.authorization: "Bearer correct-horse"])
                return [none, wrong, basic, right].map { ($0.status.code, $0.body.map { String(buffer: $0) } ?? "") }
            }
            #expect(outcomes.map(\.0) == [401, 401, 401, 200])
            #expect(outcomes[0].1.contains(#""error":"unauthorized""#))
            // The typed client carries the token, and names a refusal.
            let address = try HostPort(host: "127.0.0.1", port: port)
            try await CorralClient.withClient(.tcp(address, token: "correct-horse")) { client in
                let names = try await client.list().map(\.name)
                #expect(names == ["web"])
            }
            try await CorralClient.withClient(.tcp(address, token: "nope")) { client in
                await #expect(throws: CorralClientError.unauthorized("this listener needs Authorization: Bearer <token>")) {
                    try await client.status("web")
                }
            }
            // The Unix socket needs no token.
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                let list = try await client.list()
                #expect(list.count == 1)
            }
        }
        #expect(await fake.calls == [.list, .list, .list], "refused requests reach nothing")
    }

    @Test func aStaleSocketFileIsReplaced() async throws {
        let path = DaemonHarness.tempSocketPath()
        close(try UnixStreamListen.bind(path: path))  // what a daemon killed with SIGKILL leaves
        #expect(DaemonHarness.isSocket(path))
        try await DaemonHarness.run(fake, socketPath: path) { daemon in
            try await CorralClient.withClient(.unixSocket(path)) { client in
                let health = try await client.health()
                #expect(health.status == "ok")
            }
        }
        #expect(!DaemonHarness.isSocket(path), "the socket file is removed at exit")
    }

    @Test func aSecondDaemonOnALiveSocketRefuses() async throws {
        try await DaemonHarness.run(fake) { daemon in
            let second = CorralDaemon(
                configuration: DaemonConfiguration(socketPath: daemon.socketPath), control: FakeControl(),
                supervise: {}, logger: DaemonHarness.quiet)
            await #expect(throws: DaemonError.alreadyRunning(daemon.socketPath)) {
                try await second.run()
            }
            // The first one still answers, on the same file.
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                let names = try await client.list().map(\.name)
                #expect(names == ["web"])
            }
        }
    }

    @Test func aPathThatIsNotASocketIsLeftAlone() async throws {
        let path = DaemonHarness.tempSocketPath()
        try "precious".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let daemon = CorralDaemon(configuration: DaemonConfiguration(socketPath: path), control: fake,
                                  supervise: {}, logger: DaemonHarness.quiet)
        await #expect(throws: DaemonError.self) { try await daemon.run() }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious")
    }

    @Test func gracefulShutdownEndsOpenStreamsCancelsTheSupervisorAndStopsNoVM() async throws {
        let probe = DaemonHarness.SupervisorProbe()
        let path = DaemonHarness.tempSocketPath()
        try await DaemonHarness.run(fake, socketPath: path, probe: probe) { daemon in
            try await CorralClient.withClient(.unixSocket(path)) { client in
                let events = try await client.events()
                await fake.waitForSubscribers(1)
                // Shut down while a stream is open: the stream ends instead of holding the daemon.
                await daemon.group.triggerGracefulShutdown()
                var count = 0
                do {
                    for try await _ in events { count += 1 }
                } catch {}
                #expect(count == 0)
            }
        }
        #expect(await probe.started)
        #expect(await probe.cancelled)
        #expect(!DaemonHarness.isSocket(path))
        let calls = await fake.calls
        #expect(!calls.contains { if case .stop = $0 { true } else if case .kill = $0 { true } else { false } })
    }

    /// A client that starts a request and then sends nothing is cut off after the idle timeout (it costs one
    /// connection for that long, not forever); the daemon goes on answering everyone else.
    @Test func aSlowClientIsCutOffAfterTheIdleTimeout() async throws {
        try await DaemonHarness.run(fake, limits: .init(idleTimeout: .seconds(1))) { daemon in
            let slow = try StreamSocket.connect(path: daemon.socketPath)
            defer { slow.close() }
            try slow.write(Array("GET /v1/vms HTTP/1.1\r\nHost: corral\r\n".utf8))
            // Blocks until the daemon closes the connection (an empty read), or fails after 20 s.
            let answer = try slow.read(deadline: .now + .seconds(20))
            #expect(answer.isEmpty, "the half-sent request got no answer, the connection was closed")
            let names = try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                try await client.list().map(\.name)
            }
            #expect(names == ["web"])
        }
    }

    /// Headers beyond the limit are refused (the connection is answered with an error or closed), and the daemon goes on.
    @Test func oversizedHeadersAreRefused() async throws {
        try await DaemonHarness.run(fake, limits: .init(headerBytes: 4 << 10)) { daemon in
            let client = try StreamSocket.connect(path: daemon.socketPath)
            defer { client.close() }
            let big = String(repeating: "x", count: 8 << 10)
            try? client.write(Array("GET /v1/vms HTTP/1.1\r\nHost: corral\r\nX-Big: \(big)\r\n\r\n".utf8))
            var reply: [UInt8] = []
            while let chunk = try? client.read(deadline: .now + .seconds(20)), !chunk.isEmpty { reply += chunk }
            let text = String(decoding: reply, as: UTF8.self)
            #expect(!text.hasPrefix("HTTP/1.1 200"), "not served: \(text.prefix(80))")
            let names = try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                try await client.list().map(\.name)
            }
            #expect(names == ["web"])
        }
    }
}
