import Synchronization

/// Waiting for a task's value no longer than a limit.
enum TaskDeadline {
    /// `task`'s value, or `otherwise` once `limit` has passed. The task is not waited for after that (it goes on,
    /// and ends by its own bounds); the caller gets its answer in time whatever the task does.
    static func value<T: Sendable>(of task: Task<T, Never>, within limit: Duration, otherwise: T) async -> T {
        let once = Once()
        return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            @Sendable func resume(_ value: T) {
                if once.claim() { continuation.resume(returning: value) }
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                resume(otherwise)
            }
            Task {
                resume(await task.value)
                timer.cancel()
            }
        }
    }
}

/// True for the first caller of `claim()` only.
private final class Once: Sendable {
    private let claimed = Mutex(false)

    func claim() -> Bool {
        claimed.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
