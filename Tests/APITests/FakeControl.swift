import Foundation
import JSON
import Profiles
import Supervisor

/// A `VMControl` that records every call and answers from a script.
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
        case events(vm: String?, history: Int)
    }

    private(set) var calls: [Call] = []
    /// VMs the fake knows; operations on other names fail with not-found.
    var vms: [String: VMStatus] = [:]
    /// When set, every operation that can fail fails with this.
    var failure: ControlError?
    var qmpReply: JSONValue = ["status": "running", "running": true]
    var serialLogs: [String: String] = [:]
    private var subscribers: [AsyncStream<CorralEvent>.Continuation] = []
    private var subscribed: [AsyncStream<Void>.Continuation] = []
    private(set) var terminatedSubscriptions = 0

    init(vms: [VMStatus] = []) {
        for vm in vms { self.vms[vm.name] = vm }
    }

    func setFailure(_ error: ControlError?) { failure = error }
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

    func remove(_ name: String, force: Bool) async throws(ControlError) {
        calls.append(.remove(name, force: force))
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

    func events(vm: String?, history: Int) async -> AsyncStream<CorralEvent> {
        calls.append(.events(vm: vm, history: history))
        let (stream, continuation) = AsyncStream<CorralEvent>.makeStream()
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
            nics: [.init(id: "net0", mac: "52:54:00:12:34:56", mode: "user")],
            qmpSocket: "/var/lib/corral/vms/\(name)/qmp.sock", serialLog: "/var/lib/corral/vms/\(name)/serial.log",
            restartCount: 0, lastExit: nil)
    }
}
