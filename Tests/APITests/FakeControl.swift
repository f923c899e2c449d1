import Foundation
import CorralModel
import JSON
import Profiles
import CorralControl
import LogTail
import Supervisor

/// A `DaemonControl` that records every call and answers from a script. Like the daemon, it refuses a request
/// that fails its `validate()` (the routes only decode).
actor FakeControl: VMControl {
    enum Call: Equatable {
        case up(UpRequest)
        case list
        case status(String)
        case start(String)
        case stop(String, Duration)
        case kill(String)
        case remove(String, force: Bool)
        case pause(String)
        case resume(String)
        case qmp(String, command: String, arguments: JSONObject?)
        case serialLog(String)
        case screenshot(String)
        case attachConsole(String, force: Bool)
        case openVNC(String)
        case events(vm: String?, history: Int)
        case setCPUs(String, Int)
        case addDisk(String, DiskAddRequest)
        case removeDisk(String, id: String, deleteImage: Bool)
        case addNIC(String, NICAddRequest)
        case removeNIC(String, id: String)
        case addMemory(String, MemoryAddRequest)
        case removeMemory(String, id: String)
        case addHostDevice(String, HostDeviceAddRequest)
        case removeHostDevice(String, id: String)
        case hostDevices
        case removeKeeping(String, force: Bool, volumes: VolumeDisposition)
        case volumes
        case snapshots(String)
        case createSnapshot(String, SnapshotCreateRequest)
        case revertSnapshot(String, String)
        case removeSnapshot(String, String)
        case balloon(String, size: String)
        case stats(String)
        case setTuning(String, TuningRequest)
        case host
        case migrate(String, MigrateRequest)
        case cancelMigration(String)
        case prepareIncoming(IncomingRequest)
        case commitIncoming(String)
        case abortIncoming(String)
        case metricsSnapshot
    }

    private(set) var calls: [Call] = []
    func record(_ call: Call) { calls.append(call) }
    fileprivate func update(_ status: VMStatus) { vms[status.name] = status }
    /// Exposed for the hotplug/tuning conformance below.
    fileprivate func lookUp(_ name: String) throws(ControlError) -> VMStatus { try known(name) }
    /// VMs the fake knows; operations on other names fail with not-found.
    var vms: [String: VMStatus] = [:]
    /// When set, every operation that can fail fails with this.
    var failure: ControlError?
    var qmpReply: JSONValue = ["status": "running", "running": true]
    var serialLogs: [String: String] = [:]
    var consoleAttached = false
    private var subscribers: [AsyncStream<CorralEvent>.Continuation] = []
    private var subscribed: [AsyncStream<Void>.Continuation] = []
    private(set) var terminatedSubscriptions = 0
    /// `migrate` streams these, then ends with `migrationOutcome`.
    var migrationProgress: [MigrationProgress] = []
    var migrationOutcome: Result<MigrationResult, ControlError> = .failure(.internalError("no outcome scripted"))
    /// Answers of the peer operations.
    var incomingReply = IncomingReply(uri: "tcp:192.0.2.2:49152")
    var peerFailure: ControlError?
    /// Networks the fake knows.
    var fakeNetworks: [String: NetworkInfo] = [:]
    /// What `metricsSnapshot` answers (FakeControl+Metrics.swift).
    var metrics = FakeControl.sampleMetrics

    init(vms: [VMStatus] = []) {
        for vm in vms { self.vms[vm.name] = vm }
    }

    func setFailure(_ error: ControlError?) { failure = error }
    func setIncomingReply(_ reply: IncomingReply) { incomingReply = reply }
    func addNetwork(_ info: NetworkInfo) { fakeNetworks[info.name] = info }
    func setSerialLog(_ name: String, path: String) { serialLogs[name] = path }
    func add(_ status: VMStatus) { vms[status.name] = status }

    /// Waits until `count` event subscriptions are open.
    func waitForSubscribers(_ count: Int) async {
        while subscribers.count < count {
            let (stream, continuation) = AsyncStream<Void>.makeStream()
            subscribed.append(continuation)
            for await _ in stream { break }
        }
    }

    /// Pushes one event to every open subscription.
    func push(_ event: CorralEvent) {
        for subscriber in subscribers { subscriber.yield(event) }
    }

    private var terminationWaiters: [AsyncStream<Void>.Continuation] = []

    private func noteTermination() {
        terminatedSubscriptions += 1
        for waiter in terminationWaiters { waiter.yield() }
        terminationWaiters.removeAll()
    }

    /// Waits until `count` event subscriptions were ended by their consumer.
    func waitForTerminations(_ count: Int) async {
        while terminatedSubscriptions < count {
            let (stream, continuation) = AsyncStream<Void>.makeStream()
            terminationWaiters.append(continuation)
            for await _ in stream { break }
        }
    }

    private func known(_ name: String) throws(ControlError) -> VMStatus {
        if let failure { throw failure }
        guard let status = vms[name] else { throw .notFound("no VM named \(name)") }
        return status
    }

    private func with(_ name: String, state: VMState) throws(ControlError) -> VMStatus {
        var status = try known(name)
        status.state = state
        vms[name] = status
        return status
    }

    func up(_ request: UpRequest) async throws(ControlError) -> VMStatus {
        calls.append(.up(request))
        do { try request.validate() } catch { throw ControlError(error) }
        if let failure { throw failure }
        let name = request.name ?? "vm"
        let status = FakeControl.status(name, state: request.paused ? .paused : .running)
        vms[name] = status
        return status
    }

    func list() async -> [VMStatus] {
        calls.append(.list)
        return vms.values.sorted { $0.name < $1.name }
    }

    func status(_ name: String) async throws(ControlError) -> VMStatus {
        calls.append(.status(name))
        return try known(name)
    }

    func start(_ name: String) async throws(ControlError) -> VMStatus {
        calls.append(.start(name))
        return try with(name, state: .running)
    }

    func stop(_ name: String, timeout: Duration) async throws(ControlError) -> VMStatus {
        calls.append(.stop(name, timeout))
        return try with(name, state: .stopped)
    }

    func kill(_ name: String) async throws(ControlError) -> VMStatus {
        calls.append(.kill(name))
        return try with(name, state: .stopped)
    }

    func remove(_ name: String, force: Bool, volumes: VolumeDisposition?) async throws(ControlError) {
        calls.append(volumes.map { .removeKeeping(name, force: force, volumes: $0) } ?? .remove(name, force: force))
        _ = try known(name)
        vms[name] = nil
    }

    func pause(_ name: String) async throws(ControlError) -> VMStatus {
        calls.append(.pause(name))
        return try with(name, state: .paused)
    }

    func resume(_ name: String) async throws(ControlError) -> VMStatus {
        calls.append(.resume(name))
        return try with(name, state: .running)
    }

    func qmp(_ name: String, command: String, arguments: JSONObject?) async throws(ControlError) -> JSONValue {
        calls.append(.qmp(name, command: command, arguments: arguments))
        _ = try known(name)
        return qmpReply
    }

    func serialLog(_ name: String) async throws(ControlError) -> String {
        calls.append(.serialLog(name))
        _ = try known(name)
        return serialLogs[name] ?? "/nonexistent/serial.log"
    }

    /// The PNG signature and a header: enough for the route's content type and length.
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]

    /// The console of "web" is an echo: every byte the client sends comes back, after "echo:" once.
    func attachConsole(_ name: String, force: Bool) async throws(ControlError) -> ByteStreamLease {
        calls.append(.attachConsole(name, force: force))
        _ = try known(name)
        if consoleAttached && !force { throw .conflict("someone is attached to \(name)'s console") }
        consoleAttached = true
        return try Self.echoPair(greeting: "echo:")
    }

    func openVNC(_ name: String) async throws(ControlError) -> ByteStreamLease {
        calls.append(.openVNC(name))
        _ = try known(name)
        return try Self.echoPair(greeting: "RFB 003.008\n")
    }

    /// One end for the relay; the other answered by a thread that writes `greeting`, then echoes until the end.
    static func echoPair(greeting: String) throws(ControlError) -> ByteStreamLease {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { throw .internalError("socketpair") }
        let peer = pair[0]
        Thread.detachNewThread {
            _ = Array(greeting.utf8).withUnsafeBytes { write(peer, $0.baseAddress, $0.count) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(peer, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                _ = buffer.withUnsafeBytes { write(peer, $0.baseAddress, count) }
            }
            close(peer)
        }
        let fd = pair[1]
        return ByteStreamLease(fd: fd) { close(fd) }
    }

    func screenshot(_ name: String) async throws(ControlError) -> [UInt8] {
        calls.append(.screenshot(name))
        _ = try known(name)
        guard name == "web" else { throw .conflict("\(name) has no display (add display: to its profile)") }
        return Self.png
    }

    func events(vm: String?, history: Int, follow: Bool) async -> AsyncStream<CorralEvent> {
        calls.append(.events(vm: vm, history: history))
        let (stream, continuation) = AsyncStream<CorralEvent>.makeStream()
        // The fake keeps no past events: without `follow` there is nothing to send.
        guard follow else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            Task { await self?.noteTermination() }
        }
        subscribers.append(continuation)
        for waiter in subscribed { waiter.yield() }
        subscribed.removeAll()
        return stream
    }

    static func status(_ name: String, state: VMState = .running) -> VMStatus {
        VMStatus(
            name: name, state: state, pid: state == .stopped ? nil : 4242, accel: "tcg", uptimeSeconds: 12.5,
            cpus: .init(online: 2, max: 4),
            memory: .init(sizeBytes: 1 << 30, maxBytes: 2 << 30, balloonBytes: nil),
            disks: [.init(id: "root", file: "/var/lib/corral/vms/\(name)/root.qcow2", format: "qcow2", readonly: false,
                          bus: "virtio")],
            nics: [.init(id: "net0", mac: "52:54:00:12:34:56", mode: "user", addresses: ["10.0.2.15"],
                         addressSource: "agent")],
            qmpSocket: "/var/lib/corral/vms/\(name)/qmp.sock", serialLog: "/var/lib/corral/vms/\(name)/serial.log",
            restartCount: 0, lastExit: nil, agent: state == .stopped ? nil : "connected", uid: 2_000_000,
            confinement: "uid 2000000, no capabilities, no_new_privs, seccomp sandbox, descriptors only",
            cpuSeconds: state == .stopped ? nil : 3.25, display: .init(vga: "std", vnc: true))
    }
}

