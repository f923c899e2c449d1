#if canImport(Glibc)
import Glibc
#endif

/// A detached POSIX thread for the blocking socket I/O of one HTTP call. (Foundation's `Thread` would do, but
/// the client links only FoundationEssentials, which has none: every `corral` start pays for what it links.)
package enum IOThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread. When no thread can be made (the process is out of threads or memory), runs
    /// `body` on the caller's thread instead.
    package static func start(_ body: @escaping @Sendable () -> Void) {
        let work = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Work>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, work)
        guard created == 0 else {
            Unmanaged<Work>.fromOpaque(work).takeRetainedValue().body()
            return
        }
        pthread_detach(thread)
    }
}
