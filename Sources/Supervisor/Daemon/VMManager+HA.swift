import Cluster
import CorralModel
import Foundation
import QEMUCommand

/// High availability in a cluster (docs/cluster.md), once a second:
/// - fencing: an owner that has not renewed its lease for TTL − 3 s pauses its HA VMs, before etcd can let their
///   owner keys expire; once it renews it claims each again: still its own → resumed; another host's → its copy is
///   killed and forgotten here (the disks stay with the new owner);
/// - placement: the elected reconciler gives each HA VM whose owner key is gone (for 2 s) to the live host with the
///   fewest VMs, on that host's lease;
/// - adoption: a host that owns an HA VM it does not have defines and starts it from the config in etcd.
extension VMManager {
    static let fencingMargin: Duration = .seconds(3)
    static let orphanGrace: Duration = .seconds(2)

    func clusterTick() async {
        guard let cluster = options.cluster else { return }
        await publishCapacity(cluster)
        await fence(cluster)
        await reconcile(cluster)
        await adopt(cluster)
    }

    /// Puts an HA VM's live config in etcd (while this host owns it), for whichever host adopts it.
    func publishHA(_ name: String, _ config: LiveConfig) async {
        guard let cluster = options.cluster, config.profile.ha else { return }
        do {
            let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
            try await cluster.publishHA(name, config: json)
        } catch {
            logger.warning("cannot publish an HA VM's config in the cluster", metadata: ["vm": "\(name)", "error": "\(error)"])
        }
    }

    func unpublishHA(_ name: String) async {
        guard let cluster = options.cluster else { return }
        try? await cluster.unpublishHA(name)
    }

    private func fence(_ cluster: ClusterMember) async {
        let since = await cluster.lastRenewal.map { ContinuousClock.now - $0 } ?? .seconds(3600)
        let mustPause = Fencing.mustPause(sinceRenewal: since, ttl: cluster.ttl, margin: Self.fencingMargin)
        for (name, vm) in vms where await vm.config.profile.ha {
            if mustPause {
                guard !fenced.contains(name), await vm.currentState == .running else { continue }
                fenced.insert(name)
                logger.critical("cluster lease not renewed: pausing an HA VM before another host may start it",
                                metadata: ["vm": "\(name)"])
                do { _ = try await pause(name) } catch {
                    logger.error("cannot pause a fenced VM", metadata: ["vm": "\(name)", "error": "\(error)"])
                }
                continue
            }
            guard fenced.contains(name), await cluster.state == .alive else { continue }
            let outcome: Ownership.Outcome
            do { outcome = try await cluster.claim(name) } catch { continue }
            switch outcome {
            case .claimed:
                fenced.remove(name)
                logger.notice("cluster lease renewed: resuming a fenced VM", metadata: ["vm": "\(name)"])
                _ = try? await resume(name)
            case .ownedBy(let owner):
                fenced.remove(name)
                logger.critical("an HA VM now runs on another host: this copy is killed and forgotten",
                                metadata: ["vm": "\(name)", "owner": "\(owner)"])
                await vm.loseToAnotherHost()
                do { try await remove(name, force: true, volumes: .delete) } catch {
                    logger.error("cannot remove a copy that lost its ownership", metadata: ["vm": "\(name)", "error": "\(error)"])
                }
            case .hostNotAlive:
                continue
            }
        }
    }

    private func reconcile(_ cluster: ClusterMember) async {
        guard (try? await cluster.electReconciler()) == true else {
            orphanedSince = [:]
            return
        }
        do {
            let configs = try await cluster.haConfigs()
            let owners = try await cluster.owners()
            let drains = try await cluster.drains()
            // A draining host is given no HA VM.
            let hosts = try await cluster.hosts().filter { drains[$0.name]?.draining != true }
            let now = ContinuousClock.now
            let orphans = configs.keys.filter { owners[$0] == nil }
            orphanedSince = orphanedSince.filter { orphans.contains($0.key) }
            for vm in orphans where orphanedSince[vm] == nil { orphanedSince[vm] = now }
            var counts: [String: Int] = [:]
            for owner in owners.values { counts[owner, default: 0] += 1 }
            let since = orphanedSince
            let assignments = HAPlacement.assign(
                orphans: orphans, orphanedFor: { vm in since[vm].map { now - $0 } ?? .zero }, grace: Self.orphanGrace,
                hosts: hosts.map { HAPlacement.Host(name: $0.name, lease: $0.lease, vms: counts[$0.name] ?? 0) })
            for assignment in assignments {
                if try await cluster.assign(assignment.vm, to: assignment.host, lease: assignment.lease) {
                    orphanedSince[assignment.vm] = nil
                    logger.notice("HA: an orphaned VM was given to a live host",
                                  metadata: ["vm": "\(assignment.vm)", "host": "\(assignment.host)"])
                }
            }
        } catch {
            logger.warning("HA reconciliation failed", metadata: ["error": "\(error)"])
        }
    }

    private func adopt(_ cluster: ClusterMember) async {
        guard await cluster.state == .alive else { return }
        guard let owners = try? await cluster.owners() else { return }
        let mine = owners.filter { $0.value == cluster.host && vms[$0.key] == nil }.map(\.key)
        guard !mine.isEmpty, let configs = try? await cluster.haConfigs() else { return }
        for name in mine.sorted() {
            guard let json = configs[name],
                  let config = try? JSONDecoder().decode(LiveConfig.self, from: Data(json.utf8)),
                  config.profile.name == name else { continue }
            logger.notice("HA: starting a VM this host was given", metadata: ["vm": "\(name)"])
            do {
                _ = try await up(config, UpRequest(profile: "(HA: \(ClusterKeys.ha(name)) in the cluster)"), adopting: true)
            } catch {
                logger.error("HA: cannot start a VM this host was given", metadata: ["vm": "\(name)", "error": "\(error)"])
            }
        }
    }
}
