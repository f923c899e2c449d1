#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CTLS
import Synchronization
import UnixSockets

/// Why a WebSocket to the daemon failed or ended.
public enum WebSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The daemon could not be reached.
    case connect(String)
    /// The daemon answered the upgrade with an HTTP error (its message).
    case refused(status: Int, message: String)
    /// The daemon closed with a refusal (`4000 + HTTP status`) and its reason.
    case closed(code: UInt16, reason: String)
    case protocolError(String)
    case io(String)
    /// Nothing arrived before the deadline `receive` was given.
    case timedOut

    public var description: String {
        switch self {
        case .connect(let why): return "cannot reach the corral daemon: \(why)"
        case .refused(_, let message): return message
        case .closed(_, let reason): return reason
        case .protocolError(let why): return "the daemon's WebSocket broke the protocol: \(why)"
        case .io(let why): return "the connection to the daemon failed: \(why)"
        case .timedOut: return "nothing arrived from the daemon in time"
        }
    }

    /// The error the daemon meant, when it said one (a refusal's HTTP status).
    public var status: Int? {
        switch self {
        case .refused(let status, _): return status
        case .closed(let code, _) where (4000..<5000).contains(code): return Int(code) - 4000
        default: return nil
        }
    }
}

/// A blocking WebSocket client to one of the daemon's byte-stream routes (`/v1/vms/NAME/console/attach`,
/// `/v1/vms/NAME/vnc`). `send` and `receive` may run on two threads: the stream underneath (a socket, or a TLS
/// session that must not be used by two threads at once) is used under a lock, and `receive` waits for input in
/// short slices so a `send` is never held up for long.
public final class WebSocketConnection: @unchecked Sendable {
    private let socket: StreamSocket
    private let stream: any ByteStream
    private let lock = Mutex(())
    private var decoder = WebSocketFrameDecoder()
    private var closed = false

    private init(socket: StreamSocket, stream: any ByteStream, leftover: [UInt8]) {
        self.socket = socket
        self.stream = stream
        decoder.feed(leftover)
    }