/// Hotplug as a fake: records the call and reflects the change in the VM's status.
extension FakeControl: HotplugControl {
    func setCPUs(_ name: String, count: Int) async throws(ControlError) -> VMStatus {
        record(.setCPUs(name, count))
        var status = try lookUp(name)
        guard (1...status.cpus.max).contains(count) else {
            throw .invalidRequest("COUNT: \(count) is outside 1…\(status.cpus.max)")
        }
        status.cpus.online = count
        update(status)
        return status
    }

    func addDisk(_ name: String, _ request: DiskAddRequest) async throws(ControlError) -> VMStatus {
        record(.addDisk(name, request))
        do { try request.validate() } catch { throw ControlError(error) }
        var status = try lookUp(name)
        status.disks.append(.init(id: request.id, file: request.file ?? "/var/lib/corral/vms/\(name)/disks/\(request.id).qcow2", format: request.format?.rawValue ?? "qcow2",
                                  readonly: request.readonly, bus: request.bus?.rawValue ?? "virtio-blk"))
        update(status)
        return status
    }

    func removeDisk(_ name: String, id: String, deleteImage: Bool) async throws(ControlError) -> VMStatus {
        record(.removeDisk(name, id: id, deleteImage: deleteImage))
        var status = try lookUp(name)
        guard status.disks.contains(where: { $0.id == id }) else { throw .notFound("\(name) has no disk \(id)") }
        status.disks.removeAll { $0.id == id }
        update(status)
        return status
    }

