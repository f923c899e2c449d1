import CorralControl
import CorralCore
import Foundation
import CorralModel
import GuestAgent
import JSON
import Logging
import Profiles
import QEMUCommand
import QMP

/// Everything that exists only while one QEMU runs: created when it is adopted (started, reattached), dropped when
/// it exits. Nothing here outlives its QEMU by accident.
struct RunSession: Sendable {
    var vm: RunningVM
    /// The lifecycle generation this run becomes once the lifecycle has taken its start.
    var generation: Int
    /// Reads the QEMU's events (QMP) into the actor.
    var pump: Task<Void, Never>
    /// Waits for the QEMU process to end.
    var monitor: Task<Void, Never>
    /// Devices whose unplug the guest has not confirmed yet, by device id or QOM path.
    var pendingUnplugs: [String: PendingUnplug] = [:]
    /// The client attached to the serial console (`corral console --attach`).
    var console: ConsoleSession?
    /// The balloon target last sent to QEMU (by `corral balloon` or the policy).
    var balloonTarget: UInt64?
    /// A vCPU was unplugged from this QEMU (see `ManagedVM.checkPlugAllowed`).
    var cpuUnplugged = false
    /// The QMP connection ended while QEMU still ran (QEMU closed it or sent what corral refuses to read).
    var monitorLost = false
    /// Set while this VM is being migrated away (source side).
    var outgoing: ManagedVM.OutgoingMigration?
    /// The guest agent's last answer (profiles with `agent: true`).
    var agent: GuestAgentCache?
}

