import CorralModel

/// `corral hostdev ls`, built from a scan and the claims (pure).
public enum HostDeviceListing {
    public static func report(_ inventory: PCIInventory, held: [PCIAddress: String]) -> HostDeviceReport {
        let devices = inventory.devices.values.sorted { $0.address < $1.address }
        func entry(_ device: PCIDevice) -> HostDeviceReport.Device {
            HostDeviceReport.Device(address: device.address.description, ids: hex(device.vendorID) + ":" + hex(device.deviceID),
                                    kind: kind(device.classCode), driver: device.driver, vm: held[device.address],
                                    physicalFunction: device.physicalFunction?.description)
        }
        var byGroup: [Int?: [PCIDevice]] = [:]
        for device in devices { byGroup[device.iommuGroup, default: []].append(device) }
        let numbers = byGroup.keys.compactMap { $0 }.sorted().map { Optional($0) } + (byGroup[nil] == nil ? [] : [nil])
        let groups = numbers.map { number in
            let members = byGroup[number] ?? []
            let hostBound = members.filter { device in
                guard let driver = device.driver else { return false }
                return !device.isBridge && driver != VFIOBinder.vfioDriver && driver != "pci-stub"
            }
            return HostDeviceReport.Group(number: number, devices: members.map(entry),
                                          hostBound: number == nil ? [] : hostBound.map(\.address.description))
        }
        let pfs = devices.compactMap { device -> HostDeviceReport.PhysicalFunction? in
            guard let sriov = device.sriov else { return nil }
            let vfs = sriov.virtualFunctions.sorted { $0.key < $1.key }.map { index, address in
                HostDeviceReport.PhysicalFunction.VF(index: index, address: address.description,
                                                     driver: inventory[address]?.driver, vm: held[address])
            }
            return HostDeviceReport.PhysicalFunction(
                address: device.address.description, netdev: device.netdevs.first, totalVFs: sriov.totalVFs,
                numVFs: sriov.numVFs, usedVFs: vfs.filter { $0.vm != nil }.count, vfs: vfs)
        }
        return HostDeviceReport(iommu: inventory.iommuUnits.sorted(), groups: groups, physicalFunctions: pfs)
    }

    static func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The class code in words, for the common classes; the code otherwise.
    static func kind(_ classCode: UInt32) -> String {
        let names: [UInt32: String] = [
            0x0100: "SCSI", 0x0101: "IDE", 0x0104: "RAID", 0x0106: "SATA", 0x0108: "NVMe", 0x0200: "Ethernet",
            0x0207: "InfiniBand", 0x0280: "Network", 0x0300: "VGA", 0x0302: "3D", 0x0380: "Display",
            0x0401: "Audio", 0x0403: "HD audio", 0x0600: "Host bridge", 0x0601: "ISA bridge", 0x0604: "PCI bridge",
            0x0c03: "USB", 0x0c05: "SMBus", 0x1200: "Accelerator",
        ]
        let digits = String(classCode, radix: 16)
        return names[classCode >> 8] ?? String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }
}
