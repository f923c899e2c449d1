import CTLS
import UnixSockets

/// The files one side of the API's mutual TLS uses: the CA the other side's certificate must chain to, and this
/// side's certificate and key, named as in a migration TLS folder (`STATE/tls`) by `client(in:)` and `server(in:)`.
public struct TLSFiles: Sendable, Equatable {
    public var caFile: String
    public var certificateFile: String
    public var keyFile: String

    public init(caFile: String, certificateFile: String, keyFile: String) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// `DIR/ca-cert.pem`, `DIR/client-cert.pem`, `DIR/client-key.pem`: a client (a migration source).
    public static func client(in folder: String) -> TLSFiles { named(folder, "client") }

    /// `DIR/ca-cert.pem`, `DIR/server-cert.pem`, `DIR/server-key.pem`: the daemon's listener.
    public static func server(in folder: String) -> TLSFiles { named(folder, "server") }

    private static func named(_ folder: String, _ side: String) -> TLSFiles {
        TLSFiles(caFile: folder + "/ca-cert.pem", certificateFile: folder + "/\(side)-cert.pem",
                 keyFile: folder + "/\(side)-key.pem")
    }
}

/// What an exchange reads from and writes to: the socket itself, or a TLS session over it.
protocol ByteStream: AnyObject {
    func send(_ bytes: [UInt8]) throws(SocketFailure)
    /// Empty at the end of the stream.
    func receive(deadline: ContinuousClock.Instant?) throws(SocketFailure) -> [UInt8]
}

extension StreamSocket: ByteStream {
    func send(_ bytes: [UInt8]) throws(SocketFailure) {
        do throws(StreamSocket.Failure) { try write(bytes) } catch { throw SocketFailure(error) }
    }

    func receive(deadline: ContinuousClock.Instant?) throws(SocketFailure) -> [UInt8] {
        do throws(StreamSocket.Failure) { return try read(deadline: deadline) } catch { throw SocketFailure(error) }
    }
}

/// A TLS client session (OpenSSL, `CTLS`) over a connected `StreamSocket`, which it does not own: the caller closes
/// the socket after `close()`; shutting the socket down ends a blocked read here too.
final class TLSSession: ByteStream {
    private let socket: StreamSocket
    private let session: OpaquePointer

    /// The handshake: the server's certificate must chain to the CA and name `host`; ours goes to the server.
    init(over socket: StreamSocket, host: String, credentials: TLSFiles) throws(SocketFailure) {
        var error = [CChar](repeating: 0, count: 512)
        let session = corral_tls_connect(socket.descriptor, credentials.caFile, credentials.certificateFile,
                                         credentials.keyFile, host, &error, error.count)
        guard let session else {
            if socket.isShutDown { throw .shutDown }
            throw .tls(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.socket = socket
        self.session = session
    }

    func send(_ bytes: [UInt8]) throws(SocketFailure) {
        var error = [CChar](repeating: 0, count: 512)
        let status = bytes.withUnsafeBytes { corral_tls_write(session, $0.baseAddress, $0.count, &error, error.count) }
        if status != 0 { throw failure(error) }
    }

    func receive(deadline: ContinuousClock.Instant?) throws(SocketFailure) -> [UInt8] {
        if let deadline, corral_tls_pending(session) == 0 {
            do throws(StreamSocket.Failure) { try socket.waitUntilReadable(deadline) } catch { throw SocketFailure(error) }
        }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var error = [CChar](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { corral_tls_read(session, $0.baseAddress, $0.count, &error, error.count) }
        if count < 0 { throw failure(error) }
        buffer.removeSubrange(count...)
        return buffer
    }

    private func failure(_ error: [CChar]) -> SocketFailure {
        if socket.isShutDown { return .shutDown }
        return .tls(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Sends close_notify (when the connection still takes it) and frees the session.
    func close() {
        corral_tls_free(session)
    }
}
