import Foundation
import CorralModel
import Profiles
import QEMUCommand
import Testing

/// Host devices in argv once the daemon has resolved them: each function of a multifunction device behind the
/// device's own root port, a chosen VF, and an emulated failover stand-in with its netdev.
struct HostDeviceArgvTests {
    static func devices(_ argv: [String]) -> [String] {
        argv.indices.filter { argv[$0] == "-device" || argv[$0] == "-netdev" }.map { argv[$0 + 1] }
    }

    @Test func resolvedFunctionsAndVFsAndAFailoverStandIn() throws {
        let gpu = HostDevice(id: "gpu", pci: try PCIAddress(parsing: "0000:65:00.0"), allFunctions: true)
        let vf = HostDevice(id: "vf0", vf: VirtualFunction(netdev: "enp101s0f0"), failover: "lan0")
        let standIn = HostDevice(id: "sim", emulated: .e1000e, failover: "lan1")
        let profile = Profile(name: "p", memory: Memory(size: .gib(1), merge: true),
                              nics: [NIC(id: "lan0", mac: "52:54:00:aa:bb:01"), NIC(id: "lan1")],
                              hostdevs: [gpu, vf, standIn])
        var runtime = RuntimeOptions(accel: .kvm, qmpSocket: "/run/q.sock")
        runtime.hostDevices = ["gpu": [try PCIAddress(parsing: "0000:65:00.0"), try PCIAddress(parsing: "0000:65:00.1")],
                               "vf0": [try PCIAddress(parsing: "0000:65:10.2")]]
        let argv = QEMUArgv.build(LiveConfig(profile: profile), runtime)
        #expect(argv.contains("q35,mem-merge=off"), "assigned devices pin guest RAM: no KSM")
        let lan1MAC = DeviceProps.stableMAC(vmName: "p", nicID: "lan1")
        let devices = Self.devices(argv)
        for expected in [
            #"{"type":"user","id":"hostnet-sim"}"#,
            #"{"driver":"pcie-root-port","id":"hd-gpu","bus":"pcie.0","addr":"01.0","multifunction":true,"chassis":1,"slot":1,"port":1}"#,
            #"{"driver":"pcie-root-port","id":"hd-vf0","bus":"pcie.0","addr":"01.1","chassis":1,"slot":2,"port":2}"#,
            #"{"driver":"pcie-root-port","id":"hd-sim","bus":"pcie.0","addr":"01.2","chassis":1,"slot":3,"port":3}"#,
            #"{"driver":"virtio-net-pci","id":"nic-lan0","bus":"pcie.0","addr":"02.0","netdev":"net-lan0","mac":"52:54:00:aa:bb:01","failover":true}"#,
            #"{"driver":"vfio-pci","id":"hostdev-gpu","bus":"hd-gpu","addr":"00.0","host":"0000:65:00.0","multifunction":true}"#,
            #"{"driver":"vfio-pci","id":"hostdev-gpu-f1","bus":"hd-gpu","addr":"00.1","host":"0000:65:00.1"}"#,
            #"{"driver":"vfio-pci","id":"hostdev-vf0","bus":"hd-vf0","addr":"00.0","host":"0000:65:10.2","failover_pair_id":"nic-lan0"}"#,
            #"{"driver":"e1000e","id":"hostdev-sim","bus":"hd-sim","addr":"00.0","netdev":"hostnet-sim","mac":"\#(lan1MAC)","failover_pair_id":"nic-lan1","romfile":""}"#,
        ] {
            #expect(devices.contains(expected), "missing \(expected) in \(devices)")
        }
        // The host devices come after the NICs they pair with (QEMU resolves failover_pair_id at realize).
        let nic = try #require(devices.firstIndex { $0.contains(#""id":"nic-lan1""#) })
        let standInIndex = try #require(devices.firstIndex { $0.contains(#""id":"hostdev-sim""#) })
        #expect(nic < standInIndex)
    }

    @Test func aProfileWithoutHostDevicesKeepsItsLayout() {
        let profile = Profile(name: "p", memory: Memory(size: .gib(1)), nics: [NIC(id: "n")], hotplug: Hotplug(slots: 2))
        let layout = PCILayout(profile: profile)
        #expect(layout.hostdevPorts.isEmpty && layout.ports.map(\.id) == ["hp0", "hp1"])
        #expect(layout.nics == [PCIPlacement(bus: "pcie.0", addr: "02.0")])
    }

    /// A device plugged at run time comes back on the same hotplug port at the next start, with the function the
    /// daemon bound then; live.json from before host devices could be plugged still loads.
    @Test func aPluggedDeviceIsOnItsHotplugPortAfterARestart() throws {
        let profile = Profile(name: "p", memory: Memory(size: .gib(1)), hotplug: Hotplug(slots: 2))
        let usb = HostDevice(id: "usb", pci: try PCIAddress(parsing: "0000:05:00.0"))
        let config = LiveConfig(profile: profile, hotplugged: HotplugState(hostdevs: [PluggedHostDevice(device: usb, port: "hp1")]))
        var runtime = RuntimeOptions(accel: .tcg, qmpSocket: "/run/q.sock")
        runtime.hostDevices = ["usb": [try PCIAddress(parsing: "0000:05:00.0")]]
        let argv = QEMUArgv.build(config, runtime)
        #expect(Self.devices(argv).contains(#"{"driver":"vfio-pci","id":"hostdev-usb","bus":"hp1","addr":"00.0","host":"0000:05:00.0"}"#))
        #expect(argv.contains("q35,mem-merge=off"))

        let old = #"{"disks":[],"nics":[],"memory":[]}"#
        let decoded = try JSONDecoder().decode(HotplugState.self, from: Data(old.utf8))
        #expect(decoded == HotplugState())
    }
}
