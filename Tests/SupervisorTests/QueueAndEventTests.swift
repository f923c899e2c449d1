import CorralModel
import JSON
import CorralControl
import CorralCore
import Supervisor
import Testing

@Suite struct OperationQueueTests {
    actor Log {
        var entries: [String] = []
        func add(_ s: String) { entries.append(s) }
    }

    @Test func operationsNeverInterleaveAndRunInArrivalOrder() async {
        let queue = OperationQueue()
        let log = Log()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask {
                    await queue.run {
                        await log.add("begin \(i)")
                        await Task.yield()
                        try? await Task.sleep(for: .milliseconds(1))
                        await log.add("end \(i)")
                    }
                }
                // Let each task reach the queue before the next is created.
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        let entries = await log.entries
        #expect(entries.count == 40)
        for pair in stride(from: 0, to: entries.count, by: 2) {
            let begin = entries[pair].dropFirst(6)
            #expect(entries[pair + 1] == "end \(begin)", "an operation interleaved with another: \(entries)")
        }
        #expect(entries.first == "begin 0")
    }

    @Test func aThrowingOperationReleasesTheQueue() async throws {
        struct Boom: Error {}
        let queue = OperationQueue()
        await #expect(throws: Boom.self) { try await queue.run { () async throws(Boom) in throw Boom() } }
        let value = await queue.run { 42 }
        #expect(value == 42)
    }
}

@Suite struct EventHubTests {
    @Test func subscribersGetHistoryThenLiveEventsFilteredByVM() async {
        let hub = EventHub()
        await hub.publish(vm: "a", "started")
        await hub.publish(vm: "b", "started")
        let stream = await hub.subscribe(vm: "a", history: 10)
        await hub.publish(vm: "b", "STOP")
        await hub.publish(vm: "a", "STOP", ["x": 1])
        var iterator = stream.makeAsyncIterator()
        let first = await iterator.next()
        let second = await iterator.next()
        #expect(first?.name == "started" && first?.vm == "a")
        #expect(second?.name == "STOP" && second?.vm == "a" && second?.data == ["x": 1])
        await hub.finishAll()
        #expect(await iterator.next() == nil)
    }

    @Test func withoutFollowTheStreamEndsAfterThePastEvents() async {
        let hub = EventHub()
        for name in ["defined", "started", "STOP", "RESUME"] { await hub.publish(vm: "a", CorralEventName(name)) }
        await hub.publish(vm: "b", "started")
        let stream = await hub.subscribe(vm: "a", history: 3, follow: false)
        await hub.publish(vm: "a", "stopped")
        var names: [String] = []
        for await event in stream { names.append(event.name.text) }
        #expect(names == ["started", "STOP", "RESUME"], "the last three of a, then the end; nothing live")
    }

    @Test func historyIsPersistedAndReloaded() async throws {
        let path = "/tmp/corral-events-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { FileOps.remove(path) }
        let hub = EventHub()
        await hub.setLogFile(path, for: "a")
        await hub.publish(vm: "a", "started")
        await hub.publish(vm: "a", "SHUTDOWN", ["guest": true])
        let fresh = EventHub()
        await fresh.load(from: path)
        let names = await fresh.recent(vm: "a", limit: 10).map(\.name)
        #expect(names == ["started", "SHUTDOWN"])
    }
}
