import CorralModel
import CorralWire
import CorralControl

/// The peer routes: what one daemon asks another during a migration (`HTTPMigrationPeer`). They live here, not in
/// `CorralWire`, because `IncomingRequest` carries a whole `LiveConfig`, which a CLI has no use for.
extension CorralClient {
    public func prepareIncoming(_ request: IncomingRequest) async throws -> IncomingReply {
        try await call("POST", "/v1/migrations/incoming", body: request, as: IncomingReply.self,
                       timeout: Self.preparePeerTimeout)
    }

    public func commitIncoming(_ name: String) async throws -> VMStatus {
        try await call("POST", "/v1/migrations/incoming/" + Self.percentEncoded(name) + "/commit", as: VMStatus.self,
                       timeout: Self.finishPeerTimeout)
    }

    public func abortIncoming(_ name: String) async throws {
        _ = try await collect(try await send("POST", "/v1/migrations/incoming/" + Self.percentEncoded(name) + "/abort",
                                             body: nil, timeout: Self.finishPeerTimeout))
    }
}