    func addNIC(_ name: String, _ request: NICAddRequest) async throws(ControlError) -> VMStatus {
        record(.addNIC(name, request))
        do { try request.validate() } catch { throw ControlError(error) }
        var status = try lookUp(name)
        status.nics.append(.init(id: request.id, mac: request.mac ?? "52:54:00:aa:bb:cc",
                                 mode: request.mode?.rawValue ?? "user"))
        update(status)
        return status
    }

    func removeNIC(_ name: String, id: String) async throws(ControlError) -> VMStatus {
        record(.removeNIC(name, id: id))
        var status = try lookUp(name)
        status.unplugPending.append(id)
        update(status)
        return status
    }

    func addMemory(_ name: String, _ request: MemoryAddRequest) async throws(ControlError) -> VMStatus {
        record(.addMemory(name, request))
        do { try request.validate() } catch { throw ControlError(error) }
        return try lookUp(name)
    }

    func removeMemory(_ name: String, id: String) async throws(ControlError) -> VMStatus {
        record(.removeMemory(name, id: id))
        return try lookUp(name)
    }

    func addHostDevice(_ name: String, _ request: HostDeviceAddRequest) async throws(ControlError) -> VMStatus {
        record(.addHostDevice(name, request))
        do { try request.validate() } catch { throw ControlError(error) }
        var status = try lookUp(name)
        status.hostdevs = (status.hostdevs ?? []) + [.init(id: request.id, kind: request.pci == nil ? "vf" : "pci",
                                                           host: [request.pci ?? "0000:65:10.0"], source: "plugged",
                                                           failover: request.vfOf == nil ? nil : "net0")]
        update(status)
        return status
    }

