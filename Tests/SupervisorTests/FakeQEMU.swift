import CorralCore
import Foundation
import Profiles
import QEMUCommand
import QMP
import Synchronization
@testable import Supervisor

/// A QEMU process that ends when the test says so, or on SIGTERM/SIGKILL.
final class FakeProcess: QEMUProcess {
    let pid: pid_t
    private struct State {
        var status: ExitStatus?
        var waiters: [UInt64: CheckedContinuation<ExitStatus?, Never>] = [:]
        var nextWaiter: UInt64 = 0
        var signals: [Int32] = []
    }
    private let state = Mutex(State())

    init(pid: pid_t) { self.pid = pid }

    var exitStatus: ExitStatus? { state.withLock { $0.status } }
    var signals: [Int32] { state.withLock { $0.signals } }

    /// The process ends now with `status` (once).
    func exit(_ status: ExitStatus) {
        let waiters: [CheckedContinuation<ExitStatus?, Never>] = state.withLock { state in
            guard state.status == nil else { return [] }
            state.status = status
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    func signal(_ sig: Int32) {
        state.withLock { $0.signals.append(sig) }
        if sig == SIGKILL || sig == SIGTERM { exit(.signaled(sig)) }
    }

    func waitForExitOrCancel() async -> ExitStatus? {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow: ExitStatus?? = state.withLock { state in
                    if let status = state.status { return .some(status) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now = resumeNow { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }

    func waitForExit(timeout: Duration) async -> ExitStatus? {
        await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await self.waitForExitOrCancel() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? self.exitStatus
        }
    }
}

/// A launcher whose QEMUs are a `FakeProcess` and a `ScriptedQMP` each, handed out in order: the test scripts
/// every QEMU the VM will get (first start, restarts, a reattach) before it runs.
final class FakeLauncher: VMLaunching {
    struct QEMU: Sendable {
        var process: FakeProcess
        var qmp: ScriptedQMP
        /// nil: the start succeeds; otherwise it fails with this reason.
        var failure: String?
    }

    private struct State {
        var starts: [QEMU] = []
        var reattachable: QEMU?
        var requests: [StartRequest] = []
    }
    private let state = Mutex(State())
    let provisioner = DiskProvisioner()

    /// The next start gets this QEMU.
    @discardableResult
    /// `eventsAfterStatus`: what QEMU sends right after its `query-status` reply, while the daemon finishes the start.
    func willStart(pid: pid_t, status: String = "running", failing: String? = nil,
                   eventsAfterStatus: [QMPEvent] = []) -> QEMU {
        let qemu = QEMU(process: FakeProcess(pid: pid), qmp: ScriptedQMP(), failure: failing)
        if failing == nil {
            qemu.qmp.expect("query-status", nil, .ok(["status": .string(status), "running": .bool(status == "running")]),
                            then: eventsAfterStatus)
        }
        state.withLock { $0.starts.append(qemu) }
        return qemu
    }

    /// A reattach finds this QEMU.
    @discardableResult
    func willReattach(pid: pid_t, status: String) -> QEMU {
        let qemu = QEMU(process: FakeProcess(pid: pid), qmp: ScriptedQMP(), failure: nil)
        qemu.qmp.expect("query-status", nil, .ok(["status": .string(status), "running": .bool(status == "running")]))
        state.withLock { $0.reattachable = qemu }
        return qemu
    }

    var startCount: Int { state.withLock { $0.requests.count } }
    var requests: [StartRequest] { state.withLock { $0.requests } }
    var unusedStarts: Int { state.withLock { $0.starts.count } }

    func start(_ request: StartRequest) async throws(StartError) -> RunningVM {
        let next: QEMU? = state.withLock { state in
            state.requests.append(request)
            return state.starts.isEmpty ? nil : state.starts.removeFirst()
        }
        guard let qemu = next else {
            throw StartError(vm: request.config.profile.name, reason: "the test scripted no further start", qemuOutput: [])
        }
        // Like the real launcher, whose QMP connect gives up when the starting task is cancelled.
        if Task.isCancelled {
            throw StartError(vm: request.config.profile.name, reason: "cancelled while waiting for the socket",
                             qemuOutput: [])
        }
        if let failure = qemu.failure {
            throw StartError(vm: request.config.profile.name, reason: failure, qemuOutput: ["qemu: \(failure)"])
        }
        request.onSpawn?(qemu.process.pid, 1_000)
        return RunningVM(name: request.config.profile.name, process: qemu.process, qmp: qemu.qmp, paths: request.paths,
                         accel: request.accel, argv: [], startedAt: 1_000)
    }

    func reattach(name: String, recordedPid: Int32?, paths: VMPaths, accel: ResolvedAccel,
                  recordedStart: Double?) async -> RunningVM? {
        guard let qemu = state.withLock({ $0.reattachable }), qemu.process.pid == recordedPid else { return nil }
        return RunningVM(name: name, process: qemu.process, qmp: qemu.qmp, paths: paths, accel: accel, argv: [],
                         startedAt: recordedStart ?? 0)
    }
}