/// One supervised VM: its record and configuration, the QEMU process and QMP connection while it runs, exit
/// monitoring and the restart policy. The lifecycle decisions are `VMLifecycle`'s (pure); this actor performs
/// them. Every operation goes through `queue`, so operations on one VM never interleave.
public actor ManagedVM {
    public nonisolated let name: String
    nonisolated let paths: VMPaths
    nonisolated let queue = OperationQueue()
    private let store: VMStore
    let hub: EventHub
    let launcher: any VMLaunching
    let unplugTimeout: Duration
    let logger: Logger
    /// Per-VM cgroups (nil when the host has none we can use).
    let cgroups: CGroupManager?
    /// The device cgroup a confined QEMU joins before exec (nil when the host has none).
    let deviceCGroup: DeviceCGroup?
    /// Reaches the guest agent behind a socket path.
    let guestAgent: @Sendable (String) -> any GuestAgent

    /// The fields of `vm.json` that are not the lifecycle's (name, profile, accel, creation, auto balloon, the
    /// current QEMU's pid and start); `persistedRecord` adds the lifecycle's.
    var record: VMRecord
    var config: LiveConfig
    private(set) var lifecycle: VMLifecycle
    private(set) var run: RunSession?
    /// Called when an incoming VM's QEMU dies before it was committed (the manager forgets it).
    var onIncomingLost: (@Sendable (String) async -> Void)?
    /// Called when a migration whose owner was unknown turns out to have completed (the manager forgets the VM).
    var onMigratedAway: (@Sendable (String) async -> Void)?
    /// Asks the destination again after a migration left the owner unknown.
    var resolver: Task<Void, Never>?
    /// Settles an incoming migration its source never commits (`DaemonOptions.incomingDeadline`).
    var incomingDeadline: Task<Void, Never>?
    /// Set when an incoming copy outlived its deadline complete but uncommitted: shown as the VM's `problem`.
    var uncommittedIncoming: String?
    /// The timer of a pending automatic restart.
    private var restartTimer: Task<Void, Never>?
    /// Binds and releases this VM's host PCI devices (the daemon's, shared by its VMs).
    var hostDeviceClaims: HostDeviceClaims?
    /// What was last written to `vm.json` (a write that would not change it is skipped).
    private var lastPersisted: VMRecord?
    /// Set by `markRemoved`: the folder is going or gone, and nothing may write into it again.
    private var removed = false
    /// The guest moved to another host with its (shared) disks: they are not given back when this QEMU exits.
    var disksWentWithMigration = false

    /// Another host runs this VM now (HA took it over while this host was cut off): the disks are that host's.
    func loseToAnotherHost() { disksWentWithMigration = true }

    init(record: VMRecord, config: LiveConfig, paths: VMPaths, hub: EventHub, launcher: any VMLaunching,
         restartEngine: RestartPolicyEngine, unplugTimeout: Duration, cgroups: CGroupManager? = nil,
         deviceCGroup: DeviceCGroup? = nil,
         guestAgent: @escaping @Sendable (String) -> any GuestAgent = { GuestAgentClient(socketPath: $0) },
         logger: Logger) {
        self.cgroups = cgroups
        self.deviceCGroup = deviceCGroup
        self.guestAgent = guestAgent
        self.name = record.name
        self.paths = paths
        self.store = VMStore(paths: paths)
        self.record = record
        self.config = config
        self.lifecycle = VMLifecycle(recorded: record.state, desiredRunning: record.desiredRunning,
                                     lastExit: record.lastExit, restartCount: record.restartCount,
                                     restartTimes: record.restartTimes, policy: config.profile.restart,
                                     engine: restartEngine)
        self.hub = hub
        self.launcher = launcher
        self.unplugTimeout = unplugTimeout
        var logger = logger
        logger[metadataKey: "vm"] = "\(record.name)"
        self.logger = logger
    }

    var currentState: VMState { lifecycle.vmState }
    var state: VMState { lifecycle.vmState }
    var running: RunningVM? { run?.vm }
    var pendingUnplugs: [String: PendingUnplug] {
        get { run?.pendingUnplugs ?? [:] }
        set { run?.pendingUnplugs = newValue }
    }
    var balloonTarget: UInt64? {
        get { run?.balloonTarget }
        set { run?.balloonTarget = newValue }
    }
    var consoleSession: ConsoleSession? {
        get { run?.console }
        set { run?.console = newValue }
    }
    var cpuUnpluggedThisRun: Bool {
        get { run?.cpuUnplugged ?? false }
        set { run?.cpuUnplugged = newValue }
    }
    var outgoing: OutgoingMigration? {
        get { run?.outgoing }
        set { run?.outgoing = newValue }
    }

    // MARK: Operations (callers run these inside `queue`)

    /// Launches QEMU. On failure the VM is left as it was (stopped/crashed) and nothing runs.
    /// `configStaged`: `up` has just staged live.json with this config.
    func launch(paused: Bool, incoming: String? = nil, configStaged: Bool = false) async throws(ControlError) {
        try await launch(incoming != nil ? .incoming : paused ? .paused : .run, incoming: incoming,
                         configStaged: configStaged)
    }

    private func launch(_ kind: StartKind, incoming: String? = nil, configStaged: Bool = false)
        async throws(ControlError)
    {
        restartTimer?.cancel()
        restartTimer = nil
        // An automatic restart is already `starting`: the lifecycle's `restartDue` put it there.
        if kind != .restart { await feed(.start(kind)) }
        // A migration destination starts paused too (`-S`): the guest runs there only at the commit.
        var request = StartRequest(config: config, accel: record.accel, paths: paths,
                                   startPaused: kind == .paused || kind == .incoming, incoming: incoming)
        request.onSpawn = spawnHook(expecting: lifecycle.recordedState)
        request.liveConfigWritten = configStaged
        if let cloudInit = config.profile.cloudInit {
            // Built afresh at every start (the files it names may have changed; the instance-id follows them).
            do {
                let instanceID = try await CloudInitSeedWriter().write(cloudInit, vmName: name, to: paths.cloudInitSeed)
                request.seedImage = paths.cloudInitSeed
                logger.info("cloud-init seed built", metadata: ["instance-id": "\(instanceID)"])
            } catch {
                await feed(.startFailed(reason: error.description))
                throw .refused(error.description)
            }
        }
        var vfioRules: [DeviceRule] = []
        if let claims = hostDeviceClaims, hostDevices.contains(where: HostDeviceClaims.needsBinding) {
            // Left bound by a QEMU that ended while no daemon watched: given back first, then bound afresh.
            await releaseHostDevices()
            do {
                let records = try await claims.acquire(vm: name, devices: hostDevices,
                                                       nics: config.profile.nics + config.hotplugged.nics.map(\.nic))
                record.boundDevices = records
                request.hostDevices = HostDeviceClaims.addresses(hostDevices, records)
                // An unprivileged QEMU opens its groups' /dev/vfio nodes itself: they become its uid's.
                vfioRules = await claims.handOver(records, to: record.uid)
            } catch {
                await feed(.startFailed(reason: error.message))
                throw error
            }
        }
        request.confinement = confinement
        if request.confinement != nil, let deviceCGroup {
            do {
                let procs = try deviceCGroup.prepare(vm: name, rules: DeviceRules.allowed(accel: record.accel) + vfioRules)
                request.confinement?.joinCGroups = [procs]
            } catch {
                logger.warning("QEMU starts without device rules", metadata: ["error": "\(error)"])
            }
        }
        // A migration destination takes the disks at the commit: until then the source runs with them.
        request.claimDisks = kind != .incoming
        disksWentWithMigration = false
        let vm: RunningVM
        do {
            vm = try await launcher.start(request)
        } catch {
            await releaseHostDevices()
            deviceCGroup?.remove(vm: name)
            await feed(.startFailed(reason: error.reason))
            throw .startFailed(reason: error.description.split(separator: "\n").first.map(String.init) ?? error.reason,
                               qemuOutput: error.qemuOutput)
        }
        // Events are read from here on (QMP drops what no one reads).
        adopt(vm)
        let status = (try? await vm.qmp.queryStatus())?.status
        record.pid = vm.process.pid
        record.startedAt = vm.startedAt
        // The spawn hook wrote this very record while QEMU started (so the persist below is skipped unless
        // QEMU came up in another state or a write failed).
        lastPersisted = try? store.loadRecord()
        await feed(.started(pid: vm.process.pid, qemuStatus: status))
        await applyTuning()
    }

    /// Takes over a QEMU that survived a daemon restart. False when it is not ours or QMP does not answer.
    func reattach() async -> Bool {
        guard let vm = await launcher.reattach(name: name, recordedPid: record.pid, paths: paths, accel: record.accel,
                                               recordedStart: record.startedAt)
        else { return false }
        if record.pid == nil {
            logger.warning("took over a QEMU the daemon had started but not recorded",
                           metadata: ["pid": "\(vm.process.pid)"])
        }
        let status = (try? await vm.qmp.queryStatus())?.status
        record.pid = vm.process.pid
        record.startedAt = vm.startedAt
        adopt(vm)
        await feed(.reattached(pid: vm.process.pid, qemuStatus: status))
        cgroupPlacement()(vm.process.pid)
        await applyTuning()
        return true
    }

    /// The recorded QEMU is gone: it died while no daemon watched. The restart policy decides.
    func recoverAfterDaemonRestart() async {
        releaseNetwork()
        record.pid = nil
        record.startedAt = nil
        await feed(.foundDead)
    }

    func stop(timeout: Duration) async throws(ControlError) {
        try check(.stop)
        guard let vm = running else { return }
        await feed(.endRequested(note: "stopped by corral"))
        let (status, method) = await VMShutdown.stop(vm, timeout: timeout)
        await processEnded(vm, status: status)
        // The exit monitor may have noticed first; either way, say how it stopped.
        await feed(.exitExplained(note: "stopped by corral (\(method.rawValue))"))
    }

    func kill() async throws(ControlError) {
        try check(.kill)
        guard running != nil else { return }
        await end(note: "killed by corral")
    }

    /// Ends the current QEMU with SIGKILL, on purpose: `note` becomes the VM's last exit.
    func end(note: String) async {
        guard let vm = running else { return }
        await feed(.endRequested(note: note))
        vm.process.signal(SIGKILL)
        let status = await vm.process.waitForExit(timeout: .seconds(10)) ?? .unknown
        await processEnded(vm, status: status)
    }

    func pause() async throws(ControlError) {
        try check(.pause)
        do { try await running?.qmp.stop() } catch { throw .qmpFailed(error) }
        await feed(.pausedByRequest)
    }

    func resume() async throws(ControlError) {
        try check(.resume)
        do { try await running?.qmp.cont() } catch { throw .qmpFailed(error) }
        await feed(.resumedByRequest)
    }

    func qmp(_ command: String, _ arguments: JSONObject?) async throws(ControlError) -> JSONValue {
        try check(.qmp)
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        do {
            return try await vm.qmp.execute(command, arguments)
        } catch {
            throw .qmpFailed(error)
        }
    }

    /// Stops supervising without touching QEMU (daemon shutdown).
    func detach() async {
        restartTimer?.cancel()
        restartTimer = nil
        resolver?.cancel()
        resolver = nil
        guard let session = run else { return }
        run = nil
        session.monitor.cancel()
        session.pump.cancel()
        await session.agent?.close()
        await session.vm.qmp.close()
    }

    func markRemoved() async {
        removed = true
        incomingDeadline?.cancel()
        incomingDeadline = nil
        await detach()
        await hub.publish(vm: name, .removed)
        await hub.setLogFile(nil, for: name)
    }

    // MARK: The lifecycle

    /// Feeds one observation to the lifecycle and performs what it asks, in order.
    func feed(_ input: VMLifecycle.Input) async {
        let actions: [VMLifecycle.Action]
        do {
            actions = try lifecycle.handle(input, now: Date().timeIntervalSince1970)
        } catch {
            logger.error("ignored an observation the lifecycle does not expect", metadata: ["error": "\(error)"])
            return
        }
        for action in actions {
            switch action {
            case .persist:
                persist()
            case .publish(let event, let data):
                await hub.publish(vm: name, event, data)
            case .endRun(let note):
                await endRun(note: note)
            case .scheduleRestart(let delay, let generation):
                scheduleRestart(after: delay, generation: generation)
            case .relaunch:
                do { try await launch(.restart) } catch {
                    logger.error("automatic restart failed", metadata: ["error": "\(error)"])
                }
            case .forgetIncoming:
                await onIncomingLost?(name)
            }
        }
    }

    private func adopt(_ vm: RunningVM) {
        let generation = lifecycle.generation + 1
        let events = vm.qmp.events(nil)
        let pump = Task { [weak self] in
            for await event in events {
                await self?.handle(event, generation: generation)
            }
            await self?.monitorEnded(generation: generation)
        }
        let monitor = Task { [weak self] in
            guard let status = await vm.process.waitForExitOrCancel() else { return }
            await self?.processExited(generation: generation, status: status)
        }
        run = RunSession(vm: vm, generation: generation, pump: pump, monitor: monitor,
                         agent: config.profile.agent ? GuestAgentCache(agent: guestAgent(paths.agentSocket)) : nil)
    }

    private func handle(_ event: QMPEvent, generation: Int) async {
        // An event of this run reaches the history even before the lifecycle has taken the start (a guest can
        // negotiate a device while the daemon still finishes the start); only the lifecycle waits for it.
        guard run?.generation == generation else { return }
        await hub.publish(CorralEvent(time: event.timestamp, vm: name, name: .qmp(event.name),
                                      data: event.data.isNull ? nil : event.data))
        guard generation == lifecycle.generation else { return }
        if event.name == "DEVICE_DELETED",
            let device = pendingUnplugs.keys.first(where: { HotplugExecutor.event(event, confirmsDeletionOf: $0) })
        {
            await completePendingUnplug(device)
        }
        await feed(.qmpEvent(name: event.name, guest: event.data["guest"]?.boolValue))
    }

    /// The event stream ended: QEMU exited (the exit monitor handles that), or the QMP connection was dropped while
    /// QEMU runs (a misbehaving QEMU: an endless line, malformed data). The VM is marked; nothing else is touched.
    private func monitorEnded(generation: Int) async {
        guard generation == lifecycle.generation, let session = run, !Task.isCancelled else { return }
        // Give a QEMU that is exiting the moment to be seen exiting.
        if await session.vm.process.waitForExit(timeout: .milliseconds(500)) != nil { return }
        guard generation == lifecycle.generation, run != nil else { return }
        run?.monitorLost = true
        logger.error("QMP monitor lost while QEMU runs", metadata: ["pid": "\(session.vm.process.pid)"])
    }

    /// The exit monitor: QEMU's process ended, whoever caused it.
    private func processExited(generation: Int, status: ExitStatus) async {
        await feed(.exited(generation: generation, status: "\(status)"))
    }

    /// An operation saw `vm`'s QEMU end (stop, kill): the same observation as the monitor's, whichever comes first.
    func processEnded(_ vm: RunningVM, status: ExitStatus) async {
        guard let current = running, current.process.pid == vm.process.pid else { return }
        await feed(.exited(generation: lifecycle.generation, status: "\(status)"))
    }

    /// Cleans up after QEMU ended: QMP closed, socket and pid file removed, cgroup removed, the run dropped.
    private func endRun(note: String) async {
        guard let session = run else { return }
        run = nil
        session.monitor.cancel()
        session.pump.cancel()
        paths.removeSockets()
        FileOps.remove(paths.pidFile)
        await session.agent?.close()
        releaseNetwork()
        await releaseHostDevices()
        if !disksWentWithMigration { releaseDisks() }
        if record.uid != nil { TLSHandOver.remove(pid: session.vm.process.pid) }
        record.pid = nil
        record.startedAt = nil
        removeCGroup()
        logger.info("qemu exited", metadata: ["note": "\(note)"])
        await session.vm.qmp.close()
    }

    /// The device rules in force for this VM's QEMU, as `status` shows them.
    var deviceRulesSummary: String {
        guard let deviceCGroup else { return "no device cgroup on this host" }
        return deviceCGroup.summary(vm: name, allowed: DeviceRules.allowed(accel: record.accel).count)
    }

    /// How this VM's QEMU runs: as its own uid (and gid) with no other groups, except the group of /dev/kvm under
    /// KVM; memory locking only as much as the profile locks. nil: as root (`--qemu-user root`).
    var confinement: Confinement? {
        guard let uid = record.uid else { return nil }
        var groups: [UInt32] = []
        if record.accel == .kvm {
            var info = stat()
            if stat("/dev/kvm", &info) == 0 { groups.append(info.st_gid) }
        }
        let profile = config.profile
        // VFIO pins every page of guest RAM for the devices' DMA, like memory.lock.
        let pinned = memoryPinned
        let locked = pinned ? (profile.memory.max ?? profile.memory.size).bytes + (64 << 20) : 64 << 10
        // The state root (every VM's folder), the daemon's socket folder, home and temp folders are empty in QEMU's
        // mount namespace: it gets what it needs as descriptors and has no path to anything else there.
        let hidden = [paths.stateRoot, "/run/corral", "/root", "/home", "/tmp", "/var/tmp"]
        return Confinement(uid: uid, gid: uid, groups: groups, memlockBytes: locked, hiddenPaths: hidden)
    }

    /// Every disk file this VM's QEMU had, given back to its original owner (a no-op for disks it does not hold).
    func releaseDisks() {
        guard record.uid != nil else { return }
        for disk in config.allDisks {
            for file in disk.imageFiles { FileClaims.release(file, vm: name) }
        }
    }

    /// Gives every disk to this VM's uid (a migration destination at its commit).
    func claimDisks() {
        guard let uid = record.uid else { return }
        for disk in config.allDisks {
            for file in disk.imageFiles {
                do { try FileClaims.claim(file, vm: name, uid: uid, readonly: disk.readonly && file == disk.file) } catch {
                    logger.warning("cannot claim a disk", metadata: ["disk": "\(file)", "error": "\(error)"])
                }
            }
        }
    }

    /// What outlives a QEMU on the host side and must go with it: its macvtaps (its taps went with their last
    /// descriptor on their own).
    func setHostDeviceClaims(_ claims: HostDeviceClaims?) async {
        hostDeviceClaims = claims
        if let records = record.boundDevices, !records.isEmpty { await claims?.adopt(vm: name, records) }
    }

    /// Gives the host devices back to their drivers (QEMU has ended, or never started).
    func releaseHostDevices() async {
        guard let records = record.boundDevices, !records.isEmpty else { return }
        let problems = await hostDeviceClaims?.release(vm: name, records) ?? []
        for problem in problems {
            logger.error("a host device was not given back to its driver", metadata: ["problem": "\(problem)"])
        }
        record.boundDevices = nil
    }

    func releaseNetwork() {
        TapDevices.removeMacvtaps(of: TapPlan.entries(config, vhostAvailable: false))
    }

    /// The one place an automatic restart is scheduled: after `delay`, in the VM's queue, if nothing changed.
    private func scheduleRestart(after delay: Duration, generation: Int) {
        restartTimer?.cancel()
        restartTimer = Task { [weak self] in
            do { try await Task.sleep(for: delay) } catch { return }
            guard let self else { return }
            await self.restartTimerFired()
            await self.queue.run { await self.feed(.restartDue(generation: generation)) }
        }
    }

    /// The timer's task now runs the restart itself: it is no timer to cancel any more (a launch cancels a
    /// pending one, and must not cancel the very task that launches).
    private func restartTimerFired() { restartTimer = nil }

    // MARK: Helpers

    /// What runs as soon as QEMU is spawned, while it starts: `vm.json` with its pid (durably, with the `live.json`
    /// that `up` staged), so a daemon that dies from here on finds this QEMU by its record; then its cgroup (a move
    /// takes ~10 ms on cgroup v1, so it goes second).
    private func spawnHook(expecting expected: VMState) -> @Sendable (Int32, Double) -> Void {
        let place = cgroupPlacement()
        let store = store
        let record = persistedRecord
        let logger = logger
        return { pid, time in
            do {
                try store.saveSpawned(record.spawned(pid: pid, at: time, expecting: expected))
            } catch {
                logger.error("cannot save vm.json", metadata: ["error": "\(error)"])
            }
            place(pid)
        }
    }

    func check(_ operation: VMOperation) throws(ControlError) {
        if let refusal = lifecycle.refusal(operation, vm: name) { throw .conflict(refusal) }
    }

    /// `vm.json` as it follows from the lifecycle and the current QEMU.
    var persistedRecord: VMRecord {
        var out = record
        out.state = lifecycle.recordedState
        out.desiredRunning = lifecycle.desiredRunning
        out.lastExit = lifecycle.lastExit
        out.restartCount = lifecycle.restartCount
        out.restartTimes = lifecycle.restartTimes
        return out
    }

    func persist() {
        // An exit observed while the manager removes the VM (an aborted incoming migration's QEMU dying) must not
        // write vm.json back into a folder just deleted: a ghost VM would appear at the next daemon start.
        guard !removed else { return }
        let current = persistedRecord
        guard current != lastPersisted else { return }
        do {
            try store.save(current)
            lastPersisted = current
        } catch {
            logger.error("cannot save vm.json", metadata: ["error": "\(error)"])
        }
    }
}