    func removeHostDevice(_ name: String, id: String) async throws(ControlError) -> VMStatus {
        record(.removeHostDevice(name, id: id))
        return try lookUp(name)
    }

    func volumes() async throws(ControlError) -> [VolumeInfo] {
        record(.volumes)
        return [
            VolumeInfo(vm: "web", id: "root", file: "/var/lib/corral/vms/web/disks/root.qcow2", format: "qcow2",
                       managed: true, plugged: false, virtualBytes: 10 << 30, allocatedBytes: 196_608,
                       backing: "/var/lib/corral/images/debian-12.qcow2"),
            VolumeInfo(vm: "web", id: "gone", file: "/srv/gone.raw", format: "raw", managed: false, plugged: true,
                       problem: "/srv/gone.raw does not exist"),
        ]
    }

    func snapshots(_ name: String) async throws(ControlError) -> [SnapshotInfo] {
        record(.snapshots(name))
        _ = try lookUp(name)
        return [SnapshotInfo(name: "before-upgrade", created: 1_796_000_000, disks: ["root", "data"])]
    }

    func createSnapshot(_ name: String, _ request: SnapshotCreateRequest) async throws(ControlError) -> SnapshotResult {
        record(.createSnapshot(name, request))
        do { try request.validate() } catch { throw ControlError(error) }
        _ = try lookUp(name)
        return SnapshotResult(vm: name, snapshot: request.name, action: "created", disks: ["root"], live: true)
    }

    func revertSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult {
        record(.revertSnapshot(name, snapshot))
        _ = try lookUp(name)
        guard snapshot == "before-upgrade" else { throw .notFound("\(name) has no snapshot \(snapshot)") }
        return SnapshotResult(vm: name, snapshot: snapshot, action: "reverted", disks: ["root"], live: false,
                              dropped: ["later"], untouched: ["scratch"])
    }

    func removeSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult {
        record(.removeSnapshot(name, snapshot))
        _ = try lookUp(name)
        guard snapshot == "before-upgrade" else { throw .notFound("\(name) has no snapshot \(snapshot)") }
        return SnapshotResult(vm: name, snapshot: snapshot, action: "removed", disks: ["root"], live: true)
    }

    func hostDevices() async throws(ControlError) -> HostDeviceReport {
        record(.hostDevices)
        return HostDeviceReport(iommu: ["dmar0"], groups: [
            .init(number: 20, devices: [.init(address: "0000:65:00.0", ids: "8086:10fb", kind: "Ethernet",
                                              driver: "ixgbe", vm: nil)], hostBound: ["0000:65:00.0"]),
            .init(number: 60, devices: [.init(address: "0000:65:10.0", ids: "8086:10ed", kind: "Ethernet",
                                              driver: "vfio-pci", vm: "web", physicalFunction: "0000:65:00.0")],
                  hostBound: []),
        ], physicalFunctions: [
            .init(address: "0000:65:00.0", netdev: "enp101s0f0", totalVFs: 8, numVFs: 2, usedVFs: 1, vfs: [
                .init(index: 0, address: "0000:65:10.0", driver: "vfio-pci", vm: "web"),
                .init(index: 1, address: "0000:65:10.2", driver: nil, vm: nil),
            ]),
        ])
    }
}

