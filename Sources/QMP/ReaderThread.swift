#if canImport(Glibc)
import Glibc
#endif

func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Starts a detached POSIX thread running `body` (the connection's reader; the guest agent's blocking exchange).
public func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Start: Sendable {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }
    let start = Unmanaged.passRetained(Start(body: body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { context in
        let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
        start.body()
        return nil
    }, start)
    precondition(result == 0, "pthread_create failed: \(errnoText(result))")
    pthread_detach(thread)
}
