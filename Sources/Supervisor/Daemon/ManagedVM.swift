import CorralCore
import Foundation
import CorralModel
import JSON
import Logging
import Profiles
import QEMUCommand
import QMP

/// One supervised VM: its record and configuration, the QEMU process and QMP connection
/// while it runs, exit monitoring and the restart policy. Every operation goes through
/// `queue`, so operations on one VM never interleave.
public actor ManagedVM {
    public nonisolated let name: String
    nonisolated let paths: VMPaths
    nonisolated let queue = OperationQueue()
    private let store: VMStore
    let hub: EventHub
    let launcher: VMLauncher
    private let restartEngine: RestartPolicyEngine
    let unplugTimeout: Duration
    let logger: Logger

    var record: VMRecord
    var config: LiveConfig
    var running: RunningVM?
    /// Devices whose unplug the guest has not confirmed yet, by device id or QOM path.
    var pendingUnplugs: [String: PendingUnplug] = [:]
    /// Per-VM cgroups (nil when the host has none we can use).
    let cgroups: CGroupManager?
    /// The balloon target last sent to QEMU (by `corral balloon` or the policy).
    var balloonTarget: UInt64?
    /// Called when an incoming VM's QEMU dies before it was committed (the manager forgets it).
    var onIncomingLost: (@Sendable (String) async -> Void)?
    /// Set while this VM is being migrated away (source side).
    var outgoing: OutgoingMigration?
    /// A vCPU was unplugged from the current QEMU (see `ManagedVM.plugAfterCPUUnplugProblem`).
    var cpuUnpluggedThisRun = false
    /// Bumped for every QEMU started or adopted, so a late exit report of an old one is ignored.
    var generation = 0
    private var monitor: Task<Void, Never>?
    private var pump: Task<Void, Never>?
    /// Set by stop/kill/remove before they end QEMU: the coming exit is not a failure.
    var exitRequested = false
    /// The guest powered off on its own (QMP SHUTDOWN, guest=true).
    private var guestShutdown = false
    var state: VMState

    init(record: VMRecord, config: LiveConfig, paths: VMPaths, hub: EventHub, launcher: VMLauncher,
         restartEngine: RestartPolicyEngine, unplugTimeout: Duration, cgroups: CGroupManager? = nil, logger: Logger) {
        self.cgroups = cgroups
        self.name = record.name
        self.paths = paths
        self.store = VMStore(paths: paths)
        self.record = record
        self.config = config
        self.state = record.state == .running || record.state == .paused ? .stopped : record.state
        self.hub = hub
        self.launcher = launcher
        self.restartEngine = restartEngine
        self.unplugTimeout = unplugTimeout
        var logger = logger
        logger[metadataKey: "vm"] = "\(record.name)"
        self.logger = logger
    }

    var currentState: VMState { state }

    // MARK: Operations (callers run these inside `queue`)

    /// Launches QEMU. On failure the VM is left as it was (stopped/crashed) and nothing runs.
    /// `configStaged`: `up` has just staged live.json with this config.
    func launch(paused: Bool, incoming: String? = nil, configStaged: Bool = false) async throws(ControlError) {
        let previous = state
        state = .starting
        var request = StartRequest(config: config, accel: record.accel, paths: paths, startPaused: paused,
                                   incoming: incoming)
        let expected: VMState = incoming != nil ? .incoming : paused ? .paused : .running
        request.onSpawn = spawnHook(expecting: expected)
        request.liveConfigWritten = configStaged
        let vm: RunningVM
        do {
            vm = try await launcher.start(request)
        } catch {
            state = previous
            record.lastExit = "start failed: \(error.reason)"
            persist()
            await hub.publish(vm: name, .startFailed, ["reason": .string(error.reason)])
            throw .startFailed(reason: error.description.split(separator: "\n").first.map(String.init) ?? error.reason,
                               qemuOutput: error.qemuOutput)
        }
        let status = (try? await vm.qmp.queryStatus())?.status
        adopt(vm, state: incoming != nil ? .incoming : status == "running" ? .running : .paused)
        record.startedAt = vm.startedAt
        record.desiredRunning = true
        // The spawn hook wrote this very record while QEMU started, unless QEMU came up in another state or a
        // write in between (or the hook's) failed.
        if (try? store.loadRecord()) != record { persist() }
        await applyTuning()
        await hub.publish(vm: name, .started, ["pid": .int(Int64(vm.process.pid))])
    }

    /// Takes over a QEMU that survived a daemon restart. False when it is not ours or QMP does not answer.
    ///
    /// The pid comes from `vm.json`, or else from QEMU's own pid file: a daemon that died between spawning QEMU
    /// and the spawn hook's durable write of its pid left a running QEMU that only the pid file names.
    func reattach() async -> Bool {
        let recordedPid = record.pid
        guard let pid = recordedPid ?? Self.pidFromFile(paths.pidFile), let process = ProcessHandle.adopt(pid: pid),
            Self.commandLine(of: pid).contains(paths.qmpSocket)
        else { return false }
        let transcript = TranscriptWriter(path: paths.transcript)
        guard let qmp = try? await QMPClient.connect(
            socketPath: paths.qmpSocket, connectTimeout: .seconds(5), logger: logger,
            transcript: transcript.map { writer in
                { @Sendable (entry: QMPTranscriptEntry) -> Void in
                    writer.append(direction: entry.direction.rawValue, text: entry.text,
                                  at: Date(timeIntervalSince1970: entry.time))
                }
            })
        else { return false }
        let status = (try? await qmp.queryStatus())?.status
        let startedAt = record.startedAt ?? Self.modificationTime(paths.pidFile) ?? Date().timeIntervalSince1970
        let vm = RunningVM(name: name, process: process, qmp: qmp, paths: paths, accel: record.accel, argv: [],
                           startedAt: startedAt)
        adopt(vm, state: status == "paused" || status == "prelaunch" ? .paused : .running)
        if recordedPid == nil {
            // Found through the pid file: the start had got that far, so the VM is meant to run, since QEMU
            // wrote the file.
            record.desiredRunning = true
            record.startedAt = startedAt
            logger.warning("took over a QEMU the daemon had started but not recorded", metadata: ["pid": "\(pid)"])
        }
        persist()
        cgroupPlacement()(pid)
        await applyTuning()
        await hub.publish(vm: name, .reattached, ["pid": .int(Int64(pid))])
        return true
    }

    func stop(timeout: Duration) async throws(ControlError) {
        try check(.stop)
        guard let vm = running else { return }
        exitRequested = true
        let (_, method) = await VMShutdown.stop(vm, timeout: timeout)
        let note = "stopped by corral (\(method.rawValue))"
        await finishExit(generation: generation, status: nil, note: note)
        // The exit monitor may have cleaned up first; either way, say how it stopped.
        record.lastExit = note
        persist()
    }

    func kill() async throws(ControlError) {
        try check(.kill)
        guard let vm = running else { return }
        exitRequested = true
        vm.process.signal(SIGKILL)
        _ = await vm.process.waitForExit(timeout: .seconds(10))
        await finishExit(generation: generation, status: nil, note: "killed by corral")
    }

    func pause() async throws(ControlError) {
        try check(.pause)
        do { try await running?.qmp.stop() } catch { throw .qmpFailed(error) }
        state = .paused
    }

    func resume() async throws(ControlError) {
        try check(.resume)
        do { try await running?.qmp.cont() } catch { throw .qmpFailed(error) }
        state = .running
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
        monitor?.cancel()
        pump?.cancel()
        monitor = nil
        pump = nil
        if let vm = running { await vm.qmp.close() }
        running = nil
    }

    func markRemoved() async {
        await detach()
        await hub.publish(vm: name, .removed)
        await hub.setLogFile(nil, for: name)
    }

    // MARK: Status

    func status() async -> VMStatus {
        let profile = config.profile
        var balloon: UInt64?
        if let vm = running, profile.memory.balloon != nil,
            let reply = try? await vm.qmp.execute("query-balloon", timeout: .seconds(2)),
            let actual = reply["actual"]?.intValue
        {
            balloon = UInt64(actual)
        }
        let disks = profile.disks + config.hotplugged.disks.map(\.disk)
        let nics = profile.nics + config.hotplugged.nics.map(\.nic)
        let now = Date().timeIntervalSince1970
        let up = running != nil && (state == .running || state == .paused)
        return VMStatus(
            name: name, state: state, pid: running?.process.pid, accel: record.accel.rawValue,
            uptimeSeconds: up ? record.startedAt.map { max(0, now - $0) } : nil,
            cpus: .init(online: config.hotplugged.onlineCPUs ?? profile.cpu.count, max: profile.cpu.max),
            memory: .init(
                sizeBytes: profile.memory.size.bytes + config.hotplugged.memory.reduce(0) { $0 + $1.size.bytes },
                maxBytes: (profile.memory.max ?? profile.memory.size).bytes, balloonBytes: balloon),
            disks: disks.map {
                .init(id: $0.id, file: $0.file, format: $0.format.rawValue, readonly: $0.readonly, bus: $0.bus.rawValue)
            },
            nics: nics.map {
                .init(id: $0.id, mac: $0.mac ?? DeviceProps.stableMAC(vmName: name, nicID: $0.id), mode: $0.mode.rawValue)
            },
            qmpSocket: paths.qmpSocket, serialLog: paths.serialLog,
            restartCount: record.restartCount, lastExit: record.lastExit,
            unplugPending: pendingUnplugs.keys.sorted(),
            migration: outgoing.map { OutgoingMigrationInfo(to: $0.destination, progress: $0.progress) })
    }

    // MARK: Exit handling

    /// Decides what a VM that died while the daemon was away becomes.
    func recoverAfterDaemonRestart() async -> RestartDecision {
        let cause = ExitCause.failure("QEMU exited while the daemon was not running")
        record.pid = nil
        record.lastExit = "QEMU exited while the daemon was not running"
        return await decideAfterExit(cause)
    }

    private func adopt(_ vm: RunningVM, state newState: VMState) {
        generation += 1
        let current = generation
        running = vm
        state = newState
        cpuUnpluggedThisRun = false
        exitRequested = false
        guestShutdown = false
        record.pid = vm.process.pid
        record.state = newState
        let events = vm.qmp.events()
        pump = Task { [weak self] in
            for await event in events {
                await self?.handle(event)
            }
        }
        monitor = Task { [weak self] in
            guard let status = await vm.process.waitForExitOrCancel() else { return }
            await self?.processExited(generation: current, status: status)
        }
    }

    private func handle(_ event: QMPEvent) async {
        await hub.publish(CorralEvent(time: event.timestamp, vm: name, name: .qmp(event.name),
                                      data: event.data.isNull ? nil : event.data))
        if event.name == "SHUTDOWN", event.data["guest"]?.boolValue == true {
            guestShutdown = true
        }
        if event.name == "DEVICE_DELETED",
            let device = pendingUnplugs.keys.first(where: { HotplugExecutor.event(event, confirmsDeletionOf: $0) })
        {
            await completePendingUnplug(device)
        }
        if let next = Lifecycle.state(after: event.name, from: state) {
            state = next
            record.state = next
            persist()
        }
    }

    /// Called by the monitor when QEMU's process ends, whoever caused it.
    private func processExited(generation exited: Int, status: ExitStatus) async {
        guard exited == generation, running != nil else { return }
        if state == .incoming {
            // A destination that lost its stream: nothing to restart, nothing to keep.
            exitRequested = true
            await finishExit(generation: exited, status: status, note: "incoming migration failed (QEMU \(status))")
            await onIncomingLost?(name)
            return
        }
        let cause: ExitCause
        if exitRequested {
            cause = .requested
        } else if guestShutdown {
            cause = .guestShutdown
        } else {
            cause = .failure("QEMU \(status)")
        }
        let note: String
        switch cause {
        case .requested: note = "stopped by corral"
        case .guestShutdown: note = "guest powered off"
        case .failure(let why): note = why
        }
        await finishExit(generation: exited, status: status, note: note)
        if exitRequested { return }
        let decision = await decideAfterExit(cause)
        if case .restart(let delay) = decision {
            let current = generation
            Task { [weak self] in
                try? await Task.sleep(for: delay)
                guard let self else { return }
                await self.queue.run { await self.restartIfStillDown(expectedGeneration: current) }
            }
        }
    }

    /// Cleans up after QEMU ended: QMP closed, socket and pid file removed, state recorded.
    func finishExit(generation exited: Int, status: ExitStatus?, note: String) async {
        guard exited == generation, let vm = running else { return }
        // Every state change happens before the first suspension, so a concurrent stop/kill
        // resuming in between sees a finished exit and its own note is the last word.
        running = nil
        pendingUnplugs = [:]
        balloonTarget = nil
        monitor?.cancel()
        monitor = nil
        pump = nil
        FileOps.remove(paths.qmpSocket)
        FileOps.remove(paths.pidFile)
        state = .stopped
        record.state = .stopped
        record.pid = nil
        record.startedAt = nil
        record.lastExit = note
        if exitRequested { record.desiredRunning = false }
        persist()
        removeCGroup()
        logger.info("qemu exited", metadata: ["note": "\(note)"])
        await vm.qmp.close()
        await hub.publish(vm: name, .stopped, ["reason": .string(note)])
    }

    private func decideAfterExit(_ cause: ExitCause) async -> RestartDecision {
        let now = Date().timeIntervalSince1970
        let decision = restartEngine.decide(
            policy: config.profile.restart, cause: cause, recentRestarts: record.restartTimes, now: now)
        switch decision {
        case .stayDown(let final):
            state = final
            record.state = final
            record.desiredRunning = false
            if final == .crashed { await hub.publish(vm: name, .crashed, ["reason": .string(record.lastExit ?? "")]) }
        case .giveUp(let why):
            state = .crashed
            record.state = .crashed
            record.desiredRunning = false
            record.lastExit = (record.lastExit.map { $0 + "; " } ?? "") + why
            await hub.publish(vm: name, .crashed, ["reason": .string(why)])
        case .restart:
            record.restartTimes = record.restartTimes.filter { now - $0 < restartEngine.window } + [now]
        }
        persist()
        return decision
    }

    /// The delayed half of an automatic restart; skipped when someone started or removed the VM meanwhile.
    func restartIfStillDown(expectedGeneration: Int) async {
        guard generation == expectedGeneration, running == nil, state == .stopped || state == .crashed else { return }
        do {
            try await launch(paused: false)
            record.restartCount += 1
            persist()
            await hub.publish(vm: name, .restarted, ["restartCount": .int(Int64(record.restartCount))])
        } catch {
            logger.error("automatic restart failed", metadata: ["error": "\(error)"])
            let decision = await decideAfterExit(.failure(error.message))
            if case .restart(let delay) = decision {
                let current = generation
                Task { [weak self] in
                    try? await Task.sleep(for: delay)
                    guard let self else { return }
                    await self.queue.run { await self.restartIfStillDown(expectedGeneration: current) }
                }
            }
        }
    }

    // MARK: Helpers

    /// What runs as soon as QEMU is spawned, while it starts: `vm.json` with its pid (durably, with the `live.json`
    /// that `up` staged), so a daemon that dies from here on finds this QEMU by its record; then its cgroup (a move
    /// takes ~10 ms on cgroup v1, so it goes second).
    private func spawnHook(expecting expected: VMState) -> @Sendable (Int32, Double) -> Void {
        let place = cgroupPlacement()
        let store = store
        let record = record
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
        if let refusal = Lifecycle.refusal(operation, vm: name, state: state) { throw .conflict(refusal) }
    }

    func persist() {
        do {
            try store.save(record)
        } catch {
            logger.error("cannot save vm.json", metadata: ["error": "\(error)"])
        }
    }

    /// The pid QEMU wrote with `-pidfile`; nil when there is none.
    static func pidFromFile(_ path: String) -> Int32? {
        guard let text = (try? FileOps.readText(path)) ?? nil else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Seconds since 1970 of a file's last change; nil when it does not exist.
    static func modificationTime(_ path: String) -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    static func commandLine(of pid: Int32) -> String {
        guard let bytes = (try? FileOps.read("/proc/\(pid)/cmdline")) ?? nil else { return "" }
        return String(decoding: bytes.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }
}
