import Testing
import TestSupport

@Suite(.timeLimit(.minutes(1))) struct GuestBootSlotsTests {
    /// Counts how many bodies run at once.
    actor Gauge {
        var now = 0
        var most = 0
        func enter() { now += 1; most = max(most, now) }
        func leave() { now -= 1 }
    }

    struct Failure: Error {}

    @Test func noMoreThanTheSlotsRunAtOnceAndAThrowingBodyGivesItsSlotBack() async throws {
        let slots = GuestBootSlots(count: 3)
        let gauge = Gauge()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<12 {
                group.addTask {
                    do {
                        try await slots.run {
                            await gauge.enter()
                            try await Task.sleep(for: .milliseconds(30))
                            await gauge.leave()
                            if index % 4 == 0 { throw Failure() }
                        }
                    } catch is Failure {}
                }
            }
            try await group.waitForAll()
        }
        #expect(await gauge.most == 3)
        #expect(await gauge.now == 0)
        // Every slot came back: three more bodies run side by side at once.
        let again = Gauge()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await slots.run {
                        await again.enter()
                        try await Task.sleep(for: .milliseconds(200))
                        await again.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await again.most == 3)
    }
}
