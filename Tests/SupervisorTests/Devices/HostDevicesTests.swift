import Foundation
import Synchronization
import Testing
@testable import HostDevices
@testable import Supervisor

/// The real effects: `HostSysfsTree` over a temporary folder and over this host's /sys, the interface probe on `lo`,
/// and saving and restoring VF settings through a recording `VFNetConfig`.
struct HostDevicesTests {
    @Test func theHostTreeReadsWritesListsAndReadsLinksUnderItsRoot() throws {
        let root = NSTemporaryDirectory() + "corral-sysfs-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = root + "/sys/bus/pci/devices/0000:03:00.0"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: folder + "/driver_override", contents: Data("(null)\n".utf8)))
        try FileManager.default.createSymbolicLink(atPath: folder + "/driver", withDestinationPath: "../../../bus/pci/drivers/igb")
        let tree = HostSysfsTree(root: root + "/")
        #expect(tree.root == root)
        #expect(try tree.list("/sys/bus/pci/devices/0000:03:00.0") == ["driver", "driver_override"])
        #expect(try tree.linkTarget("/sys/bus/pci/devices/0000:03:00.0/driver") == "../../../bus/pci/drivers/igb")
        #expect(try tree.linkName("/sys/bus/pci/devices/0000:03:00.0/driver") == "igb")
        #expect(tree.exists("/sys/bus/pci/devices/0000:03:00.0/driver"), "a dangling link is still there")
        try tree.write("vfio-pci", to: "/sys/bus/pci/devices/0000:03:00.0/driver_override")
        #expect(try tree.read("/sys/bus/pci/devices/0000:03:00.0/driver_override") == "vfio-pci")
        #expect(throws: KernelFileError(operation: "write", path: root + "/sys/bus/pci/drivers_probe", errno: ENOENT)) {
            try tree.write("0000:03:00.0", to: "/sys/bus/pci/drivers_probe")
        }
        #expect(HostSysfsTree(root: "/").root == "")
    }

    /// Whatever this host has: the scan reads it, and without an IOMMU (as here) the rules say so.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/bus/pci/devices")))
    func thisHostsPCIDevicesScan() throws {
        let inventory = try PCIInventory.scan(HostSysfsTree(root: "/"))
        #expect(!inventory.devices.isEmpty)
        if inventory.iommuUnits.isEmpty {
            #expect(throws: DeviceRefusal.self) { try AssignmentRules.requireIOMMU(inventory) }
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/class/net/lo/flags")))
    func loopbackIsUpWithItsAddress() throws {
        let state = try HostNetdevStateProbe(tree: HostSysfsTree(root: "/")).state(of: "lo")
        #expect(state.isUp && !state.isIdle)
        #expect(state.addresses.contains("127.0.0.1"))
    }

    final class RecordingVFNetConfig: VFNetConfig {
        let current = Mutex(VFSettings(mac: "00:00:00:00:00:00", vlan: 0, qos: 0, trust: false, spoofCheck: true))
        let applied = Mutex<[VFSettings]>([])

        func settings(pf: String, vf: Int) throws(NetlinkError) -> VFSettings { current.withLock { $0 } }

        func apply(_ settings: VFSettings, pf: String, vf: Int) throws(NetlinkError) {
            applied.withLock { $0.append(settings) }
        }
    }

    @Test func replacingVFSettingsReturnsExactlyWhatUndoesThem() throws {
        let config = RecordingVFNetConfig()
        let wanted = VFSettings(mac: "52:54:00:12:34:56", vlan: 100, spoofCheck: false)
        let undo = try config.replace(wanted, pf: "enp101s0f0", vf: 2)
        #expect(undo == VFSettings(mac: "00:00:00:00:00:00", vlan: 0, qos: 0, spoofCheck: true))
        #expect(config.applied.withLock { $0 } == [wanted])
    }
}
