import CorralControl
import CorralModel
import JSON

/// A `DaemonControl` for the `api` target: two VMs (`web` running, `db` stopped), no state, no I/O. Like the daemon
/// it refuses unknown names and requests that fail their `validate()`; everything else answers a fixed status.
/// Stateless, so every input runs against the same daemon and a crash reproduces from its input alone.
struct FuzzControl: DaemonControl {
    static let names: Set<String> = ["web", "db"]

    func known(_ name: String) throws(ControlError) -> VMStatus {
        guard Self.names.contains(name) else { throw .notFound("no VM named \(name)") }
        return Self.status(name)
    }

    static func status(_ name: String) -> VMStatus {
        VMStatus(name: name, state: name == "db" ? .stopped : .running, pid: 4242, accel: "tcg", uptimeSeconds: 1.5,
                 cpus: .init(online: 1, max: 4), memory: .init(sizeBytes: 1 << 30, maxBytes: 2 << 30, balloonBytes: nil),
                 disks: [.init(id: "root", file: "/var/lib/corral/vms/\(name)/root.qcow2", format: "qcow2",
                               readonly: false, bus: "virtio-blk")],
                 nics: [.init(id: "net0", mac: "52:54:00:12:34:56", mode: "user")],
                 qmpSocket: "/run/corral/vms/\(name)/qmp.sock", serialLog: "/var/lib/corral/vms/\(name)/serial.log",
                 restartCount: 0, lastExit: nil)
    }

    func checked(_ validate: () throws(RequestProblems) -> Void) throws(ControlError) {
        do { try validate() } catch { throw ControlError(error) }
    }

    // VMControl
    func up(_ request: UpRequest) async throws(ControlError) -> VMStatus {
        try checked(request.validate)
        return Self.status(request.name ?? "web")
    }
    func list() async -> [VMStatus] { Self.names.sorted().map(Self.status) }
    func status(_ name: String) async throws(ControlError) -> VMStatus { try known(name) }
    func start(_ name: String) async throws(ControlError) -> VMStatus { try known(name) }
    func stop(_ name: String, timeout: Duration) async throws(ControlError) -> VMStatus { try known(name) }
    func kill(_ name: String) async throws(ControlError) -> VMStatus { try known(name) }
    func remove(_ name: String, force: Bool, volumes: VolumeDisposition?) async throws(ControlError) {
        _ = try known(name)
    }
    func pause(_ name: String) async throws(ControlError) -> VMStatus { try known(name) }
    func resume(_ name: String) async throws(ControlError) -> VMStatus { try known(name) }
    func qmp(_ name: String, command: String, arguments: JSONObject?) async throws(ControlError) -> JSONValue {
        _ = try known(name)
        return .object(["command": .string(command), "arguments": arguments.map(JSONValue.object) ?? .null])
    }
    /// The console route would follow this file: refuse, so no input waits on a file.
    func serialLog(_ name: String) async throws(ControlError) -> String {
        _ = try known(name)
        throw .refused("no serial log in the fuzz daemon")
    }
    func attachConsole(_ name: String, force: Bool) async throws(ControlError) -> ByteStreamLease {
        _ = try known(name)
        throw .conflict("no console in the fuzz daemon")
    }
    func openVNC(_ name: String) async throws(ControlError) -> ByteStreamLease {
        _ = try known(name)
        throw .conflict("no display in the fuzz daemon")
    }
    func screenshot(_ name: String) async throws(ControlError) -> [UInt8] {
        _ = try known(name)
        throw .conflict("\(name) has no display")
    }
    func events(vm: String?, history: Int, follow: Bool) async -> AsyncStream<CorralEvent> {
        AsyncStream { $0.finish() }
    }

