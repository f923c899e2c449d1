import CorralControl
import CorralCore
import Foundation
import CorralModel
import Profiles
import QEMUCommand

/// Overcommit at the daemon level: admission control, the balloon/KSM policy tick, `corral host`.
extension VMManager: TuningControl {
    public func balloon(_ name: String, size: String) async throws(ControlError) -> VMStatus {
        do { try BalloonRequest(size: size).validate() } catch { throw ControlError(error) }
        return try await queued(name) { vm throws(ControlError) in try await vm.setBalloon(size) }
    }

    public func stats(_ name: String) async throws(ControlError) -> GuestStats {
        let vm = try vm(name)
        return try await vm.guestStats()
    }

    public func setTuning(_ name: String, _ request: TuningRequest) async throws(ControlError) -> VMStatus {
        do { try request.validate() } catch { throw ControlError(error) }
        return try await queued(name) { vm throws(ControlError) in try await vm.setTuning(request) }
    }

    public func host() async -> HostReport {
        var rows: [HostReport.Row] = []
        for name in vms.keys.sorted() {
            if let vm = vms[name] { rows.append(await vm.hostRow()) }
        }
        return hostReport(rows: rows)
    }

    /// `corral host` over the VMs' rows (sorted by name): the host's figures are read here.
    func hostReport(rows: [HostReport.Row]) -> HostReport {
        let probe = HostMemoryProbe(root: options.hostRoot)
        let memory = (try? probe.memory()) ?? HostMemory(total: 0, available: 0)
        let cpus = (try? probe.cpuCount()) ?? 1
        let active = rows.filter { [.starting, .running, .paused, .migrating, .incoming].contains($0.state) }
        let committedCPUs = Double(active.reduce(0) { $0 + $1.vcpus })
        let committedMemory = Double(active.reduce(0) { $0 + $1.memoryBytes })
        let ksm = KSMControl(root: options.hostRoot)
        let status = ksm.isAvailable ? try? ksm.status() : nil
        return HostReport(
            cpus: .init(committed: committedCPUs, capacity: Double(cpus), ratio: committedCPUs / Double(max(1, cpus)),
                        limit: options.limits.cpuRatio),
            memory: .init(committed: committedMemory, capacity: Double(memory.total),
                          ratio: memory.total == 0 ? 0 : committedMemory / Double(memory.total),
                          limit: options.limits.memoryRatio),
            memoryAvailableBytes: memory.available,
            ksm: .init(available: status != nil, running: status?.settings.run ?? false,
                       pagesSharing: status?.pagesSharing ?? 0, pagesShared: status?.pagesShared ?? 0,
                       savedBytes: status?.savedBytes() ?? 0, managed: options.manageKSM),
            balloonTotalBytes: rows.reduce(0) { $0 + ($1.balloonBytes ?? 0) },
            cgroupVersion: cgroups?.version.rawValue,
            vms: rows, qemuUsers: options.qemuIdentity.summary, qemuUsersInUse: uids.count,
            pinnedMemoryBytes: active.filter { $0.pinned == true }.reduce(0) { $0 + $1.memoryBytes })
    }

    // MARK: Admission

    /// Refuses when adding `candidate` would cross a configured overcommit ratio.
    func admit(_ candidate: Admission.Load, excluding name: String?) async throws(ControlError) {
        let limits = options.limits
        // Pinned memory is checked against the host's RAM even without overcommit limits.
        guard limits.cpuRatio != nil || limits.memoryRatio != nil || candidate.pinnedMemory > 0 else { return }
        let probe = HostMemoryProbe(root: options.hostRoot)
        guard let memory = try? probe.memory(), let cpus = try? probe.cpuCount() else {
            throw .refused("admission control cannot read the host's CPUs and memory")
        }
        var committed = Admission.Load.zero
        for (other, vm) in vms where other != name {
            if let load = await vm.committedLoad { committed = committed + load }
        }
        let refusals = Admission.check(limits: limits, host: .init(cpus: cpus, memory: memory.total),
                                       committed: committed, adding: candidate)
        if !refusals.isEmpty { throw .refused(refusals.map(\.description).joined(separator: "; ")) }
    }

    /// Checks for a VM about to be defined: admission and host features it needs.
    func admitNew(_ config: LiveConfig) async throws(ControlError) {
        try await admit(Admission.Load(config), excluding: config.profile.name)
        if config.profile.memory.hugepages {
            let probe = HostMemoryProbe(root: options.hostRoot)
            guard (try? probe.hugetlbfsMounted()) == true else {
                throw .refused("memory.hugepages: no hugetlbfs is mounted at /dev/hugepages on this host")
            }
            if let memory = try? probe.memory(),
                UInt64(memory.hugePagesFree) * memory.hugePageSize < config.profile.memory.size.bytes
            {
                throw .refused("memory.hugepages: \(memory.hugePagesFree) free huge pages cannot hold \(config.profile.memory.size)")
            }
        }
    }

    // MARK: Policies

    /// One look at the host: move balloons under memory pressure (and back), tune KSM.
    func policyTick() async {
        let probe = HostMemoryProbe(root: options.hostRoot)
        guard let host = try? probe.memory() else { return }
        if options.autoBalloon {
            var observations: [BalloonPolicy.VM] = []
            for vm in vms.values {
                if let observation = await vm.balloonObservation() { observations.append(observation) }
            }
            for decision in balloonPolicy.decide(host: host, vms: observations) {
                guard let vm = vms[decision.vm] else { continue }
                await vm.queue.run { await vm.applyPolicyBalloon(decision.target) }
            }
        }
        if options.manageKSM {
            let ksm = KSMControl(root: options.hostRoot)
            guard ksm.isAvailable, let current = try? ksm.settings() else { return }
            var mergeable = 0
            for vm in vms.values {
                let active = await vm.committedLoad != nil
                let merge = await vm.config.profile.memory.merge
                if active && merge { mergeable += 1 }
            }
            let desired = ksmPolicy.decide(host: host, current: current, mergeableVMs: mergeable)
            do { try ksm.apply(desired, current: current) } catch {
                logger.warning("cannot tune KSM", metadata: ["error": "\(error)"])
            }
        }
    }
}