/// Tuning as a fake: fixed statistics and a host report decoded from the documented JSON.
extension FakeControl: TuningControl {
    func balloon(_ name: String, size: String) async throws(ControlError) -> VMStatus {
        record(.balloon(name, size: size))
        var status = try lookUp(name)
        status.memory.balloonBytes = 384 << 20
        update(status)
        return status
    }

    func stats(_ name: String) async throws(ControlError) -> GuestStats {
        record(.stats(name))
        _ = try lookUp(name)
        return FakeControl.guestStats(name)
    }

    func setTuning(_ name: String, _ request: TuningRequest) async throws(ControlError) -> VMStatus {
        record(.setTuning(name, request))
        do { try request.validate() } catch { throw ControlError(error) }
        return try lookUp(name)
    }

    /// Every field set, so the OpenAPI test sees each documented one.
    func cluster() async -> ClusterReport {
        ClusterReport(enabled: true, host: "host-a", state: "alive",
                      hosts: [.init(name: "host-a", address: "192.0.2.1:7070", vms: ["web"],
                                    capacity: HostCapacity(cpus: 4, memoryBytes: 8 << 30, cpuRatioLimit: 4, memoryRatioLimit: 1.5,
                                                           committedVCPUs: 2, committedMemoryBytes: 1 << 30,
                                                           cpuModel: "AMD EPYC", qemuVersion: "7.2.15"),
                                    draining: true, moved: ["db": "host-b"])],
                      orphans: ["lost"], problem: "sample")
    }

    func host() async -> HostReport {
        record(.host)
        return FakeControl.hostReport
    }

    static func guestStats(_ name: String) -> GuestStats {
        GuestStats(name: name, balloonBytes: 384 << 20, balloonTargetBytes: 384 << 20, autoBalloon: false,
                   lastUpdate: 1_700_000_000, stats: ["stat-free-memory": 100 << 20, "stat-major-faults": 12,
                                                      "stat-swap-in": -1])
    }

    static let hostReportJSON = """
        {"balloonTotalBytes":402653184,"cgroupVersion":"v2",
         "cpus":{"capacity":4,"committed":3,"limit":4,"ratio":0.75},
         "ksm":{"available":true,"managed":true,"pagesShared":10,"pagesSharing":1200,"running":true,"savedBytes":4915200},
         "memory":{"capacity":8589934592,"committed":1610612736,"ratio":0.1875},
         "memoryAvailableBytes":5368709120,"qemuUsers":"2000000-2065535","qemuUsersInUse":1,"pinnedMemoryBytes":0,
         "vms":[{"autoBalloon":true,"balloonBytes":402653184,"cpuQuotaPercent":150,"cpuWeight":100,"memoryBytes":1073741824,
                 "memoryShares":1000,"name":"web","state":"running","vcpus":2,"pinned":false}]}
        """

    static var hostReport: HostReport {
        // HostReport has no public memberwise initializer: it is built by the daemon, decoded by clients.
        try! JSONDecoder().decode(HostReport.self, from: Data(hostReportJSON.utf8))
    }
}

/// Migration as a fake: `migrate` refuses what the daemon refuses before streaming (unknown VM, bad options),
/// publishes the events a real daemon would, streams the scripted progress and ends with the scripted outcome.
extension FakeControl: MigrationControl {
    func scriptMigration(progress: [MigrationProgress], outcome: Result<MigrationResult, ControlError>) {
        migrationProgress = progress
        migrationOutcome = outcome
    }

    func setPeerFailure(_ error: ControlError?) { peerFailure = error }

    func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> AsyncStream<MigrationUpdate> {
        record(.migrate(name, request))
        _ = try lookUp(name)
        do { try request.validate() } catch { throw ControlError(error) }
        let (stream, sink) = AsyncStream<MigrationUpdate>.makeStream()
        push(CorralEvent(time: 1, vm: name, name: .migrationStarted, data: ["to": .string(request.to.description)]))
        for progress in migrationProgress {
            push(CorralEvent(time: 1, vm: name, name: .migrationProgress))
            sink.yield(.progress(progress))
        }
        switch migrationOutcome {
        case .success(let result):
            push(CorralEvent(time: 1, vm: name, name: .migrated, data: ["to": .string(request.to.description)]))
            sink.yield(.completed(result))
        case .failure(let error):
            push(CorralEvent(time: 1, vm: name, name: .migrationFailed, data: ["reason": .string(error.message)]))
            sink.yield(.failed(error))
        }
        sink.finish()
        return stream
    }

