import API
import CorralModel
import CorralWire
import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Profiles
import Supervisor
import Testing

/// A `VMControl` + `MigrationControl` over `FakeControl`: `migrate` publishes the events a real
/// daemon would (started, progress…, migrated/failed) and answers from a script.
actor FakeMigrationControl: VMControl, MigrationControl {
    enum Call: Equatable {
        case migrate(String, MigrateRequest)
        case cancel(String)
        case prepare(IncomingRequest)
        case commit(String)
        case abort(String)
    }

    let inner: FakeControl
    private(set) var calls: [Call] = []
    /// `migrate` publishes one `migration-progress` event per entry, then ends with `outcome`.
    var progress: [JSONValue] = []
    var outcome: Result<MigrationResult, ControlError> = .failure(.internalError("no outcome scripted"))
    /// Answers of the peer operations.
    var incomingReply = IncomingReply(uri: "tcp:192.0.2.2:49152")
    var peerFailure: ControlError?

    init(inner: FakeControl) { self.inner = inner }

    func script(progress: [JSONValue], outcome: Result<MigrationResult, ControlError>) {
        self.progress = progress
        self.outcome = outcome
    }

    func setPeerFailure(_ error: ControlError?) { peerFailure = error }

    // VMControl: the inner fake's.
    func up(_ request: UpRequest) async throws(ControlError) -> VMStatus { try await inner.up(request) }
    func list() async -> [VMStatus] { await inner.list() }
    func status(_ name: String) async throws(ControlError) -> VMStatus { try await inner.status(name) }
    func start(_ name: String) async throws(ControlError) -> VMStatus { try await inner.start(name) }
    func stop(_ name: String, timeout: Duration) async throws(ControlError) -> VMStatus {
        try await inner.stop(name, timeout: timeout)
    }
    func kill(_ name: String) async throws(ControlError) -> VMStatus { try await inner.kill(name) }
    func remove(_ name: String, force: Bool) async throws(ControlError) { try await inner.remove(name, force: force) }
    func pause(_ name: String) async throws(ControlError) -> VMStatus { try await inner.pause(name) }
    func resume(_ name: String) async throws(ControlError) -> VMStatus { try await inner.resume(name) }
    func qmp(_ name: String, command: String, arguments: JSONObject?) async throws(ControlError) -> JSONValue {
        try await inner.qmp(name, command: command, arguments: arguments)
    }
    func serialLog(_ name: String) async throws(ControlError) -> String { try await inner.serialLog(name) }
    func events(vm: String?, history: Int, follow: Bool) async -> AsyncStream<CorralEvent> {
        await inner.events(vm: vm, history: history, follow: follow)
    }

    // MigrationControl.
    func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> MigrationResult {
        calls.append(.migrate(name, request))
        _ = try await inner.status(name)
        func publish(_ event: String, _ data: JSONValue?) async {
            await inner.push(CorralEvent(time: 1, vm: name, source: .corral, name: event, data: data))
        }
        await publish("migration-started", ["to": .string(request.to.description)])
        for data in progress { await publish("migration-progress", data) }
        switch outcome {
        case .success(let result):
            await publish("migrated", ["to": .string(request.to.description)])
            return result
        case .failure(let error):
            await publish("migration-failed", ["reason": .string(error.message)])
            throw error
        }
    }

    func cancelMigration(_ name: String) async throws(ControlError) {
        calls.append(.cancel(name))
        _ = try await inner.status(name)
    }

    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        calls.append(.prepare(request))
        if let peerFailure { throw peerFailure }
        return incomingReply
    }

    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        calls.append(.commit(name))
        if let peerFailure { throw peerFailure }
        return try await inner.status(name)
    }

    func abortIncoming(_ name: String) async throws(ControlError) {
        calls.append(.abort(name))
        if let peerFailure { throw peerFailure }
    }
}

/// The migration routes through a real daemon listener and `CorralClient` (Unix socket), and
/// `HTTPMigrationPeer` against the TCP listener with its token.
@Suite struct MigrationRouteTests {
    static let progress: [JSONValue] = [
        ["status": "setup"],
        // Integral numbers decode as integers: whole values are written as such so the round trip is exact.
        ["status": "active", "percent": 25.5, "mibPerSecond": 100.25, "remainingBytes": 3_000_000,
         "totalBytes": 4_000_000],
        ["status": "completed", "percent": 100, "remainingBytes": 0, "totalBytes": 4_000_000],
    ]
    static let result = MigrationResult(name: "web", destination: "192.0.2.2:7070", totalMilliseconds: 3456,
                                        downtimeMilliseconds: 12, setupMilliseconds: 5, transferredBytes: 4_000_000)
    static let request = MigrateRequest(to: "192.0.2.2:7070", token: "t0k",
                                        options: MigrationOptions(bandwidthBytesPerSecond: 1 << 20, multifdChannels: 2))

