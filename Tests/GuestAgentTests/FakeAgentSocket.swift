import Foundation
import Synchronization
import UnixSockets

/// A scripted qemu-guest-agent behind a Unix socket, as QEMU's chardev presents it: it accepts one connection, reads
/// the client's request (up to the second newline: the sync and the command), hands the sync id to `answer`, writes
/// what that returns, and keeps the connection open until the client closes it. `answer` returning nil writes nothing
/// (an agent that is not running).
final class FakeAgentSocket: Sendable {
    let path: String
    private let listener: Int32
    private let received = Received()

    /// The bytes the client sent.
    var request: [UInt8] { received.bytes.withLock { $0 } }

    final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }

    init(answer: @escaping @Sendable (_ syncID: Int64) -> [UInt8]?) throws {
        path = NSTemporaryDirectory() + "qga-\(UUID().uuidString.prefix(8)).sock"
        listener = try UnixStreamListen.listen(path: path)
        let listener = listener
        let thread = Thread { [received] in
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            let socket = StreamSocket(adopting: fd)
            defer { socket.close() }
            var request: [UInt8] = []
            while request.filter({ $0 == UInt8(ascii: "\n") }).count < 2 {
                guard let bytes = try? socket.read(), !bytes.isEmpty else { return }
                request += bytes
            }
            received.bytes.withLock { $0 = request }
            if let reply = answer(Self.syncID(in: request)) { try? socket.write(reply) }
            // Until the client hangs up.
            while let bytes = try? socket.read(), !bytes.isEmpty {}
        }
        thread.start()
    }

    deinit {
        close(listener)
        unlink(path)
    }

    /// The `id` of the `guest-sync-delimited` in `request` (0 when there is none).
    static func syncID(in request: [UInt8]) -> Int64 {
        let text = String(decoding: request.filter { $0 != 0xFF }, as: UTF8.self)
        guard let line = text.split(separator: "\n").first,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let arguments = object["arguments"] as? [String: Any], let id = arguments["id"] as? Int
        else { return 0 }
        return Int64(id)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static let sentinel: [UInt8] = [0xFF]
}
