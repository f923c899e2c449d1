import Cluster
import CorralModel

/// One owner per VM in a cluster (`Ownership`): QEMU starts only after this host's claim succeeded; `rm` gives the
/// claim up; a migration's commit moves it to the destination. Without `--cluster` every call is a no-op.
extension VMManager {
    /// Claims `name` for this host, or refuses naming the owner (or why the cluster cannot be asked).
    func claimOwnership(_ name: String) async throws(ControlError) {
        guard let cluster = options.cluster else { return }
        let outcome: Ownership.Outcome
        do { outcome = try await cluster.claim(name) } catch {
            throw .unreachable("cannot claim \(name) in the cluster, so it was not started: \(error)")
        }
        switch outcome {
        case .claimed:
            return
        case .ownedBy(let owner):
            throw .conflict("\(name) is owned by host \(owner) in the cluster (one host runs a VM at a time): "
                + "start it there, or migrate it here")
        case .hostNotAlive:
            throw .unreachable("this host (\(cluster.host)) has no live lease in the cluster, so it owns nothing and "
                + "\(name) was not started; it rejoins on its own once etcd answers")
        }
    }

    /// Gives `name` up (it was removed here); failures are logged, the key then lapses with this host's lease.
    func releaseOwnership(_ name: String) async {
        guard let cluster = options.cluster else { return }
        do { try await cluster.release(name) } catch {
            logger.warning("cannot release a VM in the cluster", metadata: ["vm": "\(name)", "error": "\(error)"])
        }
    }

    /// The migration commit on this (destination) host.
    func takeOverOwnership(_ name: String) async throws(ControlError) {
        guard let cluster = options.cluster else { return }
        let outcome: Ownership.Outcome
        do { outcome = try await cluster.takeOver(name) } catch {
            throw .unreachable("cannot move \(name)'s ownership here in the cluster: \(error)")
        }
        guard outcome == .claimed else {
            throw .unreachable("this host (\(cluster.host)) has no live lease in the cluster; \(name) stays with its source")
        }
    }

    /// At daemon start: every VM defined here is claimed again (onto this daemon's lease). An HA VM another host owns
    /// now was restarted there while this daemon was away: its copy here is killed and forgotten. Any other VM owned
    /// elsewhere is reported, not touched.
    func reclaimOwnership() async {
        guard options.cluster != nil else { return }
        for name in vms.keys.sorted() {
            do { try await claimOwnership(name) } catch {
                guard case .conflict = error, let vm = vms[name], await vm.config.profile.ha else {
                    logger.error("a VM of this host is not owned here in the cluster", metadata: ["vm": "\(name)", "why": "\(error)"])
                    continue
                }
                logger.critical("an HA VM was restarted on another host while this daemon was away: this copy is killed and forgotten",
                                metadata: ["vm": "\(name)", "why": "\(error)"])
                await vm.loseToAnotherHost()
                do { try await remove(name, force: true) } catch {
                    logger.error("cannot remove a copy that lost its ownership", metadata: ["vm": "\(name)", "error": "\(error)"])
                }
            }
        }
    }
}

extension VMManager {
    /// The cluster's hosts and who owns which VM, read from etcd now.
    public func cluster() async -> ClusterReport {
        guard let cluster = options.cluster else { return ClusterReport(enabled: false) }
        let state = await cluster.state.rawValue
        do {
            let hosts = try await cluster.hosts()
            let owners = try await cluster.store.list(prefix: ClusterKeys.root + "vms/")
                .filter { $0.key.hasSuffix("/owner") }
                .map { (vm: String($0.key.dropFirst((ClusterKeys.root + "vms/").count).dropLast("/owner".count)), owner: $0.value) }
            let live = Set(hosts.map(\.name))
            return ClusterReport(
                enabled: true, host: cluster.host, state: state,
                hosts: hosts.map { host in
                    ClusterReport.Host(name: host.name, address: host.record?.address ?? "",
                                       vms: owners.filter { $0.owner == host.name }.map(\.vm).sorted())
                },
                orphans: owners.filter { !live.contains($0.owner) }.map(\.vm).sorted())
        } catch {
            return ClusterReport(enabled: true, host: cluster.host, state: state, problem: error.description)
        }
    }
}
