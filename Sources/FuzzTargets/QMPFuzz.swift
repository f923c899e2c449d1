import JSON
import QMP

/// The QMP stream decoder. The input is what QEMU writes on the socket.
///
/// Properties: the bytes fed whole and fed in chunks (sizes drawn from the input) give the same messages, or both
/// fail, and leave the decoder in the same place (inside a message or not); every message survives the wire
/// encoding (`wireText` parses back to the same value).
enum QMPFuzz {
    struct Outcome: Equatable {
        var messages: [JSONValue] = []
        var failed = false
        var insideMessage = false
    }

    static func decode(_ chunks: [ArraySlice<UInt8>]) -> Outcome {
        var decoder = QMPStreamDecoder()
        var outcome = Outcome()
        for chunk in chunks {
            do {
                outcome.messages += try decoder.feed(chunk)
            } catch {
                outcome.failed = true
                return outcome
            }
        }
        outcome.insideMessage = decoder.isInsideMessage
        return outcome
    }

    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        let whole = decode([data[...]])
        let chunked = decode(Chunks.split(data))
        if whole.failed || chunked.failed {
            try require(whole.failed == chunked.failed, "malformed input fails whole and in chunks alike",
                        "whole failed: \(whole.failed), chunked failed: \(chunked.failed)")
        } else {
            try require(whole == chunked, "the same messages whole and in chunks",
                        "whole: \(whole), chunked: \(chunked)")
        }
        for message in whole.messages {
            let text = message.wireText
            let again: JSONValue
            do { again = try JSONValue(parsing: text) } catch {
                throw FuzzFailure("a decoded message's wire text parses", "\(text): \(error)")
            }
            try require(again == message, "a decoded message survives its wire text",
                        "\(message) → \(text) → \(again)")
        }
    }
}
