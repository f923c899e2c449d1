import CorralModel


/// Hotplug operations the daemon offers (`corral cpu|disk|nic|mem`). Separate from
/// `VMControl` so API fakes that only do lifecycle stay small.
public protocol HotplugControl: Sendable {
    /// Sets the number of vCPUs (1…cpu.max): plugs into free slots or unplugs the highest.
    func setCPUs(_ name: String, count: Int) async throws(ControlError) -> VMStatus
    func addDisk(_ name: String, _ request: DiskAddRequest) async throws(ControlError) -> VMStatus
    func removeDisk(_ name: String, id: String, deleteImage: Bool) async throws(ControlError) -> VMStatus
    func addNIC(_ name: String, _ request: NICAddRequest) async throws(ControlError) -> VMStatus
    func removeNIC(_ name: String, id: String) async throws(ControlError) -> VMStatus
    func addMemory(_ name: String, _ request: MemoryAddRequest) async throws(ControlError) -> VMStatus
    func removeMemory(_ name: String, id: String) async throws(ControlError) -> VMStatus
    /// `corral hostdev add`: a host PCI device or a VF of a PF, bound to vfio-pci and plugged.
    func addHostDevice(_ name: String, _ request: HostDeviceAddRequest) async throws(ControlError) -> VMStatus
    /// `corral hostdev rm`: unplugged, then (after DEVICE_DELETED) given back to its host driver.
    func removeHostDevice(_ name: String, id: String) async throws(ControlError) -> VMStatus
    /// `corral hostdev ls`.
    func hostDevices() async throws(ControlError) -> HostDeviceReport
    /// `corral volume ls`: every VM's disks with their images' sizes.
    func volumes() async throws(ControlError) -> [VolumeInfo]
    /// `corral snapshot ls NAME`, oldest first.
    func snapshots(_ name: String) async throws(ControlError) -> [SnapshotInfo]
    /// `corral snapshot create NAME SNAP`: live on a running VM (all disks in one transaction), else offline.
    func createSnapshot(_ name: String, _ request: SnapshotCreateRequest) async throws(ControlError) -> SnapshotResult
    /// `corral snapshot revert NAME SNAP` (stopped VM): later writes and later snapshots are discarded.
    func revertSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult
    /// `corral snapshot rm NAME SNAP`: its overlay committed into the image below (live or offline).
    func removeSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult
}
