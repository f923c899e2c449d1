import API
import APITLS
import CorralModel
import CorralWire
import Foundation
import Logging
import ServiceLifecycle
import CorralControl
import LogTail
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// Runs a `CorralDaemon` over a fake `VMControl` on a short temporary socket path (and optionally
/// a TCP port chosen by the kernel), waits until it listens, runs `body`, then shuts it down
/// gracefully and waits for it to return.
struct DaemonHarness {
    let socketPath: String
    let tcpPort: Int?
    var webPort: Int?
    let group: ServiceGroup

    /// Notes what the supervisor task saw.
    actor SupervisorProbe {
        private(set) var started = false
        private(set) var cancelled = false
        func markStarted() { started = true }
        func markCancelled() { cancelled = true }
    }

    static var quiet: Logger {
        var logger = Logger(label: "test.daemon")
        logger.logLevel = .warning
        return logger
    }

    static func tempSocketPath() -> String {
        "/tmp/corral-api-\(UUID().uuidString.prefix(8)).sock"
    }

    static func run<T: Sendable>(
        _ control: any DaemonControl,
        socketPath: String = tempSocketPath(),
        token: String? = nil,
        tls: TLSFiles? = nil,
        limits: DaemonConfiguration.Limits = .init(),
        web: DaemonConfiguration.WebListener? = nil,
        probe: SupervisorProbe = SupervisorProbe(),
        _ body: @Sendable (DaemonHarness) async throws -> T
    ) async throws -> T {
        let (listening, listened) = AsyncStream<DaemonListener>.makeStream()
        let daemon = CorralDaemon(
            configuration: DaemonConfiguration(
                socketPath: socketPath,
                tcp: token.map { .init(address: "127.0.0.1:0", token: $0, tls: tls) }, web: web, limits: limits,
                tlsServer: tls == nil ? nil : MutualTLS()),
            control: control,
            supervise: {
                await probe.markStarted()
                // Waits for cancellation like VMManager.run().
                let (never, _) = AsyncStream<Void>.makeStream()
                for await _ in never {}
                await probe.markCancelled()
            },
            logger: quiet,
            onListening: { listened.yield($0) })
        let group = ServiceGroup(configuration: .init(services: [daemon], logger: quiet))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var tcpPort: Int?
            var webPort: Int?
            var waiting = 1 + (token == nil ? 0 : 1) + (web == nil ? 0 : 1)
            for await listener in listening {
                if case .tcp(let address) = listener { tcpPort = address.port }
                if case .web(let address) = listener { webPort = address.port }
                waiting -= 1
                if waiting == 0 { break }
            }
            let harness = DaemonHarness(socketPath: socketPath, tcpPort: tcpPort, webPort: webPort, group: group)
            do {
                let value = try await body(harness)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return value
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }

    static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }
}
