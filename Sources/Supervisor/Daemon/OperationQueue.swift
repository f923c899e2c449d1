/// Runs operations one at a time, in arrival order (FIFO), even when they suspend.
/// Each VM has one, so `stop` and `pause` on the same VM never interleave.
public actor OperationQueue {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    /// How many operations wait for their turn (not counting the one running).
    var waitingCount: Int { waiters.count }

    public func run<T: Sendable, E: Error>(_ body: @Sendable () async throws(E) -> T) async throws(E) -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()  // hand over directly: busy stays true
        }
    }
}
