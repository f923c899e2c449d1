import Foundation
import Profiles
import QEMUCommand
import Testing

/// `agent: true`: the guest agent's chardev (a socket QEMU listens on in the VM's folder), a virtio-serial controller
/// on the root bus after the balloon, and the port named `org.qemu.guest_agent.0`.
@Suite struct AgentArgvTests {
    static func profile(agent: Bool, machine: String = "q35") -> Profile {
        var profile = Fixture.rich(machine: machine)
        profile.agent = agent
        return profile
    }

    @Test func theChannelIsAChardevSocketAndAVirtioSerialPort() {
        let args = QEMUArgv.build(LiveConfig(profile: Self.profile(agent: true)), Fixture.runtime(name: "rich"))
        #expect(args.values(of: "-chardev").contains(
            "socket,id=agent0,path=/run/corral/vms/rich/agent.sock,server=on,wait=off"))
        #expect(args.devices(driver: "virtio-serial-pci") == [
            ["driver": "virtio-serial-pci", "id": "agent-serial0", "bus": "pcie.0", "addr": "09.0"],
        ])
        #expect(args.devices(driver: "virtserialport") == [
            ["driver": "virtserialport", "id": "agent-port0", "bus": "agent-serial0.0", "chardev": "agent0",
             "name": "org.qemu.guest_agent.0"],
        ])
        // After the balloon (08.0), before the hotplugged devices; nothing else moves.
        #expect(args.device(id: "balloon0")?["addr"] == "08.0")
    }

    @Test func withoutTheAgentNothingIsAddedAndNothingMoves() {
        let with = QEMUArgv.build(LiveConfig(profile: Self.profile(agent: true)), Fixture.runtime())
        let without = QEMUArgv.build(LiveConfig(profile: Self.profile(agent: false)), Fixture.runtime())
        #expect(!without.joined(separator: " ").contains("agent"))
        #expect(without.devices(driver: "virtio-serial-pci").isEmpty)
        let removed = with.filter { !without.contains($0) }
        #expect(removed.count == 3, "the chardev and the two devices: \(removed)")
    }

    @Test func onI440fxTheControllerTakesAPCISlotToo() {
        let args = QEMUArgv.build(LiveConfig(profile: Self.profile(agent: true, machine: "pc")), Fixture.runtime())
        #expect(args.devices(driver: "virtio-serial-pci").first?["bus"] == "pci.0")
        #expect(PCILayout(profile: Self.profile(agent: true, machine: "pc")).problems.isEmpty)
    }

    @Test func theSocketPathIsEscapedAndDefaultsBesideTheQMPSocket() {
        #expect(RuntimeOptions(accel: .tcg, qmpSocket: "/s/vm/qmp.sock").agentSocket == "/s/vm/agent.sock")
        let runtime = RuntimeOptions(accel: .tcg, qmpSocket: "/q", agentSocket: "/a,b/agent.sock")
        let args = QEMUArgv.build(LiveConfig(profile: Self.profile(agent: true)), runtime)
        let chardev = args.values(of: "-chardev").first { $0.hasPrefix("socket,id=agent0") }
        #expect(chardev.map(unescapedOptions) == ["socket", "id=agent0", "path=/a,b/agent.sock", "server=on", "wait=off"])
    }

    @Test func aMigrationDestinationGetsTheSameChannel() throws {
        // The destination builds its argv from the LiveConfig the source sends (JSON): the agent comes along.
        let config = LiveConfig(profile: Self.profile(agent: true))
        let sent = try JSONDecoder().decode(LiveConfig.self, from: JSONEncoder().encode(config))
        #expect(sent.profile.agent)
        #expect(QEMUArgv.build(sent, Fixture.runtime()) == QEMUArgv.build(config, Fixture.runtime()))
        // A resolved profile stored before `agent` existed loads without one.
        var object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.profile(agent: true)))
            as? [String: Any])
        object["agent"] = nil
        let old = try JSONDecoder().decode(Profile.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(!old.agent)
    }
}
