import CorralModel

/// The cluster operations (`corral cluster ls`, `migrate --to NAME|auto`, `host evacuate|restore`) and where a
/// request about another host's VM goes.
public protocol ClusterControl: Sendable {
    /// The cluster as this daemon sees it (`GET /v1/cluster`).
    func cluster() async -> ClusterReport
    /// Where `name` (a VM of this host) would go for `--to HOST|auto`, or why it cannot.
    func placement(_ name: String, to: String) async throws(ControlError) -> PlacementReply
    /// Marks this host (`host` must name it) draining and live-migrates its running VMs away, `parallel` at a time.
    func evacuate(_ host: String, _ request: EvacuateRequest) async throws(ControlError) -> AsyncStream<EvacuationUpdate>
    /// Ends this host's drain and brings back the VMs the evacuation moved (each from wherever it runs now).
    func restore(_ host: String, _ request: EvacuateRequest) async throws(ControlError) -> AsyncStream<EvacuationUpdate>
    /// Where a request about `target` belongs when it is not this daemon's: the owning (or named) host's API.
    func forwardTarget(_ target: ForwardSubject) async -> ForwardTarget?
}

public enum ForwardSubject: Sendable, Equatable {
    /// A VM by name: its owner in the cluster.
    case vm(String)
    /// A host by name (`hosts/{name}/…`).
    case host(String)
}

public struct ForwardTarget: Sendable, Equatable {
    public var host: String
    public var address: HostPort

    public init(host: String, address: HostPort) {
        self.host = host
        self.address = address
    }
}

extension ClusterControl {
    public func placement(_ name: String, to: String) async throws(ControlError) -> PlacementReply {
        throw .refused("this daemon is not in a cluster")
    }
    public func evacuate(_ host: String, _ request: EvacuateRequest) async throws(ControlError)
        -> AsyncStream<EvacuationUpdate>
    {
        throw .refused("this daemon is not in a cluster")
    }
    public func restore(_ host: String, _ request: EvacuateRequest) async throws(ControlError)
        -> AsyncStream<EvacuationUpdate>
    {
        throw .refused("this daemon is not in a cluster")
    }
    public func forwardTarget(_ target: ForwardSubject) async -> ForwardTarget? { nil }
}

/// Another daemon of the cluster, as this one drives it for `restore` (HTTP over TCP with the cluster-wide admin
/// token in production).
public protocol ClusterPeer: Sendable {
    /// Asks the peer to live-migrate its VM `name` to `to`; the peer's migration updates as they come.
    func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> AsyncStream<MigrationUpdate>
}

public typealias ClusterPeerConnector = @Sendable (_ address: HostPort) -> any ClusterPeer
