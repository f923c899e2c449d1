import CorralCore
import JSON
import QMP

/// Why a hotplug sequence did not complete.
public enum HotplugError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A step failed; the steps before it were undone (`undoProblems` lists undo steps that failed too).
    /// `error` is QMP's answer as it came (its class and desc reach the user).
    case stepFailed(step: String, error: QMPError, undoProblems: [String])
    /// The guest did not release the device in time; QEMU will finish the unplug if the guest ever does.
    case unplugPending(device: String, after: Duration)

    public var description: String {
        switch self {
        case .stepFailed(let step, let error, let undoProblems):
            var text = "\(step) failed: \(HotplugExecutor.reason(error))"
            text += undoProblems.isEmpty
                ? "; earlier steps were undone"
                : "; undo was incomplete: " + undoProblems.joined(separator: "; ")
            return text
        case .unplugPending(let device, let after):
            let seconds = Double(after.components.seconds) + Double(after.components.attoseconds) / 1e18
            return "unplug pending: the guest has not released \(device) after \(Int(seconds.rounded())) s"
        }
    }
}

/// Runs hotplug steps over QMP; when one fails, undoes the completed ones in reverse order.
public struct HotplugExecutor: Sendable {
    public var qmp: any QMPMonitor
    /// How long to wait for DEVICE_DELETED after `device_del`.
    public var unplugTimeout: Duration
    /// Attempts for steps that QEMU refuses while a node is still in use.
    public var inUseRetries: Int
    public var retryDelay: Duration

    public init(qmp: any QMPMonitor, unplugTimeout: Duration = .seconds(20), inUseRetries: Int = 10,
                retryDelay: Duration = .milliseconds(100)) {
        self.qmp = qmp
        self.unplugTimeout = unplugTimeout
        self.inUseRetries = inUseRetries
        self.retryDelay = retryDelay
    }

    /// Runs every step. On failure undoes what succeeded and throws `.stepFailed`;
    /// an unplug that times out throws `.unplugPending` and is NOT undone (the guest may still release it).
    public func run(_ steps: [QMPStep]) async throws(HotplugError) {
        var done: [QMPStep] = []
        for step in steps {
            do {
                try await perform(step)
                done.append(step)
            } catch let error {
                if case .unplugPending = error { throw error }
                var problems: [String] = []
                for completed in done.reversed() {
                    for undo in completed.undo {
                        do { try await perform(undo) } catch { problems.append("\(undo): \(error)") }
                    }
                }
                guard case .stepFailed(_, let cause, _) = error else { throw error }
                throw .stepFailed(step: step.description, error: cause, undoProblems: problems)
            }
        }
    }

    private func perform(_ step: QMPStep) async throws(HotplugError) {
        // Subscribe before sending, so a fast DEVICE_DELETED is not missed.
        let deleted: AsyncStream<QMPEvent>? =
            if case .deviceDeleted = step.wait { qmp.events(["DEVICE_DELETED"]) } else { nil }
        var attempt = 0
        while true {
            do {
                try await qmp.send(step)
                break
            } catch {
                attempt += 1
                if step.retryWhileInUse, attempt < inUseRetries, Self.looksInUse(error) {
                    try? await Task.sleep(for: retryDelay)
                    continue
                }
                throw .stepFailed(step: step.description, error: error, undoProblems: [])
            }
        }
        if case .deviceDeleted(let device) = step.wait, let deleted {
            guard await waitForDeletion(of: device, in: deleted) else {
                throw .unplugPending(device: device, after: unplugTimeout)
            }
        }
    }

    private func waitForDeletion(of device: String, in events: AsyncStream<QMPEvent>) async -> Bool {
        let timeout = unplugTimeout
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await event in events where HotplugExecutor.event(event, confirmsDeletionOf: device) {
                    return true
                }
                return false
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// True when a DEVICE_DELETED event says `device` (an id or a QOM path) is gone. QEMU 7.2 reports
    /// a vCPU's removal only through its child (`/machine/peripheral/ID/lapic`), so a child counts too.
    public static func event(_ event: QMPEvent, confirmsDeletionOf device: String) -> Bool {
        guard event.name == "DEVICE_DELETED" else { return false }
        if event.data["device"]?.stringValue == device { return true }
        guard let path = event.data["path"]?.stringValue else { return false }
        let target = device.hasPrefix("/") ? device : "/machine/peripheral/" + device
        return path == target || path.hasPrefix(target + "/")
    }

    /// QEMU answers `blockdev-del`/`object-del` on a node still attached with a GenericError
    /// mentioning that it is in use. Matching text is a last resort: QMP has no specific class for it.
    static func looksInUse(_ error: QMPError) -> Bool {
        guard case .commandFailed(_, _, let desc) = error else { return false }
        let text = desc.lowercased()
        return text.contains("in use") || text.contains("is busy") || text.contains("still")
    }

    static func reason(_ error: QMPError) -> String {
        if case .commandFailed(_, let errorClass, let desc) = error { return "\(errorClass): \(desc)" }
        return error.description
    }
}