    func cancelMigration(_ name: String) async throws(ControlError) {
        record(.cancelMigration(name))
        _ = try lookUp(name)
    }

    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        record(.prepareIncoming(request))
        if let peerFailure { throw peerFailure }
        return incomingReply
    }

    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        record(.commitIncoming(name))
        if let peerFailure { throw peerFailure }
        return try lookUp(name)
    }

    func abortIncoming(_ name: String) async throws(ControlError) {
        record(.abortIncoming(name))
        if let peerFailure { throw peerFailure }
    }
}

/// Networks as a fake: kept in memory, validated like the daemon's.
extension FakeControl: NetworkControl {
    func createNetwork(_ request: NetworkCreateRequest) async throws(ControlError) -> NetworkInfo {
        do { try request.validate() } catch { throw ControlError(error) }
        guard let spec = request.resolved() else { throw .invalidRequest("bad subnet") }
        if fakeNetworks[spec.name] != nil { throw .conflict("a network named \(spec.name) already exists") }
        let info = NetworkInfo(name: spec.name, bridge: spec.bridge, subnet: spec.subnet.description,
                               gateway: spec.gateway.description, nat: spec.nat, dhcpRange: spec.dhcpRange.description,
                               dnsmasqPid: 4242, state: "up", problem: nil, vms: [], leases: [:])
        fakeNetworks[spec.name] = info
        return info
    }

    func networks() async -> [NetworkInfo] { fakeNetworks.keys.sorted().compactMap { fakeNetworks[$0] } }

    func network(_ name: String) async throws(ControlError) -> NetworkInfo {
        guard let info = fakeNetworks[name] else { throw .notFound("no network named \(name)") }
        return info
    }

    func removeNetwork(_ name: String) async throws(ControlError) {
        guard fakeNetworks.removeValue(forKey: name) != nil else { throw .notFound("no network named \(name)") }
    }
}
/// The cluster as a fake: this is host-a; placement answers host-b; evacuate and restore stream one of each line.
extension FakeControl: ClusterControl {
    func placement(_ name: String, to: String) async throws(ControlError) -> PlacementReply {
        _ = try lookUp(name)
        guard to == "auto" || to == "host-b" else { throw .refused("--to \(to): no live host of that name") }
        return PlacementReply(host: "host-b", address: "192.0.2.2:7070")
    }

    func evacuate(_ host: String, _ request: EvacuateRequest) async throws(ControlError) -> AsyncStream<EvacuationUpdate> {
        try scriptedHostAction(host, request)
    }

    func restore(_ host: String, _ request: EvacuateRequest) async throws(ControlError) -> AsyncStream<EvacuationUpdate> {
        try scriptedHostAction(host, request)
    }

    private func scriptedHostAction(_ host: String, _ request: EvacuateRequest) throws(ControlError) -> AsyncStream<EvacuationUpdate> {
        guard host == "host-a" else { throw .notFound("no live host named \(host) in the cluster") }
        if let problem = request.problem() { throw .invalidRequest(problem) }
        let (stream, sink) = AsyncStream<EvacuationUpdate>.makeStream()
        sink.yield(.plan([EvacuationStep(vm: "web", to: "host-b"), EvacuationStep(vm: "idle", reason: "it is stopped")]))
        sink.yield(.progress(vm: "web", OpenAPITests.progress))
        sink.yield(.moved(vm: "web", MigrationRouteTests.result))
        sink.yield(.failed(vm: "db", .unreachable("destination 192.0.2.3:7070: connection refused")))
        sink.yield(.finished(EvacuationSummary(host: host, moved: ["web": "host-b"], failed: ["db": "connection refused"],
                                               stayed: ["idle": "it is stopped"])))
        sink.finish()
        return stream
    }
}
extension FakeControl: ConsoleControl {}
