import Foundation
import CorralModel
import Supervisor
import Testing
import TestSupport

/// `agent: true` end to end: `corral daemon`, real QEMU under TCG, the test guest running qemu-ga on its
/// virtio-serial port. What `corral status --json` reports must be what the guest itself has on the NIC.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10))) struct GuestAgentAddressTests {
    static let ipv6 = "2001:db8:13::10"

    @Test func statusShowsTheIPv4AndIPv6AddressesTheGuestAgentReports() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("agt")
        defer { DaemonCLITests.cleanUp(root) }
        let daemon = try await DaemonCLITests.Daemon.start(root: root)
        let profile = try Guest.writeProfile(in: root, name: "agented", cmdline: "corral.ip6=\(Self.ipv6)/64",
                                             extra: "agent: true\n")
        let up = try await daemon.run("up", profile)
        try #require(up.status == .exited(0), "\(up)")
        let started = try await daemon.json(VMStatus.self, "status", "agented")
        #expect(FileManager.default.fileExists(atPath: root + "/state/vms/agented/agent.sock"))

        // What the guest has: its DHCP address from QEMU's user network and the static IPv6.
        let beat = try await HeartbeatWait.first(in: started.serialLog) {
            $0.ips["eth0"] != nil && $0.ip6["eth0"] != nil
        }
        let guestIPv4 = try #require(beat.ips["eth0"])
        let guestIPv6 = try #require(beat.ip6["eth0"])

        // What corral says, once the agent answered (qemu-ga starts with the guest's first heartbeats).
        var status = started
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while ContinuousClock.now < deadline,
              status.agent != "connected" || !status.nics[0].addresses.contains(Self.ipv6) {
            try await Task.sleep(for: .milliseconds(500))
            status = try await daemon.json(VMStatus.self, "status", "agented")
        }
        #expect(status.agent == "connected", "\(status)")
        let nic = try #require(status.nics.first)
        #expect(nic.addressSource == "agent")
        #expect(nic.addresses.first == guestIPv4, "IPv4 first: \(nic.addresses)")
        #expect(nic.addresses.contains(Self.ipv6) && nic.addresses.contains(guestIPv6), "\(nic.addresses)")
        #expect(nic.addresses.allSatisfy { !$0.lowercased().hasPrefix("fe80:") && $0 != "127.0.0.1" && $0 != "::1" },
                "no link-local or loopback addresses: \(nic.addresses)")

        let ls = try await daemon.run("ls")
        #expect(ls.output.split(separator: "\n").last?.hasSuffix(guestIPv4) == true, "\(ls)")
        let human = try await daemon.run("status", "agented")
        #expect(human.output.contains("(agent)") && human.output.contains("agent:"), "\(human)")

        // The socket goes with QEMU, and there is no agent to ask any more.
        let stop = try await daemon.run("stop", "agented", "--timeout", "60")
        #expect(stop.status == .exited(0), "\(stop)")
        #expect(!FileManager.default.fileExists(atPath: root + "/state/vms/agented/agent.sock"))
        let stopped = try await daemon.json(VMStatus.self, "status", "agented")
        #expect(stopped.agent == nil && stopped.nics[0].addresses.isEmpty)
        #expect(await daemon.terminate() == .exited(0))
    }
}