    // HotplugControl
    func setCPUs(_ name: String, count: Int) async throws(ControlError) -> VMStatus {
        let status = try known(name)
        guard (1...status.cpus.max).contains(count) else { throw .invalidRequest("COUNT: \(count) is outside 1…4") }
        return status
    }
    func addDisk(_ name: String, _ request: DiskAddRequest) async throws(ControlError) -> VMStatus {
        try checked(request.validate)
        return try known(name)
    }
    func removeDisk(_ name: String, id: String, deleteImage: Bool) async throws(ControlError) -> VMStatus {
        try known(name)
    }
    func addNIC(_ name: String, _ request: NICAddRequest) async throws(ControlError) -> VMStatus {
        try checked(request.validate)
        return try known(name)
    }
    func removeNIC(_ name: String, id: String) async throws(ControlError) -> VMStatus { try known(name) }
    func addMemory(_ name: String, _ request: MemoryAddRequest) async throws(ControlError) -> VMStatus {
        try checked(request.validate)
        return try known(name)
    }
    func removeMemory(_ name: String, id: String) async throws(ControlError) -> VMStatus { try known(name) }
    func addHostDevice(_ name: String, _ request: HostDeviceAddRequest) async throws(ControlError) -> VMStatus {
        try checked(request.validate)
        return try known(name)
    }
    func removeHostDevice(_ name: String, id: String) async throws(ControlError) -> VMStatus { try known(name) }
    func hostDevices() async throws(ControlError) -> HostDeviceReport {
        HostDeviceReport(iommu: [], groups: [], physicalFunctions: [])
    }
    func volumes() async throws(ControlError) -> [VolumeInfo] { [] }
    func snapshots(_ name: String) async throws(ControlError) -> [SnapshotInfo] {
        _ = try known(name)
        return []
    }
    func createSnapshot(_ name: String, _ request: SnapshotCreateRequest) async throws(ControlError) -> SnapshotResult {
        try checked(request.validate)
        _ = try known(name)
        return SnapshotResult(vm: name, snapshot: request.name, action: "created", disks: [], live: false)
    }
    func revertSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult {
        _ = try known(name)
        throw .notFound("\(name) has no snapshot \(snapshot)")
    }
    func removeSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult {
        _ = try known(name)
        throw .notFound("\(name) has no snapshot \(snapshot)")
    }

    // TuningControl
    func balloon(_ name: String, size: String) async throws(ControlError) -> VMStatus {
        do { _ = try ByteSize(parsing: size) } catch { throw .invalidRequest("SIZE: \(error.description)") }
        return try known(name)
    }
    func stats(_ name: String) async throws(ControlError) -> GuestStats {
        _ = try known(name)
        return GuestStats(name: name, balloonBytes: nil, balloonTargetBytes: nil, autoBalloon: false, lastUpdate: nil,
                          stats: [:])
    }
    func setTuning(_ name: String, _ request: TuningRequest) async throws(ControlError) -> VMStatus {
        try checked(request.validate)
        return try known(name)
    }
    func cluster() async -> ClusterReport {
        ClusterReport(enabled: false)
    }

    func host() async -> HostReport {
        let ratio = HostReport.Ratio(committed: 1, capacity: 2, ratio: 0.5, limit: nil)
        return HostReport(cpus: ratio, memory: ratio, memoryAvailableBytes: 1 << 30,
                          ksm: .init(available: false, running: false, pagesSharing: 0, pagesShared: 0, savedBytes: 0,
                                     managed: false),
                          balloonTotalBytes: 0, cgroupVersion: nil, vms: [])
    }

    // MetricsControl
    func metricsSnapshot() async -> MetricsSnapshot {
        MetricsSnapshot(vms: [], host: await host())
    }

    // MigrationControl
    func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> AsyncStream<MigrationUpdate> {
        _ = try known(name)
        try checked(request.validate)
        return AsyncStream { $0.finish() }
    }
    func cancelMigration(_ name: String) async throws(ControlError) { _ = try known(name) }
    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        let problems = request.problems()
        guard problems.isEmpty else { throw .invalidRequest(problems.joined(separator: "; ")) }
        if Self.names.contains(request.config.profile.name) {
            throw .conflict("a VM named \(request.config.profile.name) already exists here")
        }
        return IncomingReply(uri: "tcp:192.0.2.2:49152")
    }
    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus { try known(name) }
    func abortIncoming(_ name: String) async throws(ControlError) { _ = try known(name) }

    // NetworkControl
    func createNetwork(_ request: NetworkCreateRequest) async throws(ControlError) -> NetworkInfo {
        try checked(request.validate)
        guard let spec = request.resolved() else { throw .invalidRequest("bad subnet") }
        return NetworkInfo(name: spec.name, bridge: spec.bridge, subnet: spec.subnet.description,
                           gateway: spec.gateway.description, nat: spec.nat, dhcpRange: spec.dhcpRange.description,
                           dnsmasqPid: nil, state: "up", problem: nil, vms: [], leases: [:])
    }
    func networks() async -> [NetworkInfo] { [] }
    func network(_ name: String) async throws(ControlError) -> NetworkInfo { throw .notFound("no network named \(name)") }
    func removeNetwork(_ name: String) async throws(ControlError) { throw .notFound("no network named \(name)") }
}
