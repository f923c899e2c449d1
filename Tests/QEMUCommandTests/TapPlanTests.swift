import JSON
import Profiles
import QEMUCommand
import Testing

/// Taps corral makes: which NICs, their names, queues, vhost and the descriptor numbers QEMU is told about.
@Suite struct TapPlanTests {
    static func config(cpus: Int = 2, _ nics: [NIC], plugged: [NIC] = []) -> LiveConfig {
        var config = LiveConfig(profile: Profile(name: "web", cpu: CPU(count: cpus, max: 4), memory: Memory(size: .mib(512)),
                                                 nics: nics))
        config.hotplugged.nics = plugged.map { PluggedNIC(nic: $0, port: "hp0") }
        return config
    }

    @Test func onlyBridgeNICsAndTapsWithoutANameGetATapFromCorral() {
        let nics = [NIC(id: "u", mode: .user), NIC(id: "lan", mode: .bridge, bridge: "br0"),
                    NIC(id: "own", mode: .tap, ifname: "tap7"), NIC(id: "bare", mode: .tap)]
        let entries = TapPlan.entries(Self.config(cpus: 1, nics), vhostAvailable: false)
        #expect(entries.map(\.nicID) == ["lan", "bare"])
        #expect(entries.map(\.bridge) == ["br0", nil])
        #expect(entries.map(\.fds) == [TapFDs(taps: [3]), TapFDs(taps: [4])])
    }

    @Test func queuesFollowTheVCPUsUpToEightAndVhostTakesADescriptorPerQueue() {
        let nics = [NIC(id: "a", mode: .bridge, bridge: "br0"), NIC(id: "b", mode: .bridge, bridge: "br0", queues: 1),
                    NIC(id: "c", mode: .bridge, model: .e1000e, bridge: "br0"), NIC(id: "d", mode: .tap, vhost: false)]
        let entries = TapPlan.entries(Self.config(cpus: 12, nics), vhostAvailable: true)
        #expect(entries.map { $0.queues } == [8, 1, 1, 8])
        #expect(entries.map { $0.vhost } == [true, true, false, false])
        #expect(entries[0].fds == TapFDs(taps: Array(3...10), vhosts: Array(11...18)))
        #expect(entries[1].fds == TapFDs(taps: [19], vhosts: [20]))
        #expect(entries[2].fds == TapFDs(taps: [21]))
        #expect(entries[3].fds == TapFDs(taps: Array(22...29)))
    }

    @Test func hotpluggedNICsComeAfterTheProfilesAtLaunch() {
        let config = Self.config(cpus: 1, [NIC(id: "a", mode: .bridge, bridge: "br0")],
                                 plugged: [NIC(id: "p", mode: .bridge, bridge: "br1")])
        #expect(TapPlan.entries(config, vhostAvailable: false).map(\.nicID) == ["a", "p"])
    }

    @Test func netdevPassesDescriptorsNeverANameOrAHelper() {
        let nic = NIC(id: "lan", mode: .bridge, bridge: "br0")
        let single = TapPlan.Entry(nicID: "lan", ifname: "x", bridge: "br0", queues: 1, vhost: false,
                                   fds: TapFDs(taps: [3]))
        #expect(TapPlan.netdev(nic, single) == ["type": "tap", "id": "net-lan", "fd": "3"])
        let multi = TapPlan.Entry(nicID: "lan", ifname: "x", bridge: "br0", queues: 2, vhost: true,
                                  fds: TapFDs(taps: [3, 4], vhosts: [5, 6]))
        #expect(TapPlan.netdev(nic, multi)
            == ["type": "tap", "id": "net-lan", "fds": "3:4", "vhost": true, "vhostfds": "5:6"])
    }

    @Test func tapNamesAreStableShortAndDistinct() {
        let name = TapPlan.tapName(vmName: "web", nicID: "lan0")
        #expect(name == TapPlan.tapName(vmName: "web", nicID: "lan0"), "the same on every host and every start")
        #expect(name.hasPrefix("cr") && name.hasSuffix("-lan0") && name.utf8.count == 15)
        #expect(TapPlan.tapName(vmName: "a-very-long-vm-name-indeed", nicID: "a.long/nic:id").utf8.count <= 15)
        #expect(TapPlan.tapName(vmName: "web", nicID: "lan1") != name)
        #expect(TapPlan.tapName(vmName: "db", nicID: "lan0") != name)
        #expect(!TapPlan.tapName(vmName: "x", nicID: "a/b:c").contains("/"))
    }
}
