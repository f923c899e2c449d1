#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif
import CorralModel
import JSON

/// The API calls for hotplug, devices, snapshots, overcommit and networks.
extension CorralClient {
    // MARK: Hotplug

    public func setCPUs(_ name: String, count: Int) async throws -> VMStatus {
        try await call("POST", vmPath(name, "cpus"), body: CPUCountRequest(count: count), as: VMStatus.self)
    }

    /// `request.file` must be absolute (the daemon reads it on its own host).
    public func addDisk(_ name: String, _ request: DiskAddRequest) async throws -> VMStatus {
        try await call("POST", vmPath(name, "disks"), body: request, as: VMStatus.self)
    }

    public func removeDisk(_ name: String, id: String, deleteImage: Bool = false) async throws -> VMStatus {
        try await call("DELETE", vmPath(name, "disks", id) + "?deleteImage=\(deleteImage)", as: VMStatus.self)
    }

    public func addNIC(_ name: String, _ request: NICAddRequest) async throws -> VMStatus {
        try await call("POST", vmPath(name, "nics"), body: request, as: VMStatus.self)
    }

    public func removeNIC(_ name: String, id: String) async throws -> VMStatus {
        try await call("DELETE", vmPath(name, "nics", id), as: VMStatus.self)
    }

    public func addHostDevice(_ name: String, _ request: HostDeviceAddRequest) async throws -> VMStatus {
        try await call("POST", vmPath(name, "hostdevs"), body: request, as: VMStatus.self)
    }

    public func removeHostDevice(_ name: String, id: String) async throws -> VMStatus {
        try await call("DELETE", vmPath(name, "hostdevs", id), as: VMStatus.self)
    }

    /// A PNG of the VM's screen.
    public func screenshot(_ name: String) async throws -> [UInt8] {
        Array(try await collect(try await send("GET", vmPath(name, "screenshot"), body: nil)))
    }

    public func volumes() async throws -> [VolumeInfo] {
        try await call("GET", "/v1/volumes", as: [VolumeInfo].self)
    }

    public func snapshots(_ name: String) async throws -> [SnapshotInfo] {
        try await call("GET", vmPath(name, "snapshots"), as: [SnapshotInfo].self)
    }

    public func createSnapshot(_ name: String, _ request: SnapshotCreateRequest) async throws -> SnapshotResult {
        try await call("POST", vmPath(name, "snapshots"), body: request, as: SnapshotResult.self)
    }

    public func revertSnapshot(_ name: String, snapshot: String) async throws -> SnapshotResult {
        try await call("POST", vmPath(name, "snapshots", snapshot) + "/revert", as: SnapshotResult.self)
    }

    public func removeSnapshot(_ name: String, snapshot: String) async throws -> SnapshotResult {
        try await call("DELETE", vmPath(name, "snapshots", snapshot), as: SnapshotResult.self)
    }

    public func hostDevices() async throws -> HostDeviceReport {
        try await call("GET", "/v1/hostdevs", as: HostDeviceReport.self)
    }

    public func addMemory(_ name: String, _ request: MemoryAddRequest) async throws -> VMStatus {
        try await call("POST", vmPath(name, "memory"), body: request, as: VMStatus.self)
    }

    public func removeMemory(_ name: String, id: String) async throws -> VMStatus {
        try await call("DELETE", vmPath(name, "memory", id), as: VMStatus.self)
    }

    // MARK: Overcommit

    /// Sets the balloon target ("384M"); the daemon turns automatic ballooning off for the VM.
    public func balloon(_ name: String, size: String) async throws -> VMStatus {
        try await call("POST", vmPath(name, "balloon"), body: BalloonRequest(size: size), as: VMStatus.self)
    }

    public func stats(_ name: String) async throws -> GuestStats {
        try await call("GET", vmPath(name, "stats"), as: GuestStats.self)
    }

    public func setTuning(_ name: String, _ request: TuningRequest) async throws -> VMStatus {
        try await call("POST", vmPath(name, "tuning"), body: request, as: VMStatus.self)
    }

    public func host() async throws -> HostReport {
        try await call("GET", "/v1/host", as: HostReport.self)
    }

    public func cluster() async throws -> ClusterReport {
        try await call("GET", "/v1/cluster", as: ClusterReport.self)
    }

    // MARK: Networks

    public func createNetwork(_ request: NetworkCreateRequest) async throws -> NetworkInfo {
        try await call("POST", "/v1/networks", body: request, as: NetworkInfo.self)
    }

    public func networks() async throws -> [NetworkInfo] {
        try await call("GET", "/v1/networks", as: [NetworkInfo].self)
    }

    public func network(_ name: String) async throws -> NetworkInfo {
        try await call("GET", "/v1/networks/" + Self.percentEncoded(name), as: NetworkInfo.self)
    }

    public func removeNetwork(_ name: String) async throws {
        _ = try await collect(try await send("DELETE", "/v1/networks/" + Self.percentEncoded(name), body: nil))
    }
}
