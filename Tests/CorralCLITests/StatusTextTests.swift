@testable import CorralCLI
import CorralModel
import Testing

/// How `ls` and `status` show a VM's guest addresses.
struct StatusTextTests {
    static func vm(_ nics: [VMStatus.NICInfo], agent: String? = nil) -> VMStatus {
        VMStatus(name: "web", state: .running, pid: 7, accel: "tcg", uptimeSeconds: 5, cpus: .init(online: 1, max: 1),
                 memory: .init(sizeBytes: 1 << 30, maxBytes: 1 << 30, balloonBytes: nil), disks: [], nics: nics,
                 qmpSocket: "/s/qmp.sock", serialLog: "/s/serial.log", restartCount: 0, lastExit: nil, agent: agent)
    }

    @Test func lsShowsTheFirstIPv4AddressElseTheFirstAddress() {
        let v6First = VMStatus.NICInfo(id: "net0", mac: "52:54:00:00:00:01", mode: "user",
                                       addresses: ["2001:db8::10"], addressSource: "agent")
        let v4Later = VMStatus.NICInfo(id: "net1", mac: "52:54:00:00:00:02", mode: "user",
                                       addresses: ["fec0::1", "10.0.2.15"], addressSource: "agent")
        #expect(StatusText.address(Self.vm([v6First, v4Later])) == "10.0.2.15")
        #expect(StatusText.address(Self.vm([v6First])) == "2001:db8::10")
        #expect(StatusText.address(Self.vm([])) == nil)
        #expect(StatusText.table([Self.vm([v6First, v4Later])])[1].hasSuffix("  10.0.2.15"))
    }

    @Test func statusShowsEachNICsAddressesWithTheirSourceAndTheAgent() {
        let nic = VMStatus.NICInfo(id: "net0", mac: "52:54:00:00:00:01", mode: "network", network: "lab",
                                   addresses: ["203.0.113.7", "2001:db8::7"], addressSource: "agent")
        let lines = StatusText.block(Self.vm([nic], agent: "connected"))
        #expect(lines.contains { $0.hasPrefix("nics:") && $0.hasSuffix("lab 203.0.113.7, 2001:db8::7 (agent)") })
        #expect(lines.contains { $0.hasPrefix("agent:") && $0.hasSuffix(" connected") })
        #expect(!StatusText.block(Self.vm([nic])).contains { $0.hasPrefix("agent:") })
    }
}
