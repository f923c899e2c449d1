import JSON
import QMP

/// The bytes the guest agent's channel carries, after corral sent `guest-sync-delimited` with `syncID`: everything is
/// stale until a 0xFF sentinel followed by `{"return": syncID}`; only the messages after that are this exchange's.
///
/// 0xFF never occurs in JSON text (it is not UTF-8), so every 0xFF is a sentinel and resets the JSON decoder. Before
/// the sync reply, stale data (a reply meant for an earlier client, the tail of one, garbage) is dropped; a delimited
/// reply with another id means what follows is stale too, up to the next sentinel. JSON errors before the sync are
/// stale data; after it they are the exchange's failure.
public struct AgentStream: ~Copyable {
    public static let sentinel: UInt8 = 0xFF

    public let syncID: Int64
    private var decoder = QMPStreamDecoder()
    /// The sync reply has arrived.
    public private(set) var synced = false
    /// Between a sentinel and the message after it (before the sync reply).
    private var afterSentinel = false

    public init(syncID: Int64) { self.syncID = syncID }

    /// Feeds the next bytes; returns the messages that arrived after the sync reply, in order.
    public mutating func feed(_ bytes: [UInt8]) throws(GuestAgentError) -> [JSONValue] {
        var out: [JSONValue] = []
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == Self.sentinel {
            try take(bytes[start..<index], into: &out)
            if index < bytes.count {
                decoder.reset()
                afterSentinel = true
            }
            start = index + 1
        }
        return out
    }

    private mutating func take(_ segment: ArraySlice<UInt8>, into out: inout [JSONValue]) throws(GuestAgentError) {
        guard !segment.isEmpty, synced || afterSentinel else { return }
        let messages: [JSONValue]
        do {
            messages = try decoder.feed(segment)
        } catch {
            guard synced else {
                afterSentinel = false
                return
            }
            throw .protocolError(error.description)
        }
        for message in messages {
            if synced {
                out.append(message)
            } else if afterSentinel, message["return"]?.intValue == syncID {
                synced = true
            } else {
                // Another client's sync reply: what follows is stale until the next sentinel.
                afterSentinel = false
            }
        }
    }
}
