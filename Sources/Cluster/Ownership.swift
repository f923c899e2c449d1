/// Where corral keeps its state in etcd, and the pure rules of VM ownership: which transaction claims a VM and what
/// its answer means. The effects (`ClusterMember`) run these against a `ClusterStore`.
public enum ClusterKeys {
    public static let root = "corral/"
    /// A live host: its `HostRecord`, on the host's lease (gone within the TTL when the host stops renewing).
    public static func host(_ name: String) -> String { root + "hosts/" + name }
    public static let hostsPrefix = root + "hosts/"
    /// The host that may run the VM, on that host's lease.
    public static func owner(_ vm: String) -> String { root + "vms/" + vm + "/owner" }
    public static let vmsPrefix = root + "vms/"
    /// An HA VM's live config (JSON), so that another host can start it; no lease: it outlives its owner.
    public static func ha(_ vm: String) -> String { root + "ha/" + vm }
    public static let haPrefix = root + "ha/"
    /// A host's `DrainRecord` (`corral host evacuate`); no lease: a drain outlives the daemon.
    public static func drain(_ host: String) -> String { root + "drain/" + host }
    public static let drainPrefix = root + "drain/"
    /// The one host that places orphaned HA VMs, on its lease.
    public static let reconciler = root + "reconciler"
}

/// When an owner pauses its HA VMs: once the last renewal is older than the lease's TTL minus `margin`, i.e. before
/// etcd can let the owner key expire and another host start the VM.
public enum Fencing {
    public static func mustPause(sinceRenewal: Duration, ttl: Int, margin: Duration) -> Bool {
        sinceRenewal >= .seconds(ttl) - margin
    }
}

/// The elected reconciler's placement of HA VMs that have lost their owner (pure).
public enum HAPlacement {
    public struct Host: Sendable, Equatable {
        public var name: String
        public var lease: Int64
        public var vms: Int
        public init(name: String, lease: Int64, vms: Int) {
            self.name = name
            self.lease = lease
            self.vms = vms
        }
    }

    public struct Assignment: Sendable, Equatable {
        public var vm: String
        public var host: String
        public var lease: Int64
    }

    /// Each orphan (an HA VM with no owner key) that has been orphaned for at least `grace` goes to the live host
    /// with the fewest VMs (counting the ones assigned in this round; ties by name).
    public static func assign(orphans: [String], orphanedFor: (String) -> Duration, grace: Duration,
                              hosts: [Host]) -> [Assignment] {
        var load = hosts
        var assignments: [Assignment] = []
        for vm in orphans.sorted() where orphanedFor(vm) >= grace {
            guard let index = load.indices.min(by: { (load[$0].vms, load[$0].name) < (load[$1].vms, load[$1].name) })
            else { break }
            assignments.append(Assignment(vm: vm, host: load[index].name, lease: load[index].lease))
            load[index].vms += 1
        }
        return assignments
    }
}

public enum Ownership {
    public enum Outcome: Sendable, Equatable {
        /// The owner key now names this host, on its current lease.
        case claimed
        /// Another host owns the VM.
        case ownedBy(String)
        /// This host's own key is gone (its lease expired): it may not claim anything until it has joined again.
        case hostNotAlive
    }

    /// The claim: the owner key absent and this host alive → the owner key, on this host's lease. Otherwise the
    /// owner and this host's key are read back, to tell which condition failed.
    public static func claim(vm: String, host: String, lease: Int64)
        -> (compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
    {
        ([.absent(ClusterKeys.owner(vm)), .present(ClusterKeys.host(host))],
         [.put(ClusterKeys.owner(vm), host, lease: lease)],
         [.get(ClusterKeys.owner(vm)), .get(ClusterKeys.host(host))])
    }

    /// The claim of a VM this host already owns, perhaps on a lease from before a daemon restart: moved to `lease`
    /// only while the owner key still names this host and this host is alive.
    public static func renew(vm: String, host: String, lease: Int64)
        -> (compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
    {
        ([.valueEquals(ClusterKeys.owner(vm), host), .present(ClusterKeys.host(host))],
         [.put(ClusterKeys.owner(vm), host, lease: lease)],
         [.get(ClusterKeys.owner(vm)), .get(ClusterKeys.host(host))])
    }

    /// What a failed claim (or renewal) read means. nil: the owner key names this host (renew it).
    public static func refusal(afterFailed result: ClusterTransactionResult, host: String) -> Outcome? {
        let owner = result.reads.first ?? nil
        let alive = result.reads.count > 1 && result.reads[1] != nil
        guard alive else { return .hostNotAlive }
        guard let owner else { return nil }
        return owner.value == host ? nil : .ownedBy(owner.value)
    }

    /// The release: the owner key goes only while it still names this host.
    public static func release(vm: String, host: String)
        -> (compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
    {
        ([.valueEquals(ClusterKeys.owner(vm), host)], [.delete(ClusterKeys.owner(vm))], [])
    }
}
