import Foundation

/// Test-only: how many tests that boot a TCG test guest run at once in one test process.
///
/// Every system suite is `.serialized` on its own, but the suites run side by side: left alone, some thirty guests
/// boot at the same moment on a 2-core host, each gets a fifteenth of a core, and the first heartbeats come after
/// two to three minutes (CI runs failed with empty serial logs when that crossed the 180 s heartbeat wait).
/// A test holding a slot boots and uses its guests; the others wait for a slot before they start, not while their
/// guests boot. `CORRAL_TEST_GUEST_SLOTS` sets the number; the default is four per core, at least four.
public actor GuestBootSlots {
    public static let shared = GuestBootSlots(count: defaultCount)

    public static var defaultCount: Int {
        if let text = ProcessInfo.processInfo.environment["CORRAL_TEST_GUEST_SLOTS"], let count = Int(text), count > 0 {
            return count
        }
        return max(4, 4 * ProcessInfo.processInfo.activeProcessorCount)
    }

    public let count: Int
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(count: Int) {
        self.count = count
        free = count
    }

    /// Waits for a free slot; first come, first served.
    private func acquire() async {
        if free > 0 {
            free -= 1
        } else {
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    /// Gives a slot back: to the longest waiter, else to the pool.
    private func release() {
        if waiters.isEmpty {
            free += 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Runs `body` holding one slot of `self`, given back however `body` ends.
    public func run(_ body: @Sendable () async throws -> Void) async throws {
        await acquire()
        do {
            try await body()
        } catch {
            release()
            throw error
        }
        release()
    }
}
