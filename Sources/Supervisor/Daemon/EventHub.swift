import Foundation
import CorralModel
import JSON

/// Keeps recent events per VM (in memory, and appended to the VM's `events.log`),
/// and fans new ones out to subscribers (`corral events`).
public actor EventHub {
    private var history: [CorralEvent] = []
    private let historyLimit: Int
    private var subscribers: [UInt64: (filter: String?, continuation: AsyncStream<CorralEvent>.Continuation)] = [:]
    private var nextID: UInt64 = 0
    private var logFiles: [String: String] = [:]

    public init(historyLimit: Int = 2000) {
        self.historyLimit = historyLimit
    }

    /// Where events of `vm` are appended (one JSON object a line).
    public func setLogFile(_ path: String?, for vm: String) {
        logFiles[vm] = path
    }

    /// Loads earlier events of a VM from its log (after a daemon restart).
    public func load(from path: String, keepLast: Int = 200) {
        guard let text = (try? FileOps.readText(path)) ?? nil else { return }
        let decoder = JSONDecoder()
        let events = text.split(separator: "\n").suffix(keepLast).compactMap {
            try? decoder.decode(CorralEvent.self, from: Data($0.utf8))
        }
        history.append(contentsOf: events)
        history.sort { $0.time < $1.time }
        trim()
    }

    public func publish(_ event: CorralEvent) {
        history.append(event)
        trim()
        if let path = logFiles[event.vm], let data = try? JSONEncoder().encode(event) {
            appendLine(data, to: path)
        }
        for (_, subscriber) in subscribers where subscriber.filter == nil || subscriber.filter == event.vm {
            subscriber.continuation.yield(event)
        }
    }

    public func publish(vm: String, _ name: CorralEventName, _ data: JSONValue? = nil) {
        publish(CorralEvent(time: Date().timeIntervalSince1970, vm: vm, name: name, data: data))
    }

    /// The last `history` events (of `vm`, or all), then (with `follow`) every new one; without `follow` the
    /// stream ends after the past ones.
    public func subscribe(vm: String?, history count: Int, follow: Bool = true) -> AsyncStream<CorralEvent> {
        // Bounded per client: a reader that stops reading loses its oldest events, the daemon no memory.
        let (stream, continuation) = AsyncStream<CorralEvent>.makeStream(
            bufferingPolicy: .bufferingNewest(max(1024, min(count, 100_000))))
        let past = history.filter { vm == nil || $0.vm == vm }.suffix(max(0, count))
        for event in past { continuation.yield(event) }
        guard follow else {
            continuation.finish()
            return stream
        }
        let id = nextID
        nextID += 1
        subscribers[id] = (vm, continuation)
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return stream
    }

    public func recent(vm: String?, limit: Int) -> [CorralEvent] {
        Array(history.filter { vm == nil || $0.vm == vm }.suffix(limit))
    }

    /// Ends every subscription (daemon shutdown).
    public func finishAll() {
        for (_, subscriber) in subscribers { subscriber.continuation.finish() }
        subscribers.removeAll()
    }

    private func unsubscribe(_ id: UInt64) {
        subscribers[id] = nil
    }

    private func trim() {
        if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
    }

    private func appendLine(_ data: Data, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let line = Array(data) + [UInt8(ascii: "\n")]
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }
}
