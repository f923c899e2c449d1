import CorralModel
import JSON
import QEMUCommand

/// Live migration between daemons (`corral migrate`).
public protocol MigrationControl: Sendable {
    /// Source side: starts migrating `name` to the daemon at `request.to`. Throws at once when the request is
    /// invalid or the VM cannot migrate now; otherwise returns the migration's updates: progress as it comes, then
    /// exactly one `.completed` (the destination owns the VM) or `.failed` (the error says where the VM is).
    /// The migration belongs to the daemon: dropping the stream does not stop it (`cancelMigration` does).
    func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> AsyncStream<MigrationUpdate>
    /// Source side: cancels a running migration (the source keeps the VM).
    func cancelMigration(_ name: String) async throws(ControlError)
    /// Destination side: start QEMU waiting for the stream; answer where to send it.
    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply
    /// Destination side: the source finished; take ownership.
    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus
    /// Destination side: the source gave up; remove everything.
    func abortIncoming(_ name: String) async throws(ControlError)
}

/// The other daemon, as the source sees it (HTTP over TCP with a token in production).
public protocol MigrationPeer: Sendable {
    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply
    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus
    func abortIncoming(_ name: String) async throws(ControlError)
    /// The VM's state on the peer; nil when the peer has no such VM (a restarted source resolves an interrupted
    /// migration with it).
    func state(of name: String) async throws(ControlError) -> VMState?
}

extension MigrationPeer {
    public func state(of name: String) async throws(ControlError) -> VMState? {
        throw .unreachable("this peer cannot be asked about \(name)")
    }
}

extension MigrationControl {
    /// Migrates and waits for the outcome.
    public func migrateAndWait(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> MigrationResult {
        for await update in try await migrate(name, request) {
            switch update {
            case .progress: continue
            case .completed(let result): return result
            case .failed(let error): throw error
            }
        }
        throw .internalError("the migration of \(name) ended without an outcome")
    }
}

/// Makes a peer for the daemon at `destination` with an optional bearer token.
public typealias MigrationPeerConnector = @Sendable (_ destination: HostPort, _ token: String?) -> any MigrationPeer


public struct IncomingRequest: Sendable, Codable, Equatable {
    public var config: LiveConfig
    public var accel: ResolvedAccel
    public var options: MigrationOptions
    /// The address the source reached this daemon at (`HostPort.host`: no brackets); QEMU listens there for the
    /// stream.
    public var listenHost: String
    /// Virtual sizes of the source's disks by disk id (for `--with-storage`).
    public var diskSizes: [String: UInt64]

    public init(config: LiveConfig, accel: ResolvedAccel, options: MigrationOptions, listenHost: String,
                diskSizes: [String: UInt64] = [:]) {
        self.config = config
        self.accel = accel
        self.options = options
        self.listenHost = listenHost
        self.diskSizes = diskSizes
    }
}

public struct IncomingReply: Sendable, Codable, Equatable {
    /// Where the source sends the migration stream, e.g. `tcp:192.0.2.2:49152`, `tcp:[2001:db8::2]:49152`.
    public var uri: String
    /// NBD server for `--with-storage`: host (no brackets), port and the export name per disk id.
    public var nbdHost: String?
    public var nbdPort: Int?
    public var exports: [String: String]

    public init(uri: String, nbdHost: String? = nil, nbdPort: Int? = nil, exports: [String: String] = [:]) {
        self.uri = uri
        self.nbdHost = nbdHost
        self.nbdPort = nbdPort
        self.exports = exports
    }
}
