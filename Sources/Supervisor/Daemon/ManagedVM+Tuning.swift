import CorralCore
import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import QMP

/// Overcommit on one VM: its cgroup, vCPU pinning, the balloon and guest statistics.
extension ManagedVM {
    static let balloonQOMPath = "/machine/peripheral/balloon0"
    /// The guest refreshes its virtio-balloon statistics this often (seconds).
    static let statsPollingInterval: Int64 = 2
    /// No balloon target below this: a smaller guest will not stay up.
    static let smallestBalloon = ByteSize.mib(64)

    var autoBalloon: Bool { record.autoBalloon ?? true }

    /// Boot RAM plus hotplugged DIMMs.
    var memorySize: UInt64 {
        config.profile.memory.size.bytes + config.hotplugged.memory.reduce(0) { $0 + $1.size.bytes }
    }

    /// After QEMU starts (or is reattached) and sits in its cgroup (`cgroupPlacement`): vCPU pinning and the
    /// balloon's statistics polling.
    func applyTuning() async {
        guard let vm = running else { return }
        await applyPinning()
        if config.profile.memory.balloon != nil {
            _ = try? await vm.qmp.execute("qom-set", [
                "path": .string(Self.balloonQOMPath), "property": "guest-stats-polling-interval",
                "value": .int(Self.statsPollingInterval),
            ])
        }
    }

    /// Creates the VM's cgroup with its CPU limits and moves a process into it; does nothing without cgroups.
    /// Runs right after QEMU is spawned, while QEMU is still starting (a cgroup v1 move can take milliseconds).
    func cgroupPlacement() -> @Sendable (Int32) -> Void {
        guard let cgroups else { return { _ in } }
        let overcommit = config.profile.overcommit
        let limits = CGroupCPULimits(weight: overcommit.cpuWeight, quotaPercent: overcommit.cpuQuotaPercent)
        let name = self.name
        let logger = self.logger
        return { pid in
            do {
                try cgroups.create(vm: name)
                try cgroups.apply(limits, vm: name)
                try cgroups.move(pid: pid, vm: name)
            } catch {
                logger.warning("cgroup setup failed; CPU weight and quota are not applied", metadata: ["error": "\(error)"])
            }
        }
    }



    /// Pins each vCPU thread to its host CPU (`cpu.pinning`); called again after vCPU hotplug.
    func applyPinning() async {
        let pinning = config.profile.cpu.pinning
        guard !pinning.isEmpty, let vm = running else { return }
        do {
            let reply = try await vm.qmp.execute("query-cpus-fast")
            let threads = try VCPUPinning.threads(fromQueryCPUsFast: reply)
            try VCPUPinning.apply(VCPUPinning.plan(threads: threads, pinning: pinning))
        } catch {
            logger.warning("vCPU pinning failed", metadata: ["error": "\(error)"])
        }
    }

    func removeCGroup() {
        deviceCGroup?.remove(vm: name)
        guard let cgroups else { return }
        try? cgroups.remove(vm: name)
    }

    /// The admission load while this VM holds host resources; nil while it is down.
    var committedLoad: Admission.Load? {
        switch currentState {
        case .starting, .running, .paused, .migrating, .incoming: return Admission.Load(config)
        case .stopped, .crashed, .broken: return nil
        }
    }

    // MARK: Balloon

    func setBalloon(_ text: String) async throws(ControlError) {
        let size: ByteSize
        do { size = try ByteSize(parsing: text) } catch { throw .invalidRequest("SIZE: \(error.description)") }
        try await setBalloon(bytes: size.bytes)
        record.autoBalloon = false
        persist()
        await hub.publish(vm: name, .balloonSet, ["targetBytes": .int(Int64(size.bytes)), "auto": false])
    }

    /// Sends a balloon target (manual or from the policy) after checking it.
    func setBalloon(bytes: UInt64) async throws(ControlError) {
        try check(.hotplug)
        guard config.profile.memory.balloon != nil else {
            throw .invalidRequest("\(name) has no balloon device: add memory.balloon to its profile")
        }
        guard !memoryPinned else {
            throw .conflict("\(name)'s memory is pinned for its host devices (corral hostdev ls): a balloon cannot give "
                + "any of it back")
        }
        guard bytes >= Self.smallestBalloon.bytes, bytes <= memorySize else {
            throw .invalidRequest("SIZE: \(ByteSize(bytes: bytes)) is outside \(Self.smallestBalloon)…"
                + "\(ByteSize(bytes: memorySize)) (the memory of \(name))")
        }
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        do { try await vm.qmp.setBalloon(bytes: bytes) } catch {
            throw .qmpFailed(error)
        }
        balloonTarget = bytes
    }

    func guestStats() async throws(ControlError) -> GuestStats {
        try check(.qmp)
        guard config.profile.memory.balloon != nil else {
            throw .invalidRequest("\(name) has no balloon device, so the guest reports no memory statistics")
        }
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        do { return try await readGuestStats(vm, timeout: nil) } catch { throw .qmpFailed(error) }
    }

