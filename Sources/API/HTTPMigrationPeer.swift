import CorralModel
import CorralWire
import CorralControl

/// The destination daemon as the source sees it: its TCP API, with the destination's token.
///
/// Every failure becomes a `ControlError` whose message names the destination
/// ("destination 192.0.2.2:7070: …"), so the user of `corral migrate` knows which side spoke.
public struct HTTPMigrationPeer: MigrationPeer {
    /// The destination daemon's TCP API: `192.0.2.2:7070`, `[2001:db8::2]:7070` in messages.
    public let address: HostPort
    public let token: String?
    /// Mutual TLS towards the destination (this daemon started with `--api-tls`).
    public let tls: TLSFiles?

    public init(address: HostPort, token: String?, tls: TLSFiles? = nil) {
        self.address = address
        self.token = token
        self.tls = tls
    }

    public func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        try await calling { try await $0.prepareIncoming(request) }
    }

    public func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        try await calling { try await $0.commitIncoming(name) }
    }

    public func abortIncoming(_ name: String) async throws(ControlError) {
        try await calling { try await $0.abortIncoming(name) }
    }

    public func state(of name: String) async throws(ControlError) -> VMState? {
        do {
            return try await calling { try await $0.status(name).state }
        } catch .notFound {
            return nil
        }
    }

    /// One client per call: a migration makes three calls at most, minutes apart.
    private func calling<T: Sendable>(_ body: (CorralClient) async throws -> T) async throws(ControlError) -> T {
        let endpoint = CorralClient.Endpoint.tcp(address, token: token ?? "")
        do {
            return try await CorralClient.withClient(endpoint, tls: tls, body)
        } catch {
            throw map(error)
        }
    }

    /// The peer's own answers keep their kind (its internal error stays internal); transport failures become
    /// `unreachable`, so the migration can tell "the destination said no" from "the destination is gone".
    func map(_ error: any Error) -> ControlError {
        let prefix = "destination \(address): "
        switch error {
        case let control as ControlError:
            switch control {
            case .invalidProfile: return control
            case .invalidRequest(let m): return .invalidRequest(prefix + m)
            case .notFound(let m): return .notFound(prefix + m)
            case .conflict(let m): return .conflict(prefix + m)
            case .startFailed(let reason, let output): return .startFailed(reason: prefix + reason, qemuOutput: output)
            case .qmp(let failure): return .qmp(failure.noting("on destination \(address)"))
            case .unreachable(let m): return .unreachable(prefix + m)
            case .refused(let m): return .refused(prefix + m)
            case .internalError(let m): return .internalError(prefix + m)
            }
        case let client as CorralClientError:
            switch client {
            case .unauthorized:
                return .refused(prefix + (token == nil
                    ? "the daemon wants a token; pass the destination's token file with --token-file"
                    : "the daemon refused the token; pass the destination's token file with --token-file"))
            case .notSupported(let m), .forbidden(let m):
                return .refused(prefix + m)
            case .noDaemon(let m), .transport(let m), .badResponse(let m):
                return .unreachable(prefix + m)
            }
        case is CancellationError:
            return .unreachable(prefix + "the call was cancelled")
        default:
            return .unreachable(prefix + "\(error)")
        }
    }
}
