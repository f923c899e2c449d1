import CorralControl
import CorralCore
import Foundation
import CorralModel
import JSON
import Logging
import Profiles
import QEMUCommand

/// The daemon's implementation of `VMControl`: one `ManagedVM` per VM folder under
/// `STATE/vms/`. On open it reattaches to every QEMU still running and applies the
/// restart policy to those that died while no daemon watched.
public actor VMManager: VMControl {
    public nonisolated let stateRoot: String
    let hub = EventHub()
    let launcher: any VMLaunching
    /// Reaches peer daemons for migration; set by the API layer.
    var peerConnector: MigrationPeerConnector?
    let options: DaemonOptions
    let cgroups: CGroupManager?
    /// Device cgroups for confined QEMUs (nil: none on this host, or cgroups off).
    let deviceCGroup: DeviceCGroup?
    let logger: Logger
    var vms: [String: ManagedVM] = [:]
    /// VM folders that cannot be read, by name: why. Listed, never touched except by `rm`.
    var broken: [String: String] = [:]
    /// Each VM's QEMU uid (those that have one): allocation reads it synchronously, so two `up`s never share one.
    var uids: [String: UInt32] = [:]
    /// Managed networks (bridges, dnsmasq, NAT).
    let networkManager: NetworkManager
    /// Outgoing migrations in flight, by VM: they belong to the daemon, not to the request that started them.
    var migrations: [String: Task<Void, Never>] = [:]
    /// Policy state carried across ticks (hysteresis, idle counters).
    var balloonPolicy = BalloonPolicy()
    var ksmPolicy = KSMPolicy()
    /// HA VMs this host paused because it could not renew its cluster lease (resumed, or given up, once it can).
    var fenced: Set<String> = []
    /// When the reconciler first saw each HA VM without an owner.
    var orphanedSince: [String: ContinuousClock.Instant] = [:]
    /// How `restore` asks another host's daemon to migrate a VM back (corrald passes the HTTP peer).
    var clusterConnector: ClusterPeerConnector?
    /// An evacuation or restore of this host is running.
    var evacuating = false
    /// This host's drain record while an evacuation or restore runs (the one copy its moves change).
    var drainRecord: DrainRecord?
    /// The write of the drain record in flight; the next one waits for it.
    var drainWriter: Task<Void, Never>?
    /// Binds VMs' host PCI devices to vfio-pci and back.
    let hostDeviceClaims: HostDeviceClaims
    /// The host CPU model and QEMU version this host publishes (read once).
    var hostFacts: (cpuModel: String, qemuVersion: String?)?
    /// Outgoing migrations and missed VM readings since the daemon started (`GET /metrics`).
    var metricsTally = MetricsTally()

    init(stateRoot: String, launcher: any VMLaunching, options: DaemonOptions,
         peerConnector: MigrationPeerConnector? = nil, networks: NetworkManager, logger: Logger) {
        self.stateRoot = stateRoot
        self.networkManager = networks
        self.peerConnector = peerConnector
        self.launcher = launcher
        self.options = options
        self.logger = logger
        self.hostDeviceClaims = options.hostDeviceClaims ?? HostDeviceClaims.host()
        if let root = options.cgroupRoot {
            do {
                self.cgroups = try CGroupManager(root: root)
            } catch {
                logger.warning("no usable cgroup hierarchy; CPU weight and quota are off", metadata: ["error": "\(error)"])
                self.cgroups = nil
            }
        } else {
            self.cgroups = nil
        }
        if let root = options.cgroupRoot, options.qemuIdentity != .root {
            deviceCGroup = DeviceCGroup(root: root)
            if case .unavailable(let reason) = DeviceCGroup.availability(root: root) {
                logger.warning("QEMU runs without device rules", metadata: ["why": "\(reason)"])
            }
        } else {
            deviceCGroup = nil
        }
    }

    /// Opens the state root (creating it, mode 0700) and takes over every VM found there.
    /// `peerConnector`: how migrations reach other daemons (corrald passes the HTTP peer).
    public static func open(stateRoot: String, logger: Logger = Logger(label: "corral.daemon"),
                            options: DaemonOptions = DaemonOptions(),
                            peerConnector: MigrationPeerConnector? = nil) async throws -> VMManager {
        try await open(stateRoot: stateRoot, launcher: VMLauncher(logger: logger), options: options,
                       peerConnector: peerConnector, logger: logger)
    }

    /// The same with another way to get QEMUs running (unit tests script them).
    static func open(stateRoot: String, launcher: any VMLaunching, options: DaemonOptions,
                     peerConnector: MigrationPeerConnector?, logger: Logger) async throws -> VMManager {
        try FileOps.makeFolder(stateRoot + "/vms")
        // Networks first: a VM restarted while loading needs its network's bridge.
        let networks = await NetworkManager.open(stateRoot: stateRoot, logger: logger)
        let manager = VMManager(stateRoot: stateRoot, launcher: launcher, options: options,
                                peerConnector: peerConnector, networks: networks, logger: logger)
        await manager.loadExisting()
        await manager.reclaimOwnership()
        return manager
    }

    /// Supervises until the task is cancelled: every `policyInterval` the balloon and KSM
    /// policies look at the host. On cancellation lets go of every VM without stopping any.
    public func run() async {
        // The cluster's duties (fencing, HA placement and adoption) run every second, apart from the policies.
        let clusterDuties = options.cluster == nil ? nil : Task { [weak self] in
            while !Task.isCancelled {
                await self?.clusterTick()
                try? await Task.sleep(for: .seconds(1))
            }
        }
        while !Task.isCancelled {
            await policyTick()
            do { try await Task.sleep(for: options.policyInterval) } catch { break }
        }
        clusterDuties?.cancel()
        await shutdown()
    }

    /// Closes QMP connections and monitors; QEMU processes keep running.
    public func shutdown() async {
        for vm in vms.values { await vm.detach() }
        await networkManager.shutdown()
        await hub.finishAll()
        logger.info("daemon detached from all VMs", metadata: ["count": "\(vms.count)"])
    }

    private func loadExisting() async {
        let folder = stateRoot + "/vms"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names.sorted() {
            let paths = VMPaths(folder: folder + "/" + name)
            let store = VMStore(paths: paths)
            // An incoming migration that was never committed cannot be finished by a new daemon (the source has
            // rolled back or will); its QEMU, provably this folder's, and its folder go.
            if let pending = try? store.loadRecord(), pending.state == .incoming {
                for pid in Self.processes(mentioning: paths.folder + "/") { _ = Glibc.kill(pid, SIGKILL) }
                FileOps.removeTree(paths.folder)
                logger.warning("removed an incoming migration that was never committed", metadata: ["vm": "\(name)"])
                continue
            }
            let record: VMRecord
            let config: LiveConfig
            do {
                guard let loaded = try store.loadRecord() else { throw StateFileProblem("vm.json is missing") }
                guard let live = try store.loadConfig() else { throw StateFileProblem("live.json is missing") }
                guard loaded.name == name else {
                    throw StateFileProblem("vm.json names another VM (\(loaded.name))")
                }
                (record, config) = (loaded, live)
            } catch {
                // Every other VM is loaded as usual; this one is listed with the reason, and no process is touched
                // on its account (nothing proves which QEMU would be its).
                let reason = StateFileProblem.describe(error)
                broken[name] = reason
                logger.error("cannot read a VM's state; listed as broken", metadata: ["vm": "\(name)", "why": "\(reason)"])
                continue
            }
            await hub.load(from: store.eventsPath)
            await hub.setLogFile(store.eventsPath, for: name)
            let vm = ManagedVM(record: record, config: config, paths: paths, hub: hub, launcher: launcher,
                               restartEngine: options.restartEngine, unplugTimeout: options.unplugTimeout,
                               cgroups: cgroups, deviceCGroup: deviceCGroup, guestAgent: options.guestAgent,
                           logger: logger)
            await vm.setHostDeviceClaims(hostDeviceClaims)
            vms[name] = vm
            if let uid = record.uid { uids[name] = uid }
            // A pid file without a recorded pid: this daemon's predecessor died while starting the VM.
            let unrecordedStart = record.pid == nil && !record.desiredRunning
            guard !unrecordedStart || FileManager.default.fileExists(atPath: paths.pidFile) else { continue }
            if await vm.queue.run({ await vm.reattach() }) {
                if let journal = record.migratingTo, let connector = peerConnector {
                    let peer = connector(journal.destination, journal.token)
                    await vm.setOnMigratedAway { [weak self] name in await self?.forgetMigrated(name, vm: vm) }
                    let outcome = await vm.queue.run { await vm.resolveInterruptedMigration(peer) }
                    if outcome == .movedAway {
                        vms[name] = nil
                        uids[name] = nil
                        await vm.markRemoved()
                        FileOps.removeTree(paths.folder)
                    } else if case .unresolved = outcome {
                        await vm.keepResolving(peer)
                    }
                }
                continue
            }
            if unrecordedStart {
                // That QEMU is gone too: the VM stays as it was (defined, not running); no restart.
                FileOps.remove(paths.pidFile)
                paths.removeSockets()
                continue
            }
            // Its QEMU is gone (or is not ours any more): the restart policy decides.
            paths.removeSockets()
            await vm.queue.run { await vm.recoverAfterDaemonRestart() }
        }
    }

    /// The next free uid of the daemon's range for `name`'s QEMU (reserved at once); nil when QEMU runs as root.
    func allocateUID(for name: String) throws(ControlError) -> UInt32? {
        guard case .perVM = options.qemuIdentity else { return nil }
        guard let uid = options.qemuIdentity.allocate(excluding: Set(uids.values)) else {
            throw .refused("no free uid left for QEMU in \(options.qemuIdentity.summary) (one per VM); "
                + "remove VMs or widen --uid-range")
        }
        uids[name] = uid
        return uid
    }

    // MARK: VMControl

    /// Reading and validating the profile happens outside the manager's isolation: a slow or hostile profile never
    /// delays `ls`, `status` or any request about another VM.
    public nonisolated func up(_ request: UpRequest) async throws(ControlError) -> VMStatus {
        do { try request.validate() } catch { throw ControlError(error) }
        var profile: Profile
        do {
            profile = try ProfileLoader().load(path: request.profile)
        } catch {
            throw .invalidProfile(error.diagnostics)
        }
        if let name = request.name { profile.name = name }
        return try await up(profile, request)
    }

    private func up(_ profile: Profile, _ request: UpRequest) async throws(ControlError) -> VMStatus {
        try await up(LiveConfig(profile: profile), request)
    }

    /// Defines and starts a VM from a live config (a profile, or an HA VM's config from the cluster with its
    /// hotplugged devices). `adopting`: an HA VM the cluster gave this host (started even while it drains, since
    /// nothing else would start it).
    func up(_ config: LiveConfig, _ request: UpRequest, adopting: Bool = false) async throws(ControlError) -> VMStatus {
        var config = config
        let name = config.profile.name
        // Disks given only a size become managed volumes in the VM's folder.
        config.profile = config.profile.resolvingManagedDisks(in: VMPaths(stateRoot: stateRoot, name: name).folder)
        // A base image's format is read once, when the VM is defined, and kept in live.json.
        for index in config.profile.disks.indices {
            let disk = config.profile.disks[index]
            guard let backing = disk.backing, disk.backingFormat == nil else { continue }
            do { config.profile.disks[index].backingFormat = try await launcher.provisioner.format(of: backing) } catch {
                throw .invalidRequest("disks[\(index)].backing: \(backing): \(error.reason)")
            }
        }
        let profile = config.profile
        if let existing = vms[name] {
            throw .conflict("a VM named \(name) already exists (\(await existing.currentState.rawValue)): "
                + "choose another --name or remove it with corral rm \(name)")
        }
        let paths = VMPaths(stateRoot: stateRoot, name: name)
        if let problem = paths.socketPathProblem { throw .invalidRequest(problem) }
        let accel = HostProbe.resolve(request.accel ?? profile.accel)
        var record = VMRecord(name: name, profilePath: request.profile, accel: accel,
                              now: Date().timeIntervalSince1970)
        try await admitNew(config)
        if !adopting { try await refuseWhileDraining("\(name)'s start") }
        guard vms[name] == nil else { throw .conflict("a VM named \(name) already exists") }
        record.uid = try allocateUID(for: name)
        let store = VMStore(paths: paths)
        do {
            try FileOps.makeFolder(paths.folder)
            // Without fsync: the launch makes both durable while QEMU starts (ManagedVM.spawnHook).
            try store.stage(record, config)
        } catch {
            FileOps.removeTree(paths.folder)
            uids[name] = nil
            throw .internalError("cannot write \(paths.folder): \(error)")
        }
        let vm = ManagedVM(record: record, config: config, paths: paths, hub: hub, launcher: launcher,
                           restartEngine: options.restartEngine, unplugTimeout: options.unplugTimeout,
                           cgroups: cgroups, deviceCGroup: deviceCGroup, guestAgent: options.guestAgent,
                           logger: logger)
        await vm.setHostDeviceClaims(hostDeviceClaims)
        vms[name] = vm  // reserve the name before suspending
        await hub.setLogFile(store.eventsPath, for: name)
        await hub.publish(vm: name, .defined, ["profile": .string(request.profile)])
        do {
            try await claimOwnership(name)
        } catch {
            vms[name] = nil
            uids[name] = nil
            await vm.markRemoved()
            FileOps.removeTree(paths.folder)
            throw error
        }
        do {
            try await vm.queue.run { () async throws(ControlError) in
                try await vm.launch(paused: request.paused, configStaged: true)
            }
        } catch {
            // Nothing left behind: no process (the launcher killed it), no socket, no folder, not listed, not owned.
            vms[name] = nil
            uids[name] = nil
            await vm.markRemoved()
            FileOps.removeTree(paths.folder)
            await releaseOwnership(name)
            throw error
        }
        await publishHA(name, config)
        return await vm.status()
    }

    /// Every VM's status, asked of all VMs at once (a guest agent that has not answered yet costs its timeout once,
    /// not once per VM).
    public func list() async -> [VMStatus] {
        let managed = vms
        var found: [String: VMStatus] = [:]
        await withTaskGroup(of: VMStatus.self) { group in
            for vm in managed.values { group.addTask { await vm.status() } }
            for await status in group { found[status.name] = status }
        }
        for (name, reason) in broken where found[name] == nil { found[name] = brokenStatus(name, reason) }
        return found.keys.sorted().compactMap { found[$0] }
    }

    public func status(_ name: String) async throws(ControlError) -> VMStatus {
        if vms[name] == nil, let reason = broken[name] { return brokenStatus(name, reason) }
        return await try vm(name).status()
    }

    /// What `ls`/`status` show of a VM whose folder cannot be read.
    func brokenStatus(_ name: String, _ reason: String) -> VMStatus {
        let paths = VMPaths(stateRoot: stateRoot, name: name)
        return VMStatus(name: name, state: .broken, pid: nil, accel: "-", uptimeSeconds: nil,
                        cpus: .init(online: 0, max: 0), memory: .init(sizeBytes: 0, maxBytes: 0, balloonBytes: nil),
                        disks: [], nics: [], qmpSocket: paths.qmpSocket, serialLog: paths.serialLog, restartCount: 0,
                        lastExit: nil, problem: "\(reason); corral rm \(name) removes its folder (\(paths.folder))")
    }

    public func start(_ name: String) async throws(ControlError) -> VMStatus {
        let vm = try vm(name)
        try await vm.queue.run { () async throws(ControlError) in
            if let refusal = Lifecycle.refusal(.start, vm: name, state: await vm.currentState) {
                throw ControlError.conflict(refusal)
            }
            try await self.admit(Admission.Load(await vm.config), excluding: name)
            try await self.refuseWhileDraining("\(name)'s start")
            try await self.claimOwnership(name)
            try await vm.launch(paused: false)
        }
        await publishHA(name, await vm.config)
        return await vm.status()
    }

    public func stop(_ name: String, timeout: Duration) async throws(ControlError) -> VMStatus {
        let vm = try vm(name)
        try await vm.queue.run { () async throws(ControlError) in try await vm.stop(timeout: timeout) }
        return await vm.status()
    }

    public func kill(_ name: String) async throws(ControlError) -> VMStatus {
        let vm = try vm(name)
        try await vm.queue.run { () async throws(ControlError) in try await vm.kill() }
        return await vm.status()
    }

    public func remove(_ name: String, force: Bool, volumes: VolumeDisposition?) async throws(ControlError) {
        if vms[name] == nil, broken[name] != nil {
            let folder = VMPaths(stateRoot: stateRoot, name: name).folder
            // A process whose command line names this folder is provably its QEMU: refused, or with --force killed.
            let users = Self.processes(mentioning: folder + "/")
            if !users.isEmpty {
                guard force else {
                    throw .conflict("a QEMU still uses \(folder) (pid \(users.map(String.init).joined(separator: ", "))); "
                        + "corral rm --force \(name) kills it")
                }
                for pid in users { _ = Glibc.kill(pid, SIGKILL) }
            }
            broken[name] = nil
            FileOps.removeTree(folder)
            return
        }
        let vm = try vm(name)
        let managed = FileOps.exists(vm.paths.folder + "/disks")
            ? ((try? FileManager.default.contentsOfDirectory(atPath: vm.paths.folder + "/disks")) ?? []).sorted() : []
        if !managed.isEmpty, volumes == nil {
            throw .conflict("\(name) has managed volumes (\(managed.joined(separator: ", "))): corral rm \(name) "
                + "--delete-volumes deletes them with it, --keep-volumes keeps them in \(stateRoot)/volumes/\(name)/")
        }
        try await vm.queue.run { () async throws(ControlError) in
            let state = await vm.currentState
            if Lifecycle.refusal(.remove, vm: name, state: state) != nil {
                guard force else { throw ControlError.conflict(Lifecycle.refusal(.remove, vm: name, state: state)!) }
                try await vm.kill()
            }
            await vm.markRemoved()
        }
        guard vms[name] === vm else { return }
        vms[name] = nil
        uids[name] = nil
        if volumes == .keep, !managed.isEmpty, let failure = keepVolumes(of: name, from: vm.paths.folder + "/disks") {
            // Nothing is deleted: the folder stays (the next daemon start lists it) and the caller is told why.
            await unpublishHA(name)
            await releaseOwnership(name)
            throw .internalError("\(name) is removed but its volumes could not be kept (\(failure)); they are still "
                + "in \(vm.paths.folder)/disks")
        }
        FileOps.removeTree(vm.paths.folder)
        await unpublishHA(name)
        await releaseOwnership(name)
    }

    /// Moves a removed VM's managed volumes to `STATE/volumes/NAME/` (a second removal of the same name gets
    /// `NAME-2`, `NAME-3`…: nothing kept is overwritten).
    private func keepVolumes(of name: String, from folder: String) -> String? {
        var target = stateRoot + "/volumes/" + name
        var suffix = 2
        while FileOps.exists(target) {
            target = stateRoot + "/volumes/\(name)-\(suffix)"
            suffix += 1
        }
        do {
            try FileOps.makeFolder(stateRoot + "/volumes")
            guard rename(folder, target) == 0 else {
                throw FileOps.Failure(operation: "rename", path: folder, errno: errno)
            }
        } catch {
            logger.error("cannot keep managed volumes", metadata: ["vm": "\(name)", "error": "\(error)"])
            return "\(error)"
        }
        logger.info("managed volumes kept", metadata: ["vm": "\(name)", "folder": "\(target)"])
        return nil
    }

    public func pause(_ name: String) async throws(ControlError) -> VMStatus {
        let vm = try vm(name)
        try await vm.queue.run { () async throws(ControlError) in try await vm.pause() }
        return await vm.status()
    }

    public func resume(_ name: String) async throws(ControlError) -> VMStatus {
        let vm = try vm(name)
        try await vm.queue.run { () async throws(ControlError) in try await vm.resume() }
        return await vm.status()
    }

    public func qmp(_ name: String, command: String, arguments: JSONObject?) async throws(ControlError) -> JSONValue {
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.qmp(command, arguments) }
    }

    public func screenshot(_ name: String) async throws(ControlError) -> [UInt8] {
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.screenshot() }
    }

    public func serialLog(_ name: String) async throws(ControlError) -> String {
        try vm(name).paths.serialLog
    }

    public func events(vm: String?, history: Int, follow: Bool) async -> AsyncStream<CorralEvent> {
        await hub.subscribe(vm: vm, history: history, follow: follow)
    }

    // MARK: Helpers

    /// Runs `body` on the named VM inside its operation queue, then returns its status.
    func queued(_ name: String, _ body: @escaping @Sendable (ManagedVM) async throws(ControlError) -> Void)
        async throws(ControlError) -> VMStatus
    {
        let vm = try vm(name)
        try await vm.queue.run { () async throws(ControlError) in try await body(vm) }
        return await vm.status()
    }

    func vm(_ name: String) throws(ControlError) -> ManagedVM {
        if vms[name] == nil, let reason = broken[name] {
            throw .conflict("\(name) is broken: \(reason); corral rm \(name) removes its folder")
        }
        guard let vm = vms[name] else {
            throw .notFound("no VM named \(name)\(vms.isEmpty ? "" : " (known: \(vms.keys.sorted().joined(separator: ", ")))")")
        }
        return vm
    }
}

extension VMManager {
    /// Pids whose command line contains `text` (/proc), this process excluded.
    static func processes(mentioning text: String) -> [Int32] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
            .filter { $0 != me && VMLauncher.commandLine(of: $0).contains(text) }
    }
}

/// Why a VM's state folder cannot be used, in words.
struct StateFileProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let problem as StateFileProblem: return problem.description
        case let decoding as DecodingError:
            switch decoding {
            case .dataCorrupted(let context):
                return "a state file is not valid JSON (\(context.underlyingError.map { "\($0)" } ?? context.debugDescription))"
            case .keyNotFound(let key, _): return "a state file lacks '\(key.stringValue)'"
            case .typeMismatch(_, let context), .valueNotFound(_, let context):
                return "a state file has a wrong value at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
            @unknown default: return "a state file cannot be read: \(decoding)"
            }
        default: return "a state file cannot be read: \(error)"
        }
    }
}
