import CorralModel
import Testing
@testable import Profiles

/// `hostdevs:`: what decodes, and the exact diagnostic (file:line:col, field, what is wrong) for each mistake.
struct HostDeviceValidationTests {
    static func profile(_ hostdevs: String, extra: String = "", machine: String = "q35") -> [String: String] {
        ["/vm/p.yaml": """
            name: p
            machine: \(machine)
            memory: 1G
            nics:
              - { id: lan0, mode: user, mac: "52:54:00:aa:bb:01" }
              - { id: e0, mode: user, model: e1000e }
            \(extra)
            hostdevs:
            \(hostdevs)
            """]
    }

    @Test func everyKindDecodes() throws {
        let files = Self.profile("""
              - { id: gpu, pci: "0000:65:00.0", allFunctions: true, rombar: false, romfile: ./gpu.rom }
              - id: vf0
                vf: { netdev: enp101s0f0, mac: "52:54:00:AA:BB:02", vlan: 100, trust: true, spoofchk: false }
              - { id: vf1, vf: { pf: "3b:00.0" }, failover: lan0 }
            """)
        let profile = try #require(loadValid("/vm/p.yaml", files: files, checkFiles: false))
        #expect(profile.hostdevs.count == 3)
        #expect(profile.hostdevs[0] == HostDevice(id: "gpu", pci: try PCIAddress(parsing: "0000:65:00.0"),
                                                  allFunctions: true, rombar: false, romfile: "/vm/gpu.rom"))
        #expect(profile.hostdevs[1].vf == VirtualFunction(netdev: "enp101s0f0", mac: "52:54:00:aa:bb:02", vlan: 100,
                                                          trust: true, spoofchk: false), "the MAC is lower-cased")
        #expect(profile.hostdevs[2].vf?.pf?.description == "0000:3b:00.0" && profile.hostdevs[2].failover == "lan0")
    }

    static let cases: [(hostdevs: String, extra: String, machine: String, expected: String)] = [
        ("  - { id: a }", "", "q35",
         "/vm/p.yaml:9:5: hostdevs[0]: give one of pci (a device by address), vf (a virtual function of an SR-IOV device) or emulated"),
        (#"  - { id: a, pci: "0000:65:00.0", vf: { netdev: eth1 } }"#, "", "q35",
         "/vm/p.yaml:9:5: hostdevs[0]: give only one of pci, vf and emulated"),
        (#"  - { id: a, pci: "0000:65:00" }"#, "", "q35",
         "/vm/p.yaml:9:19: hostdevs[0].pci: '0000:65:00' is not a PCI address like 0000:65:00.0 (domain:bus:slot.function, hex; slot 00-1f, function 0-7)"),
        (#"  - { id: a, pci: "0000:65:00.1", allFunctions: true }"#, "", "q35",
         "/vm/p.yaml:9:49: hostdevs[0].allFunctions: takes the device's function 0 (0000:65:00.0), got 0000:65:00.1"),
        (#"  - { id: a, pci: "0000:65:00.0" }"#, "", "pc",
         "/vm/p.yaml:9:3: hostdevs: needs machine q35 (each device sits on its own PCI Express root port); machine is pc"),
        ("  - { id: a, pci: \"0000:65:00.0\", allFunctions: true }\n  - { id: b, pci: \"0000:65:00.1\" }", "", "q35",
         "/vm/p.yaml:10:19: hostdevs[1].pci: 0000:65:00.1 is already given by hostdevs[0]"),
        ("  - { id: a, vf: { mac: \"52:54:00:00:00:01\" } }", "", "q35",
         "/vm/p.yaml:9:18: hostdevs[0].vf: give one of pf (the physical function's address) or netdev (its host interface)"),
        ("  - { id: a, vf: { netdev: eth1, vlan: 4095 } }", "", "q35",
         "/vm/p.yaml:9:40: hostdevs[0].vf.vlan: must be between 1 and 4094, got 4095"),
        ("  - { id: a, vf: { netdev: eth1, mac: \"01:00:5e:00:00:01\" } }", "", "q35",
         "/vm/p.yaml:9:39: hostdevs[0].vf.mac: '01:00:5e:00:00:01' is not a unicast MAC address (six hex pairs like 52:54:00:12:34:56, first octet even)"),
        ("  - { id: a, vf: { netdev: \"eth/1\" } }", "", "q35",
         "/vm/p.yaml:9:28: hostdevs[0].vf.netdev: 'eth/1' is not a valid interface name (1-15 characters, no '/', ':', ',' or whitespace)"),
        ("  - { id: a, vf: { netdev: eth1 }, failover: wan }", "", "q35",
         "/vm/p.yaml:9:46: hostdevs[0].failover: 'wan' is not a NIC of this profile (NICs: lan0, e0)"),
        ("  - { id: a, vf: { netdev: eth1 }, failover: e0 }", "", "q35",
         "/vm/p.yaml:9:46: hostdevs[0].failover: NIC e0 must be model virtio-net to stand by (it is e1000e)"),
        (#"  - { id: a, pci: "0000:65:00.0", failover: lan0 }"#, "", "q35",
         "/vm/p.yaml:9:45: hostdevs[0].failover: is only used with vf or emulated (a whole device by address cannot be unplugged and replaced on another host)"),
        ("  - { id: a, vf: { netdev: eth1 }, failover: lan0 }\n  - { id: b, vf: { netdev: eth1 }, failover: lan0 }", "", "q35",
         "/vm/p.yaml:10:46: hostdevs[1].failover: NIC lan0 already stands by for hostdevs[0]"),
        ("  - { id: a, vf: { netdev: eth1, mac: \"52:54:00:aa:bb:09\" }, failover: lan0 }", "", "q35",
         "/vm/p.yaml:9:39: hostdevs[0].vf.mac: 52:54:00:aa:bb:09 differs from NIC lan0's mac 52:54:00:aa:bb:01: a failover pair shares one MAC (leave one of them out)"),
        ("  - { id: a, emulated: e1000e }", "", "q35",
         "/vm/p.yaml:9:24: hostdevs[0].emulated: stands in for a VF in a failover pair: it needs failover (a virtio-net NIC's id)"),
        ("  - { id: lan0, vf: { netdev: eth1 } }", "", "q35",
         "/vm/p.yaml:9:11: hostdevs[0].id: 'lan0' is already used by nics[0]"),
        ("  - { id: a, vf: { netdev: eth1 } }", "memory.balloon: true", "q35", ""),
    ]

    @Test(arguments: 0..<cases.count)
    func eachMistakeIsNamed(_ index: Int) {
        let c = Self.cases[index]
        guard !c.expected.isEmpty else { return }
        let found = diagnostics("/vm/p.yaml", files: Self.profile(c.hostdevs, extra: c.extra, machine: c.machine),
                                checkFiles: false)
        #expect(found == [c.expected], "case \(index)")
    }

    @Test func pinnedMemoryRulesOutBalloonAndMerge() {
        var files = Self.profile("  - { id: a, vf: { netdev: eth1 } }")
        files["/vm/p.yaml"] = files["/vm/p.yaml"]!.replacingOccurrences(
            of: "memory: 1G", with: "memory: { size: 1G, balloon: true, merge: true }")
        let found = diagnostics("/vm/p.yaml", files: files, checkFiles: false)
        #expect(found == [
            "/vm/p.yaml:3:30: memory.balloon: a VM with hostdevs has all its memory pinned for the devices' DMA, so a balloon cannot give any back; remove memory.balloon",
            "/vm/p.yaml:3:43: memory.merge: a VM with hostdevs has all its memory pinned for the devices' DMA; KSM cannot merge it; remove memory.merge",
        ], "\(found)")
    }
}
