@testable import CorralCLI
import CorralModel
import Foundation
import Testing

struct HostDeviceTextTests {
    @Test func lsShowsGroupsWhatBlocksThemAndWhoHoldsWhichVF() {
        let report = HostDeviceReport(iommu: ["dmar0"], groups: [
            .init(number: 1, devices: [
                .init(address: "0000:01:00.0", ids: "10de:1b80", kind: "VGA", driver: "nouveau", vm: nil),
                .init(address: "0000:01:00.1", ids: "10de:10f0", kind: "HD audio", driver: "snd_hda_intel", vm: nil),
            ], hostBound: ["0000:01:00.0", "0000:01:00.1"]),
            .init(number: 60, devices: [
                .init(address: "0000:65:10.0", ids: "8086:10ed", kind: "Ethernet", driver: "vfio-pci", vm: "web",
                      physicalFunction: "0000:65:00.0"),
            ], hostBound: []),
        ], physicalFunctions: [
            .init(address: "0000:65:00.0", netdev: "enp101s0f0", totalVFs: 8, numVFs: 2, usedVFs: 1, vfs: [
                .init(index: 0, address: "0000:65:10.0", driver: "vfio-pci", vm: "web"),
                .init(index: 1, address: "0000:65:10.2", driver: nil, vm: nil),
            ]),
        ])
        #expect(HostDeviceText.lines(report) == [
            "IOMMU: dmar0",
            "GROUP  ADDRESS       IDS        CLASS     DRIVER         VM",
            "1      0000:01:00.0  10de:1b80  VGA       nouveau        -",
            "1      0000:01:00.1  10de:10f0  HD audio  snd_hda_intel  -",
            "60     0000:65:10.0  8086:10ed  Ethernet  vfio-pci       web",
            "group 1: 0000:01:00.0, 0000:01:00.1 on host drivers; its other members cannot be assigned while they are",
            "",
            "PF            NETDEV      VFS  USED  TOTAL",
            "0000:65:00.0  enp101s0f0  2    1     8",
            "  0000:65:00.0 VF 0 0000:65:10.0: web",
        ])
        let none = HostDeviceReport(iommu: [], groups: [], physicalFunctions: [])
        #expect(HostDeviceText.lines(none).first == "IOMMU: none (enable intel_iommu=on or amd_iommu=on; nothing can be assigned)")
    }

    @Test func hostSaysWhatIsPinned() throws {
        let json = """
            {"balloonTotalBytes":0,"cpus":{"capacity":4,"committed":2,"ratio":0.5},
             "ksm":{"available":false,"managed":false,"pagesShared":0,"pagesSharing":0,"running":false,"savedBytes":0},
             "memory":{"capacity":8589934592,"committed":1342177280,"ratio":0.15625},"memoryAvailableBytes":4294967296,
             "pinnedMemoryBytes":1073741824,
             "vms":[{"autoBalloon":false,"cpuWeight":100,"memoryBytes":1073741824,"memoryShares":1000,"name":"gpu",
                     "state":"running","vcpus":2,"pinned":true},
                    {"autoBalloon":true,"cpuWeight":100,"memoryBytes":268435456,"memoryShares":1000,"name":"web",
                     "state":"running","vcpus":1,"pinned":false}]}
            """
        let report = try JSONDecoder().decode(HostReport.self, from: Data(json.utf8))
        let lines = TuningText.host(report)
        #expect(lines.contains { $0.hasPrefix("pinned") && $0.hasSuffix("1 GiB of running VMs (gpu): host devices or "
            + "memory.lock; counted in full against the host's RAM, never ballooned or merged") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("gpu") && $0.contains("1 GiB pinned") }, "\(lines)")
    }
}
