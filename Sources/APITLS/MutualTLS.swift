import API
import CorralWire
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// The API's mutual TLS listener (`corrald --api-tls`): swift-nio-ssl under Hummingbird.
public struct MutualTLS: TLSServerWrapping {
    public init() {}

    public func wrap(_ server: HTTPServerBuilder, files: TLSFiles) throws(DaemonError)
        -> HTTPServerBuilder
    {
        do {
            return try .tls(server, tlsConfiguration: try Self.configuration(files))
        } catch let error as DaemonError {
            throw error
        } catch {
            throw .invalidConfiguration("--api-tls: \(error)")
        }
    }

    /// Loads the `--api-tls` files as the listener will, so a bad one stops the daemon before it serves anything.
    public static func check(_ files: TLSFiles) throws(DaemonError) {
        _ = try configuration(files)
    }

    /// The TCP listener's TLS: the daemon's certificate and key, and a client certificate required, chained to the
    /// CA (no host name check on clients: a peer daemon connects from whichever address it has). TLS 1.2 or later.
    static func configuration(_ files: TLSFiles) throws(DaemonError) -> TLSConfiguration {
        for (what, path) in [("CA certificate", files.caFile), ("certificate", files.certificateFile),
                             ("key", files.keyFile)] where access(path, R_OK) != 0 {
            throw .invalidConfiguration("--api-tls: the \(what) \(path) cannot be read (\(String(cString: strerror(errno)))); "
                + "it needs ca-cert.pem, server-cert.pem and server-key.pem (the migration TLS folder)")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificateFile).map { NIOSSLCertificateSource.certificate($0) }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: files.keyFile, format: .pem)))
            configuration.trustRoots = .file(files.caFile)
            configuration.certificateVerification = .noHostnameVerification
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw .invalidConfiguration("--api-tls: cannot load the daemon's certificate or key: \(error)")
        }
    }
}