    static func incoming() -> IncomingRequest {
        let profile = Profile(name: "web", machine: "q35", accel: .tcg, cpu: CPU(count: 1, max: 1),
                              memory: Memory(size: .mib(256)), boot: Boot(kernel: "/k", initrd: "/i", cmdline: nil))
        return IncomingRequest(config: .init(profile: profile), accel: .tcg, options: MigrationOptions(postcopy: true),
                               listenHost: "192.0.2.2")
    }

    func fake() -> FakeMigrationControl {
        FakeMigrationControl(inner: FakeControl(vms: [FakeControl.status("web")]))
    }

    func withClient<T: Sendable>(_ control: any VMControl, _ body: @Sendable (CorralClient) async throws -> T)
        async throws -> T
    {
        try await DaemonHarness.run(control) { harness in
            try await CorralClient.withClient(.unixSocket(harness.socketPath), body)
        }
    }

    @Test func migrateStreamsEveryProgressEventThenTheResult() async throws {
        let control = fake()
        await control.script(progress: Self.progress, outcome: .success(Self.result))
        let lines = try await withClient(control) { client in
            var lines: [MigrationStreamLine] = []
            for try await line in try await client.migrate("web", Self.request) { lines.append(line) }
            return lines
        }
        let progress = lines.compactMap { line -> JSONValue? in
            if case .progress(let event) = line.kind { return event.data }
            return nil
        }
        #expect(progress == Self.progress, "exactly the progress events, in order, none of the others")
        #expect(lines.last?.kind == .completed(Self.result))
        #expect(lines.count == Self.progress.count + 1)
        let last = try #require(lines.last?.text)
        #expect(try JSONDecoder().decode(MigrateOutcome.self, from: Data(last.utf8)) == MigrateOutcome(result: Self.result))
        #expect(await control.calls == [.migrate("web", Self.request)])
    }

    @Test func aFailedMigrationEndsWithItsErrorLine() async throws {
        let control = fake()
        let cancelled = ControlError.conflict("migration cancelled; web keeps running here")
        await control.script(progress: Array(Self.progress.prefix(2)), outcome: .failure(cancelled))
        let (lines, thrown) = try await withClient(control) { client in
            var lines: [MigrationStreamLine] = []
            for try await line in try await client.migrate("web", Self.request) { lines.append(line) }
            do {
                _ = try await client.migrateAndWait("web", Self.request)
                return (lines, nil as ControlError?)
            } catch let error as ControlError {
                return (lines, error)
            }
        }
        #expect(lines.count == 3)
        #expect(lines.last?.kind == .failed(cancelled))
        #expect(thrown == cancelled)
    }

