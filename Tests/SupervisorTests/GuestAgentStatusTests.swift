import CorralCore
import CorralModel
import Foundation
import GuestAgent
import Profiles
import QEMUCommand
import Synchronization
import Testing
@testable import Supervisor

/// `status` with a guest agent channel: the agent's addresses on the interface with the NIC's MAC, else the managed
/// network's lease; an agent that does not answer costs a bounded wait once, then nothing.
@Suite(.timeLimit(.minutes(1))) struct GuestAgentStatusTests {
    static let mac = "52:54:00:0a:00:01"
    static let lease = "203.0.113.50"

    /// A VM on managed network `lab` with `agent: true`, its folder in a fresh state root, a lease for its NIC.
    struct Scene {
        let root: String
        let paths: VMPaths
        let launcher = FakeLauncher()

        init() throws {
            root = NSTemporaryDirectory() + "corral-agent-\(UUID().uuidString.prefix(8))"
            paths = VMPaths(stateRoot: root, name: "web")
            try FileManager.default.createDirectory(atPath: paths.folder, withIntermediateDirectories: true)
            let leases = NetworkPlan.Files(stateRoot: root, name: "lab")
            try FileManager.default.createDirectory(atPath: leases.folder, withIntermediateDirectories: true)
            try "1900000000 \(GuestAgentStatusTests.mac) \(GuestAgentStatusTests.lease) web *\n"
                .write(toFile: leases.leases, atomically: true, encoding: .utf8)
        }

        /// The VM, started on a scripted QEMU, asking `agent`.
        func start(_ agent: ScriptedAgent, agentEnabled: Bool = true) async throws -> ManagedVM {
            let profile = Profile(name: "web", accel: .tcg, memory: Memory(size: .mib(256)),
                                  nics: [NIC(id: "net0", mode: .network, mac: GuestAgentStatusTests.mac, network: "lab")],
                                  agent: agentEnabled)
            launcher.willStart(pid: 4242)
            let asked = SocketPaths()
            let vm = ManagedVM(record: VMRecord(name: "web", profilePath: nil, accel: .tcg, now: 0),
                               config: LiveConfig(profile: profile), paths: paths, hub: EventHub(), launcher: launcher,
                               restartEngine: ManagedVMTests.options.restartEngine, unplugTimeout: .seconds(1),
                               guestAgent: { path in
                                   asked.add(path)
                                   return agent
                               },
                               logger: ManagedVMTests.quiet)
            try await vm.launch(paused: false)
            if agentEnabled { #expect(asked.all == [paths.agentSocket], "the agent behind the VM's agent.sock") }
            return vm
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: root) }
    }

    final class SocketPaths: Sendable {
        private let paths = Mutex<[String]>([])
        func add(_ path: String) { paths.withLock { $0.append(path) } }
        var all: [String] { paths.withLock { $0 } }
    }

    static let guest = [
        GuestInterface(name: "lo", mac: "00:00:00:00:00:00", addresses: [
            GuestIPAddress(address: "127.0.0.1", family: .ipv4, prefix: 8),
        ]),
        GuestInterface(name: "eth0", mac: mac, addresses: [
            GuestIPAddress(address: "fe80::5054:ff:fe0a:1", family: .ipv6, prefix: 64),
            GuestIPAddress(address: "2001:db8:5::10", family: .ipv6, prefix: 64),
            GuestIPAddress(address: "203.0.113.77", family: .ipv4, prefix: 24),
        ]),
    ]

    @Test func theAgentsAddressesWinOverTheLease() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let agent = ScriptedAgent(.answer(Self.guest))
        let vm = try await scene.start(agent)
        let status = await vm.status()
        #expect(status.agent == "connected")
        #expect(status.nics.map(\.addresses) == [["203.0.113.77", "2001:db8:5::10"]])
        #expect(status.nics.map(\.addressSource) == ["agent"])
        // Within maxAge the answer is reused: no second query.
        #expect(await vm.status().nics[0].addresses == ["203.0.113.77", "2001:db8:5::10"])
        #expect(agent.calls == 1)
        try await vm.kill()
        #expect(await vm.status().agent == nil, "no agent without a QEMU")
        agent.verify()
    }

    @Test func anAgentThatFailsFallsBackToTheLease() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let agent = ScriptedAgent(.fail(.timeout(after: .milliseconds(1500))))
        let vm = try await scene.start(agent)
        let status = await vm.status()
        #expect(status.agent == "not answering")
        #expect(status.nics.map(\.addresses) == [[Self.lease]])
        #expect(status.nics.map(\.addressSource) == ["dhcp"])
        try await vm.kill()
        agent.verify()
    }

    @Test func aHangingAgentCostsOneBoundedWaitThenNothing() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let agent = ScriptedAgent(.hang)
        defer { agent.release() }
        let vm = try await scene.start(agent)
        // The first status gives up on the hanging agent (after the bounded first wait) and shows the lease.
        let first = await vm.status()
        #expect(first.agent == "not answering" && first.nics[0].addresses == [Self.lease])
        // The query still runs: the next status neither waits for it again nor starts another (one call in all).
        let second = await vm.status()
        #expect(second.nics[0].addressSource == "dhcp")
        #expect(agent.calls == 1)
        try await vm.kill()
        agent.verify()
    }

    @Test func theAnswerIsRefreshedOnceItIsOld() async throws {
        let cache = GuestAgentCache(agent: ScriptedAgent(.fail(.timeout(after: .seconds(1))), .answer(Self.guest)),
                                    maxAge: .milliseconds(50))
        #expect(await cache.answer() == .notAnswering(.timeout(after: .seconds(1))))
        try await Task.sleep(for: .milliseconds(100))
        // Stale: answered at once with the old answer while the refresh runs …
        #expect(await cache.answer() == .notAnswering(.timeout(after: .seconds(1))))
        // … which is there soon after.
        var answer = await cache.answer()
        for _ in 0..<100 where answer != .interfaces(Self.guest) {
            try await Task.sleep(for: .milliseconds(10))
            answer = await cache.answer()
        }
        #expect(answer == .interfaces(Self.guest))
    }

    @Test func withoutAnAgentChannelNoAgentIsAsked() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let agent = ScriptedAgent()
        let vm = try await scene.start(agent, agentEnabled: false)
        let status = await vm.status()
        #expect(status.agent == nil)
        #expect(status.nics.map(\.addresses) == [[Self.lease]] && status.nics[0].addressSource == "dhcp")
        try await vm.kill()
        agent.verify()
    }
}
