import HostDevices
import CorralControl
import CorralModel
import Profiles

/// Hotplug requests go through the VM's operation queue like every other operation.
extension VMManager: HotplugControl {
    public func setCPUs(_ name: String, count: Int) async throws(ControlError) -> VMStatus {
        do { try CPUCountRequest(count: count).validate() } catch { throw ControlError(error) }
        return try await queued(name) { vm throws(ControlError) in
            let config = await vm.config
            let online = config.hotplugged.onlineCPUs ?? config.profile.cpu.count
            if count > online { try await self.admit(.init(vcpus: count - online, memory: 0), excluding: nil) }
            try await vm.setCPUs(count)
            await vm.applyPinning()
        }
    }

    public func addDisk(_ name: String, _ request: DiskAddRequest) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in try await vm.addDisk(request) }
    }

    public func removeDisk(_ name: String, id: String, deleteImage: Bool) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in try await vm.removeDisk(id: id, deleteImage: deleteImage) }
    }

    public func addNIC(_ name: String, _ request: NICAddRequest) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in try await vm.addNIC(request) }
    }

    public func removeNIC(_ name: String, id: String) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in try await vm.removeNIC(id: id) }
    }

    public func addMemory(_ name: String, _ request: MemoryAddRequest) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in
            if let size = try? ByteSize(parsing: request.size) {
                try await self.admit(.init(vcpus: 0, memory: size.bytes), excluding: nil)
            }
            try await vm.addMemory(request)
        }
    }

    public func removeMemory(_ name: String, id: String) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in try await vm.removeMemory(id: id) }
    }

    public func addHostDevice(_ name: String, _ request: HostDeviceAddRequest) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in
            // The VM's memory becomes pinned with its first device: it must fit the host's RAM with the others'.
            if await !vm.memoryPinned {
                try await self.admit(.init(vcpus: 0, memory: 0, pinnedMemory: await vm.memorySize), excluding: nil)
            }
            try await vm.addHostDevice(request)
        }
    }

    public func removeHostDevice(_ name: String, id: String) async throws(ControlError) -> VMStatus {
        try await queued(name) { vm throws(ControlError) in try await vm.removeHostDevice(id: id) }
    }

    public func hostDevices() async throws(ControlError) -> HostDeviceReport {
        let inventory: PCIInventory
        do { inventory = try PCIInventory.scan(hostDeviceClaims.assignment.tree) } catch {
            throw .internalError("reading the host's PCI devices: \(error.description)")
        }
        return HostDeviceListing.report(inventory, held: await hostDeviceClaims.held)
    }
}
