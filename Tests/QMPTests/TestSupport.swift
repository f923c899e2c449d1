import Foundation
import JSON
import QMP
import Synchronization
import Testing

extension FakeQMPServer {
    /// Returns once the server has read a command named `name` (commands read earlier are skipped).
    func waitUntilReceived(_ name: String) async {
        for await received in received where received == name { return }
    }
}

/// Runs `body`; if it has not finished after `seconds`, gives up and returns nil. A guard against hangs in tests,
/// never an assertion on how long something took.
func withHangGuard<T: Sendable>(seconds: Int = 20, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next()!
        group.cancelAll()
        return first
    }
}

/// The next event in `stream`, or nil if the stream finished (or the hang guard fired).
func nextEvent(_ stream: AsyncStream<QMPEvent>) async -> QMPEvent? {
    let box = StreamBox(stream)
    return await withHangGuard { await box.next() } ?? nil
}

/// Lets a test hand an AsyncStream iterator to a child task.
final class StreamBox<Element: Sendable>: @unchecked Sendable {
    private var iterator: AsyncStream<Element>.AsyncIterator
    init(_ stream: AsyncStream<Element>) { iterator = stream.makeAsyncIterator() }
    func next() async -> Element? { await iterator.next() }
}

/// Collects transcript entries from the client's callback.
final class TranscriptRecorder: Sendable {
    private let entries = Mutex<[QMPTranscriptEntry]>([])
    var callback: @Sendable (QMPTranscriptEntry) -> Void { { entry in self.entries.withLock { $0.append(entry) } } }
    var all: [QMPTranscriptEntry] { entries.withLock { $0 } }
}

/// A small deterministic RNG (SplitMix64) so random chunkings are reproducible from a seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension QMPError {
    var commandName: String? {
        switch self {
        case .commandFailed(let command, _, _), .timeout(let command, _), .disconnected(let command, _),
            .cancelled(let command):
            return command
        case .connectFailed, .protocolError:
            return nil
        }
    }
}

/// Every element until the stream finishes (guarded against hangs).
func collect<Element: Sendable>(_ stream: AsyncStream<Element>) async -> [Element] {
    await withHangGuard {
        var all: [Element] = []
        for await element in stream { all.append(element) }
        return all
    } ?? []
}