    @Test func refusalsBeforeTheStreamKeepTheirStatus() async throws {
        let control = fake()
        try await withClient(control) { client in
            await #expect(throws: ControlError.notFound("no VM named ghost")) {
                _ = try await client.migrate("ghost", Self.request)
            }
            let bad = MigrateRequest(to: "192.0.2.2:7070", options: MigrationOptions(postcopy: true, multifdChannels: 2))
            await #expect(throws: ControlError.invalidRequest(bad.options.problems().joined(separator: "; "))) {
                _ = try await client.migrate("web", bad)
            }
            await #expect(throws: ControlError.invalidRequest(
                "--to: port 0 cannot be connected to: give the destination daemon's port (1…65535)")) {
                _ = try await client.migrate("web", MigrateRequest(to: "192.0.2.2:0"))
            }
        }
        #expect(await control.calls.isEmpty, "nothing reached migrate")
    }

    /// `to` is a `HostPort` on the wire: a body whose `to` is not one does not decode, and the message says why.
    @Test func aDestinationThatIsNotHostPortDoesNotDecode() async throws {
        let control = fake()
        let app = Application(router: CorralAPI(control: control).router())
        let messages = try await app.test(.router) { client in
            var messages: [String] = []
            for to in ["2001:db8::2:7070", "192.0.2.2", "[2001:db8::2]:70000"] {
                let response = try await client.execute(
                    uri: "/v1/vms/web/migrate", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"to":"\#(to)","options":{}}"#))
                #expect(response.status == .badRequest)
                messages.append(try JSONDecoder().decode(ErrorBody.self, from: Data(response.body.readableBytesView)).message)
            }
            return messages
        }
        #expect(messages == [
            "field `to`: '2001:db8::2:7070' has more than one ':': an IPv6 address goes in brackets, e.g. [2001:db8::2]:7070",
            "field `to`: '192.0.2.2' has no port: expected HOST:PORT or [IPV6]:PORT, e.g. 192.0.2.2:7070 or [2001:db8::2]:7070",
            "field `to`: port 70000 is outside 0…65535",
        ])
        #expect(await control.calls.isEmpty, "nothing reached migrate")
    }

    @Test func cancelAnswers204() async throws {
        let control = fake()
        try await withClient(control) { client in
            try await client.cancelMigration("web")
            await #expect(throws: ControlError.notFound("no VM named ghost")) { try await client.cancelMigration("ghost") }
        }
        #expect(await control.calls == [.cancel("web"), .cancel("ghost")])
    }

    @Test func everyMigrationRouteAnswers501WithoutMigrationControl() async throws {
        let control = LifecycleOnlyControl(inner: FakeControl(vms: [FakeControl.status("web")]))
        try await withClient(control) { client in
            for attempt in 0..<5 {
                do {
                    switch attempt {
                    case 0: _ = try await client.migrate("web", Self.request)
                    case 1: try await client.cancelMigration("web")
                    case 2: _ = try await client.prepareIncoming(Self.incoming())
                    case 3: _ = try await client.commitIncoming("web")
                    default: try await client.abortIncoming("web")
                    }
                    Issue.record("attempt \(attempt) was served")
                } catch let error as CorralClientError {
                    #expect(error == .notSupported("migration is not supported by this daemon"), "attempt \(attempt)")
                }
            }
        }
    }

    @Test func httpPeerCallsThePeerRoutesOverTCPWithTheToken() async throws {
        let control = fake()
        let incoming = Self.incoming()
        try await DaemonHarness.run(control, token: "s3cret") { harness in
            let port = try #require(harness.tcpPort)
            let peer = HTTPMigrationPeer(address: try HostPort(host: "127.0.0.1", port: port), token: "s3cret")
            #expect(try await peer.prepareIncoming(incoming) == IncomingReply(uri: "tcp:192.0.2.2:49152"))
            #expect(try await peer.commitIncoming("web").name == "web")
            try await peer.abortIncoming("web")

            // The peer's own refusal keeps its kind and names the destination.
            await control.setPeerFailure(.refused("QEMU binary 'qemu-system-x86_64' is not installed on this host"))
            await #expect(throws: ControlError.refused(
                "destination 127.0.0.1:\(port): QEMU binary 'qemu-system-x86_64' is not installed on this host")) {
                _ = try await peer.prepareIncoming(incoming)
            }

            for token: String? in ["wrong", nil] {
                let intruder = HTTPMigrationPeer(address: try HostPort(host: "127.0.0.1", port: port), token: token)
                let why = token == nil ? "wants a token" : "refused the token"
                await #expect(throws: ControlError.refused("destination 127.0.0.1:\(port): the daemon \(why); "
                    + "pass the destination's token file with --token-file")) {
                    _ = try await intruder.prepareIncoming(incoming)
                }
            }
        }
        #expect(await control.calls == [.prepare(incoming), .commit("web"), .abort("web"), .prepare(incoming)])
    }

    @Test func httpPeerWithNothingListeningIsAnInternalErrorNamingIt() async throws {
        // A port from the kernel, closed again: nothing listens there.
        let port = try await DaemonHarness.run(fake(), token: "x") { harness in try #require(harness.tcpPort) }
        let peer = HTTPMigrationPeer(address: try HostPort(host: "127.0.0.1", port: port), token: "x")
        do {
            _ = try await peer.abortIncoming("web")
            Issue.record("a closed port answered")
        } catch {
            guard case .internalError(let message) = error else {
                Issue.record("expected internalError, got \(error)")
                return
            }
            #expect(message.hasPrefix("destination 127.0.0.1:\(port): "), "\(message)")
            #expect(message.contains("Connection refused"), "\(message)")
        }
        #expect(HTTPMigrationPeer(address: "[2001:db8::2]:7070", token: nil).address.description == "[2001:db8::2]:7070")
    }
}
