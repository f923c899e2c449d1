import CorralCore
import Foundation
import GuestAgent
import JSON
import Testing

/// The QGA exchange: sync with a sentinel, stale data dropped, one bounded reply; and `AgentStream` byte by byte.
@Suite(.timeLimit(.minutes(1))) struct GuestAgentClientTests {
    static let interfaces = """
        {"return": [{"name": "eth0", "hardware-address": "52:54:00:12:34:56", "ip-addresses": [
          {"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": 24},
          {"ip-address-type": "ipv6", "ip-address": "2001:db8::10", "prefix": 64}]}]}

        """

    /// What a channel carries when an earlier client timed out: the tail of a reply it never read, the agent's
    /// complaint about the flushing 0xFF, a sync reply with another client's id, then ours and the reply.
    static func noisy(_ id: Int64) -> [UInt8] {
        FakeAgentSocket.bytes("\"prefix\": 64}]}]}\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n")
            + FakeAgentSocket.sentinel + FakeAgentSocket.bytes("{\"return\": 99}\n{\"return\": []}\n")
            + FakeAgentSocket.sentinel + FakeAgentSocket.bytes("{\"return\": \(id)}\n" + interfaces)
    }

    // MARK: AgentStream

    @Test func onlyWhatFollowsTheOwnSyncReplyCounts() throws {
        var stream = AgentStream(syncID: 4242)
        let messages = try stream.feed(Self.noisy(4242))
        let synced = stream.synced
        #expect(synced)
        #expect(messages.count == 1)
        #expect(messages.first?["return"]?[0]?["name"] == "eth0")
    }

    @Test func theSameBytesOneAtATime() throws {
        var stream = AgentStream(syncID: 4242)
        var messages: [JSONValue] = []
        for byte in Self.noisy(4242) { messages += try stream.feed([byte]) }
        let synced = stream.synced
        #expect(synced && messages.count == 1)
        #expect(messages.first?["return"]?[0]?["hardware-address"] == "52:54:00:12:34:56")
    }

    @Test func garbageBeforeTheSyncIsStaleButAfterItAFailure() throws {
        var stream = AgentStream(syncID: 7)
        let stale = try stream.feed(FakeAgentSocket.sentinel + FakeAgentSocket.bytes("}}not json{"))
        let syncedEarly = stream.synced
        #expect(stale.isEmpty && !syncedEarly)
        let sync = try stream.feed(FakeAgentSocket.sentinel + FakeAgentSocket.bytes("{\"return\": 7}\n"))
        let synced = stream.synced
        #expect(sync.isEmpty && synced)
        var failure: GuestAgentError?
        do { _ = try stream.feed(FakeAgentSocket.bytes("]]")) } catch { failure = error }
        #expect(failure != nil)
    }

    @Test func aSyncReplyWithoutItsSentinelDoesNotCount() throws {
        var stream = AgentStream(syncID: 7)
        let messages = try stream.feed(FakeAgentSocket.bytes("{\"return\": 7}\n" + Self.interfaces))
        let synced = stream.synced
        #expect(messages.isEmpty && !synced)
    }

    @Test func ourIdRightAfterAnotherClientsSyncReplyIsStaleToo() throws {
        // A plain guest-sync reply that happens to carry our id, behind another client's delimited one: only a
        // sentinel starts what may be ours.
        var stream = AgentStream(syncID: 7)
        let messages = try stream.feed(FakeAgentSocket.sentinel + FakeAgentSocket.bytes("{\"return\": 99}\n{\"return\": 7}\n"))
        let synced = stream.synced
        #expect(messages.isEmpty && !synced)
    }

    // MARK: The client against a scripted agent

    @Test func theClientSyncsThenAsksAndParses() async throws {
        let agent = try FakeAgentSocket { Self.noisy($0) }
        let client = GuestAgentClient(socketPath: agent.path)
        let interfaces = try await client.networkInterfaces()
        #expect(interfaces == [GuestInterface(name: "eth0", mac: "52:54:00:12:34:56", addresses: [
            GuestIPAddress(address: "10.0.2.15", family: .ipv4, prefix: 24),
            GuestIPAddress(address: "2001:db8::10", family: .ipv6, prefix: 64),
        ])])
        // A flushing 0xFF, the sync with a fresh id, then the command.
        let request = agent.request
        #expect(request.first == 0xFF)
        let lines = String(decoding: request.dropFirst(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.hasPrefix("{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":") == true)
        #expect(FakeAgentSocket.syncID(in: request) > 0)
        #expect(lines.last == "{\"execute\":\"guest-network-get-interfaces\"}")
    }

    @Test func anAgentThatNeverAnswersTimesOutInTime() async throws {
        let agent = try FakeAgentSocket { _ in nil }
        let client = GuestAgentClient(socketPath: agent.path, timeout: .milliseconds(300))
        // The typed timeout is the check (a CI run beside other suites once took 2.03 s to deliver it, so no wall-clock
        // bound beyond "it returns": the suite's own time limit catches a hang).
        await #expect(throws: GuestAgentError.timeout(after: .milliseconds(300))) { try await client.networkInterfaces() }
    }

    @Test func noSocketIsUnavailableAtOnce() async throws {
        let client = GuestAgentClient(socketPath: "/nonexistent/agent.sock")
        await #expect {
            try await client.networkInterfaces()
        } throws: { error in
            guard case .unavailable(let path, let reason)? = error as? GuestAgentError else { return false }
            return path == "/nonexistent/agent.sock" && reason == "No such file or directory"
        }
    }

    @Test func aReplyThatNeverEndsIsCutAtTheCap() async throws {
        let agent = try FakeAgentSocket { id in
            FakeAgentSocket.sentinel + FakeAgentSocket.bytes("{\"return\": \(id)}\n{\"return\": [\"")
                + [UInt8](repeating: UInt8(ascii: "x"), count: GuestAgentClient.maxReplyBytes + 1)
        }
        let client = GuestAgentClient(socketPath: agent.path, timeout: .seconds(20))
        await #expect(throws: GuestAgentError.protocolError(
            "more than 1024 KiB without a complete reply to 'guest-network-get-interfaces'")) {
            try await client.networkInterfaces()
        }
    }

    @Test func anErrorReplyIsTyped() async throws {
        let agent = try FakeAgentSocket { id in
            FakeAgentSocket.sentinel + FakeAgentSocket.bytes(
                "{\"return\": \(id)}\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"Command disabled\"}}\n")
        }
        await #expect(throws: GuestAgentError.commandFailed(command: "guest-network-get-interfaces",
                                                            errorClass: "GenericError", desc: "Command disabled")) {
            try await GuestAgentClient(socketPath: agent.path).networkInterfaces()
        }
    }

    @Test func aReplyOfTheWrongShapeIsAProtocolError() async throws {
        let agent = try FakeAgentSocket { id in
            FakeAgentSocket.sentinel + FakeAgentSocket.bytes("{\"return\": \(id)}\n{\"return\": {\"eth0\": 1}}\n")
        }
        await #expect(throws: GuestAgentError.protocolError(
            "guest-network-get-interfaces returned an object, not a list of interfaces")) {
            try await GuestAgentClient(socketPath: agent.path).networkInterfaces()
        }
    }
}
