/// Where corral keeps its state in etcd, and the pure rules of VM ownership: which transaction claims a VM and what
/// its answer means. The effects (`ClusterMember`) run these against a `ClusterStore`.
public enum ClusterKeys {
    public static let root = "corral/"
    /// A live host: its `HostRecord`, on the host's lease (gone within the TTL when the host stops renewing).
    public static func host(_ name: String) -> String { root + "hosts/" + name }
    public static let hostsPrefix = root + "hosts/"
    /// The host that may run the VM, on that host's lease.
    public static func owner(_ vm: String) -> String { root + "vms/" + vm + "/owner" }
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
