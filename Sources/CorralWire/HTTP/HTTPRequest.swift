/// One HTTP/1.1 request as the client sends it: `Connection: close`, a body with its length.
package struct HTTPRequest: Sendable, Equatable {
    package var method: String
    /// Path and query, already percent-encoded.
    package var target: String
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]?

    package init(method: String, target: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// The bytes on the wire. `host` is the Host header's value (`localhost` for a Unix socket).
    ///
    /// A header value or target with CR or LF would split the request; such characters are refused by
    /// the callers' encoding (percent-encoded targets, tokens read from files) and replaced here with a
    /// space as the last line of defence.
    package func serialized(host: String) -> [UInt8] {
        func clean(_ text: String) -> String {
            String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\r" || $0 == "\n" ? " " : $0 }))
        }
        var text = "\(method) \(clean(target)) HTTP/1.1\r\nHost: \(clean(host))\r\n"
        for (name, value) in headers { text += "\(clean(name)): \(clean(value))\r\n" }
        if let body {
            text += "Content-Length: \(body.count)\r\n"
        } else if method == "POST" || method == "PUT" {
            text += "Content-Length: 0\r\n"
        }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8) + (body ?? [])
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.body == rhs.body
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}
