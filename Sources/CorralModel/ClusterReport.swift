/// `GET /v1/cluster`: the cluster as this daemon sees it in etcd. Without `--cluster`, `enabled` is false and the
/// lists are empty.
public struct ClusterReport: Sendable, Codable, Equatable {
    public struct Host: Sendable, Codable, Equatable {
        public var name: String
        /// Where its API listens, as it published it.
        public var address: String
        /// The VMs it owns.
        public var vms: [String]

        public init(name: String, address: String, vms: [String]) {
            self.name = name
            self.address = address
            self.vms = vms
        }
    }

    public var enabled: Bool
    /// This daemon's host name.
    public var host: String?
    /// `alive`, `unreachable` (its last renewal failed) or `joining` (no lease).
    public var state: String?
    /// Live hosts (a host whose lease expired is not listed), by name.
    public var hosts: [Host]
    /// VMs whose owner key names a host that is no longer live (their owner's lease keeps the key, so normally none).
    public var orphans: [String]
    /// Why the cluster could not be read, when it could not.
    public var problem: String?

    public init(enabled: Bool, host: String? = nil, state: String? = nil, hosts: [Host] = [], orphans: [String] = [],
                problem: String? = nil) {
        self.enabled = enabled
        self.host = host
        self.state = state
        self.hosts = hosts
        self.orphans = orphans
        self.problem = problem
    }
}
