import CorralWire

/// The HTTP/1.1 response decoder. The input is what the daemon (or a peer daemon over TCP) answers.
///
/// Properties: the bytes fed whole and in chunks give the same head, the same body bytes and the same ending (or
/// both fail); at most one head, nothing after the end, a three-digit status; a `Content-Length` body that ends
/// has exactly that length.
enum HTTPFuzz {
    struct Outcome: Equatable {
        var heads: [HTTPResponseHead] = []
        var body: [UInt8] = []
        var ended = false
        var failed = false
        var eventsAfterEnd = 0
    }

    static func decode(_ chunks: [ArraySlice<UInt8>]) -> Outcome {
        var decoder = HTTPResponseDecoder()
        var outcome = Outcome()
        func take(_ event: HTTPResponseDecoder.Event?) -> Bool {
            guard let event else { return false }
            if outcome.ended { outcome.eventsAfterEnd += 1 }
            switch event {
            case .head(let head): outcome.heads.append(head)
            case .body(let bytes): outcome.body += bytes
            case .end: outcome.ended = true
            }
            return true
        }
        do {
            for chunk in chunks {
                decoder.feed(chunk)
                while take(try decoder.next()) {}
            }
            while take(try decoder.endOfInput()) {}
        } catch {
            outcome.failed = true
        }
        return outcome
    }

    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        let whole = decode([data[...]])
        let chunked = decode(Chunks.split(data))
        try require(whole == chunked, "the same response whole and in chunks", "whole: \(whole), chunked: \(chunked)")
        try require(whole.heads.count <= 1, "at most one head", "\(whole.heads)")
        try require(whole.eventsAfterEnd == 0, "no event after the end")
        guard let head = whole.heads.first else { return }
        try require((100...999).contains(head.status), "a status has three digits", "\(head.status)")
        if whole.ended, head.header("Transfer-Encoding") == nil, head.status != 204, head.status != 304,
           let length = head.header("Content-Length")
        {
            try require(Int(length) == whole.body.count && length.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                        "a Content-Length body has that length, written in digits",
                        "Content-Length \(length), \(whole.body.count) bytes")
        }
    }
}
