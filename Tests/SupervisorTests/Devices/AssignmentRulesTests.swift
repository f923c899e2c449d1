import CorralModel
import Testing
@testable import HostDevices
@testable import Supervisor

/// The inventory read from a fake sysfs, and the pure rules over it.
struct AssignmentRulesTests {
    static func address(_ text: String) -> PCIAddress { try! PCIAddress(parsing: text) }

    @Test func theInventoryReadsIdsClassDriverGroupAndSRIOV() throws {
        let kernel = FakeKernel()
        kernel.addGPU()
        kernel.addSRIOVNIC()
        try kernel.write("2", to: "/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs")
        let inventory = try PCIInventory.scan(kernel)
        let gpu = try #require(inventory[Self.address("0000:01:00.0")])
        #expect(gpu.vendorID == 0x10de && gpu.deviceID == 0x1b80 && gpu.classCode == 0x030000)
        #expect(gpu.driver == "nouveau" && gpu.iommuGroup == 1 && gpu.driverOverride == nil && !gpu.isBridge)
        let pf = try #require(inventory[Self.address("0000:65:00.0")])
        #expect(pf.netdevs == ["enp101s0f0"])
        #expect(pf.sriov == SRIOVFacts(totalVFs: 8, numVFs: 2, virtualFunctions: [0: Self.address("0000:65:10.0"),
                                                                                    1: Self.address("0000:65:10.2")],
                                       driversAutoprobe: true))
        let vf = try #require(inventory[Self.address("0000:65:10.2")])
        #expect(vf.physicalFunction == pf.address && vf.iommuGroup == 61 && vf.driver == "ixgbevf")
        #expect(vf.netdevs == ["enp101s0f0v1"])
        #expect(inventory.members(ofGroup: 1).map(\.address.description) == ["0000:01:00.0", "0000:01:00.1"])
        #expect(inventory.device(withNetdev: "enp101s0f0")?.address == pf.address)
        #expect(inventory.iommuUnits == ["dmar0"] && inventory.hasIOMMUGroups)
    }

    @Test func withoutAnIOMMUTheRefusalNamesTheKernelOptions() throws {
        let kernel = FakeKernel(iommu: false)
        kernel.addDevice("0000:03:00.0", vendor: 0x8086, device: 0x1533, classCode: 0x020000, driver: "igb", group: nil)
        let inventory = try PCIInventory.scan(kernel)
        #expect(inventory[Self.address("0000:03:00.0")]?.iommuGroup == nil)
        #expect(throws: DeviceRefusal.noIOMMU(unitsFound: false, groupsFound: false)) {
            try AssignmentRules.requireIOMMU(inventory)
        }
        #expect(DeviceRefusal.noIOMMU(unitsFound: false, groupsFound: false).description ==
            "PCI passthrough needs an IOMMU and this host has none enabled (/sys/class/iommu is empty, "
            + "/sys/kernel/iommu_groups does not exist): enable VT-d or AMD-Vi in the firmware and boot the kernel "
            + "with intel_iommu=on (Intel) or amd_iommu=on (AMD), and iommu=pt")
    }

    @Test func aGroupWithADeviceOnAHostDriverIsRefusedNamingIt() throws {
        let kernel = FakeKernel()
        kernel.addNonViableGroup()
        let inventory = try PCIInventory.scan(kernel)
        do {
            _ = try AssignmentRules.plan([Self.address("0000:03:00.0")], allFunctions: false, for: "web", holders: [:],
                                         in: inventory)
            Issue.record("a group shared with the host's NVMe drive is not viable")
        } catch {
            #expect(error.description == "0000:03:00.0 is in IOMMU group 3 with devices the host still uses: "
                + "0000:04:00.0 (bound to nvme); a VM gets a whole group: assign those devices to the VM too, or "
                + "unbind them from their drivers, or move the card to a slot with a group of its own")
        }
        // Both assigned together is fine.
        #expect(try AssignmentRules.plan([Self.address("0000:04:00.0"), Self.address("0000:03:00.0")],
                                         allFunctions: false, for: "web", holders: [:], in: inventory).count == 2)
    }

    @Test func bridgesUnboundAndVFIODevicesLeaveAGroupViable() throws {
        let kernel = FakeKernel()
        kernel.addBridgedDevice()
        kernel.addDevice("0000:05:00.1", vendor: 0x1912, device: 0x0015, classCode: 0x0c0330, driver: nil, group: 5)
        kernel.addDevice("0000:05:00.2", vendor: 0x1912, device: 0x0016, classCode: 0x0c0330, driver: "pci-stub", group: 5)
        let inventory = try PCIInventory.scan(kernel)
        #expect(inventory[Self.address("0000:00:1c.0")]?.isBridge == true)
        #expect(try AssignmentRules.requireViableGroup(Self.address("0000:05:00.0"), assigned: [], in: inventory) == 5)
    }

    @Test func allFunctionsTakesTheGPUsAudioToo() throws {
        let kernel = FakeKernel()
        kernel.addGPU()
        let inventory = try PCIInventory.scan(kernel)
        #expect(try AssignmentRules.plan([Self.address("0000:01:00.0")], allFunctions: true, for: "gpu", holders: [:],
                                         in: inventory) == [Self.address("0000:01:00.0"), Self.address("0000:01:00.1")])
        // Without it, the audio function (on snd_hda_intel) makes the group non-viable.
        #expect(throws: DeviceRefusal.groupNotViable(device: Self.address("0000:01:00.0"), group: 1, offenders: [
            .init(address: Self.address("0000:01:00.1"), driver: "snd_hda_intel")])) {
            try AssignmentRules.plan([Self.address("0000:01:00.0")], allFunctions: false, for: "gpu", holders: [:],
                                     in: inventory)
        }
    }

    @Test func aDeviceOrAGroupNeighbourHeldByAnotherVMIsRefusedNamingIt() throws {
        let kernel = FakeKernel()
        kernel.addGPU()
        let inventory = try PCIInventory.scan(kernel)
        let gpu = Self.address("0000:01:00.0"), audio = Self.address("0000:01:00.1")
        #expect(throws: DeviceRefusal.held(device: gpu, by: gpu, vm: "db")) {
            try AssignmentRules.plan([gpu], allFunctions: true, for: "web", holders: [gpu: "db"], in: inventory)
        }
        #expect(DeviceRefusal.held(device: gpu, by: gpu, vm: "db").description == "0000:01:00.0 is assigned to VM 'db' already")
        #expect(DeviceRefusal.held(device: gpu, by: audio, vm: "db").description
            == "0000:01:00.0 shares its IOMMU group with 0000:01:00.1, which is assigned to VM 'db'")
        // The audio function on vfio-pci, held by db: the GPU's group is db's.
        kernel.addDevice("0000:02:00.0", vendor: 0x10de, device: 0x1b80, classCode: 0x030000, driver: nil, group: 2)
        kernel.addDevice("0000:02:00.1", vendor: 0x10de, device: 0x10f0, classCode: 0x040300, driver: "vfio-pci", group: 2)
        let second = Self.address("0000:02:00.0"), secondAudio = Self.address("0000:02:00.1")
        #expect(throws: DeviceRefusal.held(device: second, by: secondAudio, vm: "db")) {
            try AssignmentRules.plan([second], allFunctions: false, for: "web", holders: [secondAudio: "db"],
                                     in: try PCIInventory.scan(kernel))
        }
        // The VM's own group neighbour is not a conflict (its audio function plugged, then the GPU)…
        #expect(try AssignmentRules.plan([second], allFunctions: false, for: "db", holders: [secondAudio: "db"],
                                         in: try PCIInventory.scan(kernel)) == [second])
        // …but the same device a second time is: it is plugged once.
        #expect(throws: DeviceRefusal.held(device: gpu, by: gpu, vm: "db")) {
            try AssignmentRules.plan([gpu], allFunctions: true, for: "db", holders: [gpu: "db"], in: inventory)
        }
    }
}
