import API
import CorralModel
import CorralWire
import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Profiles
import CorralControl
import LogTail
import Supervisor
import Testing

/// The migration routes through a real daemon listener and `CorralClient` (Unix socket), and
/// `HTTPMigrationPeer` against the TCP listener with its token.
@Suite struct MigrationRouteTests {
    static let progress: [MigrationProgress] = [
        MigrationProgress(status: .setup),
        MigrationProgress(status: .active, ramTransferred: 1_000_000, ramRemaining: 3_000_000, ramTotal: 4_000_000,
                          mbps: 841.0, dirtyPagesRate: 120, expectedDowntimeMs: 40, totalTimeMs: 1200),
        MigrationProgress(status: .completed, ramTransferred: 4_100_000, ramRemaining: 0, ramTotal: 4_000_000,
                          totalTimeMs: 3456, downtimeMs: 12, setupTimeMs: 5),
        // A status this build does not know keeps its text.
        MigrationProgress(rawStatus: "future-phase"),
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

    func fake() -> FakeControl {
        FakeControl(vms: [FakeControl.status("web")])
    }

    func withClient<T: Sendable>(_ control: FakeControl, _ body: @Sendable (CorralClient) async throws -> T)
        async throws -> T
    {
        try await DaemonHarness.run(control) { harness in
            try await CorralClient.withClient(.unixSocket(harness.socketPath), body)
        }
    }

    @Test func migrateStreamsEveryProgressEventThenTheResult() async throws {
        let control = fake()
        await control.scriptMigration(progress: Self.progress, outcome: .success(Self.result))
        let lines = try await withClient(control) { client in
            var lines: [MigrationStreamLine] = []
            for try await line in try await client.migrate("web", Self.request) { lines.append(line) }
            return lines
        }
        let progress = lines.compactMap { line -> MigrationProgress? in
            if case .progress(let progress) = line.update { return progress }
            return nil
        }
        #expect(progress == Self.progress, "every progress value arrives typed and whole, in order")
        #expect(lines.last?.update == .completed(Self.result))
        #expect(lines.count == Self.progress.count + 1)
        // The wire: one {"progress": …} object per line (with the derived figures for scripts), then {"result": …}.
        let active = try JSONDecoder().decode(JSONValue.self, from: Data(lines[1].text.utf8))
        #expect(active["progress"]?["status"] == "active" && active["progress"]?["ramRemaining"] == 3_000_000)
        #expect(active["progress"]?["percent"] == 25 && active["progress"]?["mibPerSecond"] != nil)
        let last = try #require(lines.last?.text)
        #expect(try JSONDecoder().decode(MigrationStreamMessage.self, from: Data(last.utf8))
            == MigrationStreamMessage(.completed(Self.result)))
        #expect(await control.calls == [.migrate("web", Self.request)])
    }

    @Test func aFailedMigrationEndsWithItsErrorLine() async throws {
        let control = fake()
        let cancelled = ControlError.conflict("migration cancelled; web keeps running here")
        await control.scriptMigration(progress: Array(Self.progress.prefix(2)), outcome: .failure(cancelled))
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
        #expect(lines.last?.update == .failed(cancelled))
        #expect(thrown == cancelled)
    }

    @Test func refusalsBeforeTheStreamKeepTheirStatus() async throws {
        let control = fake()
        let bad = MigrateRequest(to: "192.0.2.2:7070", options: MigrationOptions(postcopy: true, multifdChannels: 2))
        try await withClient(control) { client in
            await #expect(throws: ControlError.notFound("no VM named ghost")) {
                _ = try await client.migrate("ghost", Self.request)
            }
            await #expect(throws: ControlError.invalidRequest(bad.options.problems().joined(separator: "; "))) {
                _ = try await client.migrate("web", bad)
            }
            await #expect(throws: ControlError.invalidRequest(
                "--to: port 0 cannot be connected to: give the destination daemon's port (1…65535)")) {
                _ = try await client.migrate("web", MigrateRequest(to: "192.0.2.2:0"))
            }
        }
        #expect(await control.calls == [.migrate("ghost", Self.request), .migrate("web", bad),
                                        .migrate("web", MigrateRequest(to: "192.0.2.2:0"))])
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
        #expect(await control.calls == [.cancelMigration("web"), .cancelMigration("ghost")])
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

            // The peer's own internal error stays internal (it answered; it is not a lost peer).
            await control.setPeerFailure(.internalError("cannot write vm.json"))
            await #expect(throws: ControlError.internalError("destination 127.0.0.1:\(port): cannot write vm.json")) {
                _ = try await peer.commitIncoming("web")
            }
            await control.setPeerFailure(nil)

            for token: String? in ["wrong", nil] {
                let intruder = HTTPMigrationPeer(address: try HostPort(host: "127.0.0.1", port: port), token: token)
                let why = token == nil ? "wants a token" : "refused the token"
                await #expect(throws: ControlError.refused("destination 127.0.0.1:\(port): the daemon \(why); "
                    + "pass the destination's token file with --token-file")) {
                    _ = try await intruder.prepareIncoming(incoming)
                }
            }
        }
        #expect(await control.calls == [.prepareIncoming(incoming), .commitIncoming("web"), .abortIncoming("web"),
                                        .prepareIncoming(incoming), .commitIncoming("web")])
    }

    /// A transport failure is `unreachable`, never `internalError`: the migration must tell a destination that
    /// answered with its own internal error from one that is gone.
    @Test func httpPeerWithNothingListeningIsUnreachableNamingIt() async throws {
        // A port from the kernel, closed again: nothing listens there.
        let port = try await DaemonHarness.run(fake(), token: "x") { harness in try #require(harness.tcpPort) }
        let peer = HTTPMigrationPeer(address: try HostPort(host: "127.0.0.1", port: port), token: "x")
        do {
            _ = try await peer.abortIncoming("web")
            Issue.record("a closed port answered")
        } catch {
            guard case .unreachable(let message) = error else {
                Issue.record("expected unreachable, got \(error)")
                return
            }
            #expect(message.hasPrefix("destination 127.0.0.1:\(port): "), "\(message)")
            #expect(message.contains("Connection refused"), "\(message)")
        }
        #expect(HTTPMigrationPeer(address: "[2001:db8::2]:7070", token: nil).address.description == "[2001:db8::2]:7070")
    }
}
