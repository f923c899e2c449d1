import CorralControl
import CorralModel
import CorralWire

/// Another host's daemon as `restore` drives it: its TCP API with the cluster-wide admin token.
public struct HTTPClusterPeer: ClusterPeer {
    public let address: HostPort
    public let token: String
    public let tls: TLSFiles?

    public init(address: HostPort, token: String, tls: TLSFiles? = nil) {
        self.address = address
        self.token = token
        self.tls = tls
    }

    public func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError)
        -> AsyncStream<MigrationUpdate>
    {
        let client = CorralClient(endpoint: .tcp(address, token: token), tls: tls)
        let lines: AsyncThrowingStream<MigrationStreamLine, any Error>
        do { lines = try await client.migrate(name, request) } catch {
            throw Self.map(error, host: address)
        }
        let address = self.address
        return AsyncStream { continuation in
            let reader = Task {
                do {
                    for try await line in lines { continuation.yield(line.update) }
                } catch {
                    continuation.yield(.failed(Self.map(error, host: address)))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }

    static func map(_ error: any Error, host: HostPort) -> ControlError {
        if let control = error as? ControlError { return control }
        return .unreachable("host \(host): \(error)")
    }
}
