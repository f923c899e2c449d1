import CorralCore
import CorralModel
import Profiles
import Testing

struct HostDeviceMigrationTests {
    @Test func onlyFailoverPairsMove() throws {
        var profile = Profile(name: "web", memory: Memory(size: .gib(1)), nics: [NIC(id: "lan0")])
        #expect(HostDeviceMigration.refusal(profile) == nil, "no host devices")
        profile.hostdevs = [HostDevice(id: "vf0", vf: VirtualFunction(netdev: "eth1"), failover: "lan0"),
                            HostDevice(id: "sim", emulated: .e1000e, failover: "lan0")]
        #expect(HostDeviceMigration.refusal(profile) == nil, "failover pairs only")
        profile.hostdevs += [HostDevice(id: "gpu", pci: try PCIAddress(parsing: "0000:65:00.0")),
                             HostDevice(id: "vf1", vf: VirtualFunction(netdev: "eth1"))]
        #expect(HostDeviceMigration.refusal(profile) == "web has host devices that cannot move with it: gpu (pci), "
            + "vf1 (vf); only a VF paired with a virtio-net NIC (hostdevs[].failover) is unplugged for a migration "
            + "and replaced on the destination")
    }
}
