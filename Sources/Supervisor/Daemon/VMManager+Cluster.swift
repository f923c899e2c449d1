import Cluster
import CorralControl
import CorralCore
import CorralModel
import Foundation
import Profiles

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

    /// The migration commit on this (destination) host; returns who owned the VM before.
    func takeOverOwnership(_ name: String) async throws(ControlError) -> String? {
        guard let cluster = options.cluster else { return nil }
        let taken: (outcome: Ownership.Outcome, previous: String?)
        do { taken = try await cluster.takeOver(name) } catch {
            throw .unreachable("cannot move \(name)'s ownership here in the cluster: \(error)")
        }
        guard taken.outcome == .claimed else {
            throw .unreachable("this host (\(cluster.host)) has no live lease in the cluster; \(name) stays with its source")
        }
        return taken.previous
    }

    /// The commit failed after the ownership moved here: the source resumes the guest, so it owns it again.
    func handBackOwnership(_ name: String, to previous: String?) async {
        guard let cluster = options.cluster else { return }
        do { try await cluster.handBack(name, to: previous) } catch {
            logger.error("cannot hand a VM's ownership back after a failed commit",
                         metadata: ["vm": "\(name)", "to": "\(previous ?? "-")", "error": "\(error)"])
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
                do { try await remove(name, force: true, volumes: .delete) } catch {
                    logger.error("cannot remove a copy that lost its ownership", metadata: ["vm": "\(name)", "error": "\(error)"])
                }
            }
        }
    }
}

extension VMManager {
    /// The cluster's hosts (their capacity and drain) and who owns which VM, read from etcd now.
    public func cluster() async -> ClusterReport {
        guard let cluster = options.cluster else { return ClusterReport(enabled: false) }
        let state = await cluster.state.rawValue
        do {
            let hosts = try await cluster.hosts()
            let owners = try await cluster.owners()
            let drains = try await cluster.drains()
            let live = Set(hosts.map(\.name))
            return ClusterReport(
                enabled: true, host: cluster.host, state: state,
                hosts: hosts.map { host in
                    ClusterReport.Host(name: host.name, address: host.record?.address ?? "",
                                       vms: owners.filter { $0.value == host.name }.map(\.key).sorted(),
                                       capacity: host.record?.capacity,
                                       draining: drains[host.name]?.draining ?? false,
                                       moved: drains[host.name]?.moved ?? [:])
                },
                orphans: owners.filter { !live.contains($0.value) }.map(\.key).sorted())
        } catch {
            return ClusterReport(enabled: true, host: cluster.host, state: state, problem: error.description)
        }
    }

    /// Where a request about another host's VM (or about another host) goes: that host's published API address.
    public func forwardTarget(_ subject: ForwardSubject) async -> ForwardTarget? {
        guard let cluster = options.cluster else { return nil }
        let host: String
        switch subject {
        case .vm(let name):
            guard vms[name] == nil, broken[name] == nil,
                  let owner = try? await cluster.owner(of: name), owner != cluster.host else { return nil }
            host = owner
        case .host(let name):
            guard name != cluster.host else { return nil }
            host = name
        }
        guard let record = try? await cluster.hosts().first(where: { $0.name == host })?.record,
              let address = try? HostPort(parsing: record.address) else { return nil }
        return ForwardTarget(host: host, address: address)
    }

    /// The host CPU model (/proc/cpuinfo) and the default QEMU's version, read once.
    func hostFactsRead() async -> (cpuModel: String, qemuVersion: String?) {
        if let hostFacts { return hostFacts }
        let cpuinfo = (try? FileOps.readText(options.hostRoot + "/proc/cpuinfo")) ?? nil
        let model = cpuinfo.flatMap { text in
            text.split(separator: "\n").first { $0.hasPrefix("model name") }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        } ?? "unknown"
        var version: String?
        if let qemu = HostProbe.findExecutable(QEMUSettings().binary),
           let run = try? await ProcessLauncher.run(qemu, ["--version"]), run.status == .exited(0) {
            // "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"
            version = run.output.split(separator: " ").drop { $0 != "version" }.dropFirst().first.map(String.init)
        }
        hostFacts = (model, version)
        return (model, version)
    }

    /// Publishes this host's capacity and what it has committed (only when it changed).
    func publishCapacity(_ cluster: ClusterMember) async {
        let probe = HostMemoryProbe(root: options.hostRoot)
        guard let memory = try? probe.memory(), let cpus = try? probe.cpuCount() else { return }
        var committed = Admission.Load.zero
        for vm in vms.values {
            if let load = await vm.committedLoad { committed = committed + load }
        }
        let facts = await hostFactsRead()
        let capacity = HostCapacity(cpus: cpus, memoryBytes: memory.total, cpuRatioLimit: options.limits.cpuRatio,
                                    memoryRatioLimit: options.limits.memoryRatio, committedVCPUs: committed.vcpus,
                                    committedMemoryBytes: committed.memory, cpuModel: facts.cpuModel,
                                    qemuVersion: facts.qemuVersion)
        do { try await cluster.publish(capacity: capacity) } catch {
            logger.debug("cannot publish this host's capacity", metadata: ["error": "\(error)"])
        }
    }
}
