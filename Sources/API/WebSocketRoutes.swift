import CorralControl
import CorralModel
import CorralWire
import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// The API's WebSocket routes: byte streams to a VM, relayed both ways.
///
/// - `GET /v1/vms/NAME/console/attach[?force=true]`: the serial console, one client at a time.
/// - `GET /v1/vms/NAME/vnc`: a VNC client of the VM's display (RFB over binary messages, as noVNC speaks it).
///
/// An upgrade request needs the admin token on a TCP listener, like every route; without it the upgrade is closed at
/// once with 4401 (NIO would answer a declined upgrade with a bare 400).
/// A request the daemon refuses is still upgraded and then closed at once with code `4000 + HTTP status` and the
/// error's message as the reason, so the client can tell "already attached" (4409) from "no such VM" (4404).
/// The same paths without an upgrade answer 400.
enum WebSocketRoutes {
    enum Target: Equatable {
        case console(vm: String, force: Bool)
        case vnc(vm: String)
    }

    typealias Handler = WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
    typealias Decision = ShouldUpgradeResult<Handler>

    /// Frames up to 1 MiB (a VNC framebuffer update is sent as many messages of what the reader got).
    static let configuration = WebSocketServerConfiguration(maxFrameSize: 1 << 20)

    /// The largest message a client may send (console keystrokes, VNC client messages are far smaller).
    static let maxMessage = 1 << 20

    /// `/v1/vms/NAME/console/attach` or `/v1/vms/NAME/vnc`, with the query's `force`.
    static func target(path: String) -> Target? {
        let (route, query) = path.firstIndex(of: "?").map { (String(path[..<$0]), String(path[path.index(after: $0)...])) }
            ?? (path, "")
        let parts = route.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "vms",
              let name = parts[3].removingPercentEncoding, !name.isEmpty else { return nil }
        let force = query.split(separator: "&").contains { $0 == "force=true" || $0 == "force=1" }
        switch parts[4...].joined(separator: "/") {
        case "console/attach": return .console(vm: name, force: force)
        case "vnc": return .vnc(vm: name)
        default: return nil
        }
    }

    /// Whether `request` may upgrade: the path is one of ours and, on a listener with a token, it carries it.
    static func decide(_ request: HTTPRequest, control: any DaemonControl, token: String?, web: WebDashboard? = nil,
                       logger: Logger) async -> Decision {
        guard request.method == .get, let target = target(path: request.path ?? "") else { return .dontUpgrade }
        if let token {
            let presented = request.headerFields[.authorization].flatMap { value -> String? in
                value.hasPrefix("Bearer ") ? String(value.dropFirst(7)) : nil
            }
            if let presented, BearerToken.matches(presented, token) {
                // the admin token
            } else if let web, await web.session(request.headerFields) != nil {
                // A browser sends the cookie with any page's WebSocket: only the dashboard's own page may use it.
                guard let origin = request.headerFields[.origin], web.isSameOrigin(origin, of: request)
                else {
                    return refusal(4403, "a WebSocket from another origin cannot use this dashboard's session")
                }
            } else {
                // A declined upgrade gets a bare 400 from NIO: refuse like every other refusal, by the close code.
                return refusal(4401, web == nil ? "this listener needs Authorization: Bearer <token>"
                    : "log in to the dashboard or send Authorization: Bearer <token>")
            }
        }
        let lease: ByteStreamLease
        do {
            switch target {
            case .console(let vm, let force): lease = try await control.attachConsole(vm, force: force)
            case .vnc(let vm): lease = try await control.openVNC(vm)
            }
        } catch {
            return refusal(UInt16(4000 + Int(error.httpStatus)), error.message)
        }
        logger.info("websocket relay opened", metadata: ["target": "\(target)"])
        return .upgrade([:], { inbound, outbound, _ in
            await relay(lease, inbound: inbound, outbound: outbound)
            logger.info("websocket relay closed", metadata: ["target": "\(target)"])
        })
    }

    /// An upgrade that closes at once with `code` and `reason` (cut to fit a close frame).
    static func refusal(_ code: UInt16, _ reason: String) -> Decision {
        let text = String(decoding: reason.utf8.prefix(120), as: UTF8.self)
        return .upgrade([:], { _, outbound, _ in try await outbound.close(.unknown(code), reason: text) })
    }

    /// Bytes from the descriptor go out as binary messages (a thread reads it, held back while the client is slow:
    /// nothing is dropped, nothing piles up); every message in goes to the descriptor. Either side's end ends both.
    static func relay(_ lease: ByteStreamLease, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let fd = lease.fd
        let (chunks, sink) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .unbounded)
        let reader = ReaderThread(fd: fd, sink: sink)
        reader.start()
        let writes = DispatchQueue(label: "corral.relay.write")
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await chunk in chunks {
                    defer { reader.resume() }
                    do { try await outbound.write(.binary(ByteBuffer(bytes: chunk))) } catch { break }
                }
                try? await outbound.close(.normalClosure, reason: "the VM's end closed")
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: maxMessage) {
                        let bytes: [UInt8]
                        switch message {
                        case .binary(let buffer): bytes = Array(buffer.readableBytesView)
                        case .text(let text): bytes = Array(text.utf8)
                        }
                        // The write may block until the VM's end reads: never on the concurrency pool.
                        let written = await withCheckedContinuation { continuation in
                            writes.async { continuation.resume(returning: writeAll(fd, bytes)) }
                        }
                        guard written else { break }
                    }
                } catch {}
            }
            await group.next()
            // One side ended: wake the reader (it sees the end), then let the other side finish.
            shutdown(fd, Int32(SHUT_RDWR))
            reader.resume()
            group.cancelAll()
        }
        await reader.finished()
        lease.release()
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}

/// Reads a descriptor on its own thread: one chunk at a time, waiting after each until the writer took it.
final class ReaderThread: @unchecked Sendable {
    private let fd: Int32
    private let sink: AsyncStream<[UInt8]>.Continuation
    private let taken = DispatchSemaphore(value: 0)
    /// Whether the thread has ended, and who waits for that (guarded by `lock`).
    private let lock = NSLock()
    private var ended = false
    private var waiter: CheckedContinuation<Void, Never>?

    init(fd: Int32, sink: AsyncStream<[UInt8]>.Continuation) {
        self.fd = fd
        self.sink = sink
    }

    func start() {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                sink.yield(Array(buffer[..<count]))
                taken.wait()
            }
            sink.finish()
            lock.lock()
            ended = true
            let waiting = waiter
            waiter = nil
            lock.unlock()
            waiting?.resume()
        }
    }

    /// The chunk was sent (or will not be): read the next.
    func resume() { taken.signal() }

    /// Waits for the thread's end (after which the descriptor may be closed), without holding any thread.
    func finished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if ended {
                lock.unlock()
                continuation.resume()
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
/// The route parser as text, for tests outside the module.
public enum WebSocketRoutesProbe {
    public static func target(_ path: String) -> String? {
        switch WebSocketRoutes.target(path: path) {
        case .console(let vm, let force)?: return "console \(vm)" + (force ? " force" : "")
        case .vnc(let vm)?: return "vnc \(vm)"
        case nil: return nil
        }
    }
}