    /// Connects as `client` would (its socket or TCP address, token and TLS) and upgrades `path`.
    /// `headers` go with the upgrade request as they are (a browser's `Cookie` and `Origin`, in tests); a name or
    /// value with a line break is refused.
    public static func open(_ client: CorralClient, path: String, timeout: Double = 10,
                            headers: [(String, String)] = []) throws(WebSocketError) -> WebSocketConnection
    {
        for (name, value) in headers where (name + value).contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw .protocolError("header \(name) holds a line break")
        }
        let socket: StreamSocket
        var token: String?
        var host = "localhost"
        do throws(SocketFailure) {
            switch client.endpoint {
            case .unixSocket(let path):
                do throws(UnixStreamConnect.Failure) { socket = try StreamSocket.connect(path: path) } catch {
                    throw SocketFailure(error)
                }
            case .tcp(let address, let bearer):
                socket = try TCPConnect.connect(host: address.host, port: address.port, timeout: timeout)
                token = bearer
                host = address.description
            }
        } catch {
            throw .connect(error.message)
        }
        let stream: any ByteStream
        if case .tcp(let address, _) = client.endpoint, let tls = client.tls {
            do throws(SocketFailure) { stream = try TLSSession(over: socket, host: address.host, credentials: tls) } catch {
                socket.close()
                throw .connect(error.message)
            }
        } else {
            stream = socket
        }
        do throws(WebSocketError) {
            let leftover = try handshake(stream, host: host, path: path, token: token, headers: headers, timeout: timeout)
            return WebSocketConnection(socket: socket, stream: stream, leftover: leftover)
        } catch {
            (stream as? TLSSession)?.close()
            socket.close()
            throw error
        }
    }

    /// The GUID RFC 6455 appends to the key.
    static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    static func acceptValue(for key: String) -> String {
        var digest = [UInt8](repeating: 0, count: 20)
        let text = Array((key + acceptGUID).utf8)
        corral_sha1(text, text.count, &digest)
        return Data(digest).base64EncodedString()
    }

    /// Sends the upgrade request and reads the answer's head; the bytes after it (the first frames).
    private static func handshake(_ stream: any ByteStream, host: String, path: String, token: String?,
                                  headers: [(String, String)], timeout: Double) throws(WebSocketError) -> [UInt8] {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if let token, !token.isEmpty { request += "Authorization: Bearer \(token)\r\n" }
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int64(timeout * 1000)))
        var received: [UInt8] = []
        do {
            try stream.send(Array(request.utf8))
            while true {
                if let end = headEnd(received) {
                    let head = String(decoding: received[..<end], as: UTF8.self)
                    let rest = Array(received[(end + 4)...])
                    try checkHead(head, key: key, rest: rest, stream: stream, deadline: deadline)
                    return rest
                }
                guard received.count < 64 << 10 else { throw WebSocketError.protocolError("an answer head over 64 KiB") }
                let bytes = try stream.receive(deadline: deadline)
                if bytes.isEmpty { throw WebSocketError.protocolError("the daemon closed during the upgrade") }
                received += bytes
            }
        } catch let error as WebSocketError {
            throw error
        } catch let error as SocketFailure {
            throw .io(error.message)
        } catch {
            throw .io("\(error)")
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10
            && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    private static func checkHead(_ head: String, key: String, rest: [UInt8], stream: any ByteStream,
                                  deadline: ContinuousClock.Instant) throws -> Void {
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let status = lines.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
                .reversed().drop { $0 == " " || $0 == "\t" }.reversed().map(String.init).joined()
        }
        guard status == 101 else {
            // An error answer: its JSON body's message, read as far as the head's length says.
            var body = rest
            let length = headers["content-length"].flatMap { Int($0) } ?? 0
            while body.count < min(length, 1 << 20) {
                let more = try stream.receive(deadline: deadline)
                if more.isEmpty { break }
                body += more
            }
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(body)))?.message
                ?? "the daemon answered \(status) instead of switching to a WebSocket"
            throw WebSocketError.refused(status: status, message: message)
        }
        guard headers["upgrade"]?.lowercased() == "websocket",
              headers["sec-websocket-accept"] == acceptValue(for: key) else {
            throw WebSocketError.protocolError("the upgrade answer lacks a valid Sec-WebSocket-Accept")
        }
    }

    /// Sends `bytes` as one binary message.
    public func send(_ bytes: [UInt8]) throws(WebSocketError) {
        try sendFrame(.binary, bytes)
    }

    /// Sends UTF-8 `bytes` as one text message (for servers that take only text, such as a browser's DevTools).
    public func sendText(_ bytes: [UInt8]) throws(WebSocketError) {
        try sendFrame(.text, bytes)
    }

    private func sendFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8]) throws(WebSocketError) {
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        let frame = WebSocketFrames.encode(opcode, payload, mask: mask)
        let result: Result<Void, SocketFailure> = lock.withLock { _ in
            Result { () throws(SocketFailure) in try stream.send(frame) }
        }
        if case .failure(let error) = result { throw .io(error.message) }
    }

    /// The next message's bytes; nil once the daemon closed normally. A refusal or a broken stream throws, and so
    /// does reaching `deadline` without a message.
    public func receive(deadline: ContinuousClock.Instant? = nil) throws(WebSocketError) -> [UInt8]? {
        while true {
            let event: WebSocketEvent?
            do { event = try lock.withLock { _ throws(WebSocketFrameError) in try decoder.next() } } catch {
                throw .protocolError(error.description)
            }
            switch event {
            case .message(let bytes)?: return bytes
            case .ping(let payload)?: try sendFrame(.pong, payload)
            case .pong?: continue
            case .close(let code, let reason)?:
                try? sendFrame(.close, WebSocketFrames.closePayload(code: code == 1005 ? 1000 : code, reason: ""))
                if code == 1000 || code == 1005 { return nil }
                throw .closed(code: code, reason: reason)
            case nil:
                let bytes: Result<[UInt8], SocketFailure> = lock.withLock { _ in
                    Result { () throws(SocketFailure) in
                        try stream.receive(deadline: ContinuousClock.now.advanced(by: .milliseconds(20)))
                    }
                }
                switch bytes {
                case .success(let data):
                    if data.isEmpty { return nil }
                    lock.withLock { _ in decoder.feed(data) }
                case .failure(.timedOut):
                    if let deadline, ContinuousClock.now >= deadline { throw .timedOut }
                    continue
                case .failure(let error):
                    throw .io(error.message)
                }
            }
        }
    }

    /// A normal close, then the connection goes.
    public func close() {
        try? sendFrame(.close, WebSocketFrames.closePayload(code: 1000, reason: ""))
        socket.shutdown()
        (stream as? TLSSession)?.close()
        socket.close()
    }
}