    /// The balloon's size and the guest's statistics, as QEMU has them (`corral stats`, `GET /metrics`).
    func readGuestStats(_ vm: RunningVM, timeout: Duration?) async throws(QMPError) -> GuestStats {
        let reply = try await vm.qmp.execute(
            "qom-get", ["path": .string(Self.balloonQOMPath), "property": "guest-stats"], timeout: timeout)
        var stats: [String: Int64] = [:]
        for (key, value) in reply["stats"]?.objectValue ?? [:] {
            if let n = value.intValue, n >= 0 { stats[key] = n }  // -1: the guest did not report it
        }
        let updated = reply["last-update"]?.intValue.flatMap { $0 > 0 ? Double($0) : nil }
        let actual = try? await vm.qmp.queryBalloon(timeout: timeout)
        return GuestStats(name: name, balloonBytes: actual, balloonTargetBytes: balloonTarget, autoBalloon: autoBalloon,
                          lastUpdate: updated, stats: stats)
    }

    /// What the automatic balloon policy needs to know about this VM; nil when it does not take part.
    func balloonObservation() async -> BalloonPolicy.VM? {
        guard autoBalloon, !memoryPinned, let balloon = config.profile.memory.balloon, let vm = running,
            currentState == .running || currentState == .migrating,
            let actual = try? await vm.qmp.queryBalloon(timeout: .seconds(2))
        else { return nil }
        let stats = try? await vm.qmp.execute(
            "qom-get", ["path": .string(Self.balloonQOMPath), "property": "guest-stats"], timeout: .seconds(2))
        let available = stats?["stats"]?["stat-available-memory"]?.intValue.flatMap { $0 > 0 ? UInt64($0) : nil }
        let size = memorySize
        return BalloonPolicy.VM(
            name: name, size: size, min: balloon.min?.bytes ?? size / 2, target: balloonTarget, actual: UInt64(actual),
            guestAvailable: available, shares: config.profile.overcommit.memoryShares,
            migrating: currentState == .migrating)
    }

    /// A target chosen by the policy: sent unless the VM changed meanwhile.
    func applyPolicyBalloon(_ target: UInt64) async {
        guard autoBalloon else { return }
        do {
            try await setBalloon(bytes: target)
            await hub.publish(vm: name, .balloonSet, ["targetBytes": .int(Int64(target)), "auto": true])
        } catch {
            logger.warning("automatic balloon change failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Live tuning

    /// `request` has passed `validate()` (`VMManager.setTuning`); what is left to check depends on the VM.
    func setTuning(_ request: TuningRequest) async throws(ControlError) {
        var overcommit = config.profile.overcommit
        if let weight = request.cpuWeight { overcommit.cpuWeight = weight }
        if let quota = request.cpuQuotaPercent { overcommit.cpuQuotaPercent = quota == 0 ? nil : quota }
        if let shares = request.memoryShares { overcommit.memoryShares = shares }
        var balloon = config.profile.memory.balloon
        if let text = request.balloonMin {
            guard balloon != nil else { throw .invalidRequest("\(name) has no balloon device: add memory.balloon to its profile") }
            let min: ByteSize
            do { min = try ByteSize(parsing: text) } catch { throw .invalidRequest("--balloon-min: \(error.description)") }
            guard min.bytes <= memorySize else {
                throw .invalidRequest("--balloon-min: \(min) is more than the memory of \(name) (\(ByteSize(bytes: memorySize)))")
            }
            balloon?.min = min
        }
        config.profile.overcommit = overcommit
        config.profile.memory.balloon = balloon
        if let auto = request.autoBalloon { record.autoBalloon = auto }
        persist()
        do { try VMStore(paths: paths).save(config) } catch { throw .internalError("cannot save live.json: \(error)") }
        if running != nil, let cgroups, request.cpuWeight != nil || request.cpuQuotaPercent != nil {
            do {
                try cgroups.apply(CGroupCPULimits(weight: overcommit.cpuWeight, quotaPercent: overcommit.cpuQuotaPercent),
                                  vm: name)
            } catch {
                throw .internalError("cannot apply CPU limits: \(error)")
            }
        }
        await hub.publish(vm: name, .tuningChanged)
    }

    func hostRow() async -> HostReport.Row {
        let actual: UInt64?
        if let vm = running, config.profile.memory.balloon != nil {
            actual = try? await vm.qmp.queryBalloon(timeout: .seconds(2))
        } else {
            actual = nil
        }
        return hostRow(balloonBytes: actual)
    }

    /// This VM's row of `corral host`, with the balloon size read already.
    func hostRow(balloonBytes actual: UInt64?) -> HostReport.Row {
        let overcommit = config.profile.overcommit
        return HostReport.Row(
            name: name, state: currentState, vcpus: config.hotplugged.onlineCPUs ?? config.profile.cpu.count,
            memoryBytes: memorySize, balloonBytes: actual, cpuWeight: overcommit.cpuWeight,
            cpuQuotaPercent: overcommit.cpuQuotaPercent, memoryShares: overcommit.memoryShares,
            autoBalloon: autoBalloon && !memoryPinned, pinned: memoryPinned)
    }
}
