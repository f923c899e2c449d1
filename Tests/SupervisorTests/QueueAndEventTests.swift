import CorralModel
import JSON
import CorralControl
import CorralCore
@testable import Supervisor
import Testing

@Suite struct OperationQueueTests {
    actor Log {
        var entries: [String] = []
        func add(_ s: String) { entries.append(s) }
    }

    @Test func operationsNeverInterleaveAndRunInArrivalOrder() async {
        let queue = OperationQueue()
        let log = Log()
        let (gate, open) = AsyncStream<Void>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            // Operation 0 holds the queue until the gate opens, so every other one has to wait for its turn.
            group.addTask {
                await queue.run {
                    await log.add("begin 0")
                    for await _ in gate { break }
                    await log.add("end 0")
                }
            }
            while await log.entries.isEmpty { await Task.yield() }
            for i in 1..<20 {
                group.addTask {
                    await queue.run {
                        await log.add("begin \(i)")
                        await Task.yield()
                        await log.add("end \(i)")
                    }
                }
                // Operation i is waiting before i + 1 is created: the arrival order is 1, 2, 3…
                while await queue.waitingCount < i { await Task.yield() }
            }
            open.yield()
        }
        let expected = (0..<20).flatMap { ["begin \($0)", "end \($0)"] }
        #expect(await log.entries == expected, "one at a time, in arrival order")
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
