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

extension ClusterReport {
    /// Where `corral migrate --to NAME` goes: that live host's API address; `--to auto`: the live host other than
    /// this one that owns the fewest VMs (ties by name). The reason when there is none.
    public func destination(_ name: String) -> Result<String, DestinationProblem> {
        guard enabled else {
            return .failure(.init("--to \(name): this daemon is not in a cluster; give the destination as HOST:PORT"))
        }
        if let problem { return .failure(.init("--to \(name): the cluster cannot be read: \(problem)")) }
        let others = hosts.filter { $0.name != host }
        let chosen: Host
        if name == "auto" {
            guard let best = others.min(by: { ($0.vms.count, $0.name) < ($1.vms.count, $1.name) }) else {
                return .failure(.init("--to auto: no other live host in the cluster"))
            }
            chosen = best
        } else {
            guard name != host else { return .failure(.init("--to \(name): that is this host")) }
            guard let named = others.first(where: { $0.name == name }) else {
                let live = hosts.map(\.name).joined(separator: ", ")
                return .failure(.init("--to \(name): no live host of that name in the cluster (live: \(live.isEmpty ? "none" : live))"))
            }
            chosen = named
        }
        guard !chosen.address.isEmpty else {
            return .failure(.init("--to \(name): host \(chosen.name) published no API address "
                + "(start its daemon with --listen or --host-address)"))
        }
        return .success(chosen.address)
    }

    public struct DestinationProblem: Error, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
