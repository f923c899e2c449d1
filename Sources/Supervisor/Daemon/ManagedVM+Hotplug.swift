import HostDevices
import CorralCore
import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import QMP

/// What to finish once the guest confirms an unplug that timed out.
struct PendingUnplug: Sendable {
    enum Completion: Sendable {
        case disk(id: String, deleteImage: Bool)
        case nic(id: String)
        case memory(id: String)
        case hostdev(id: String)
        case cpu
    }

    /// QMP steps still to run (e.g. blockdev-del) after DEVICE_DELETED.
    var remaining: [QMPStep]
    var completion: Completion
    /// DEVICE_DELETED arrived and the remaining steps are running: the device is still listed as pending (its
    /// removal is not finished, and `status` must not show it gone from pending but still configured).
    var finishing = false
}

/// Hotplug on a running VM: plan (pure) → execute with undo → record in live.json.
extension ManagedVM {
    func executor() throws(ControlError) -> HotplugExecutor {
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        return HotplugExecutor(qmp: vm.qmp, unplugTimeout: unplugTimeout)
    }

    func refuse(_ result: HotplugRefusal) -> ControlError { .invalidRequest(result.message) }

    /// QEMU 7.x under TCG segfaults when a device is plugged after a vCPU was unplugged (seen with
    /// QEMU 7.2: a disk, NIC or CPU plugged later kills the VM). corral refuses instead of crashing it.
    func checkPlugAllowed() throws(ControlError) {
        guard cpuUnpluggedThisRun, record.accel == .tcg, let vm = running, vm.qmp.greeting.version.major < 8 else { return }
        throw .conflict("plugging a device after a vCPU unplug crashes QEMU \(vm.qmp.greeting.version.major)."
            + "\(vm.qmp.greeting.version.minor) under TCG; stop and start \(name) first")
    }

    func failure(_ error: HotplugError) -> ControlError {
        switch error {
        case .unplugPending: return .conflict(error.description)
        case .stepFailed(let step, let cause, let undoProblems):
            let undo = undoProblems.isEmpty ? "earlier steps were undone"
                : "undo was incomplete: " + undoProblems.joined(separator: "; ")
            return .qmpFailed(cause, command: step, note: undo)
        }
    }

    func saveConfig(_ event: CorralEventName, _ data: JSONValue) async {
        do {
            try VMStore(paths: paths).save(config)
        } catch {
            logger.error("cannot save live.json", metadata: ["error": "\(error)"])
        }
        await hub.publish(vm: name, event, data)
    }

    // MARK: vCPUs

    func setCPUs(_ count: Int) async throws(ControlError) {
        try check(.hotplug)
        if let refusal = HotplugValidation.cpuCount(count, profile: config.profile) { throw refuse(refusal) }
        let executor = try executor()
        let reply: JSONValue
        do { reply = try await executor.qmp.execute("query-hotpluggable-cpus", nil, timeout: nil) } catch {
            throw .qmpFailed(error)
        }
        let slots = HotplugPlanner.parseCPUSlots(reply)
        let online = slots.filter { $0.qomPath != nil }.count
        switch HotplugPlanner.setCPUs(target: count, slots: slots, vmName: name) {
        case .unchanged:
            break
        case .add(let steps):
            try checkPlugAllowed()
            // One vCPU at a time, so a failure keeps (and records) the ones already plugged.
            for (added, step) in steps.enumerated() {
                do { try await executor.run([step]) } catch {
                    config.hotplugged.onlineCPUs = online + added
                    await saveConfig(.cpusChanged, ["online": .int(Int64(online + added))])
                    throw failure(error)
                }
            }
        case .remove(let steps):
            for (removed, step) in steps.enumerated() {
                cpuUnpluggedThisRun = true
                do { try await executor.run([step]) } catch {
                    config.hotplugged.onlineCPUs = online - removed
                    if case .unplugPending = error, case .deviceDeleted(let device) = step.wait {
                        pendingUnplugs[device] = PendingUnplug(remaining: [], completion: .cpu)
                    }
                    await saveConfig(.cpusChanged, ["online": .int(Int64(online - removed))])
                    if case .stepFailed(_, .commandFailed(_, let errorClass, let desc), _) = error,
                       HotplugPlanner.isUnplugBeforeGuestACPI(errorClass: errorClass, desc: desc) {
                        throw .conflict("\(name)'s guest has not enabled ACPI CPU hot-unplug yet (a guest kernel does "
                            + "so while it boots): try again once it has booted; QEMU said: \(desc)")
                    }
                    throw failure(error)
                }
            }
        }
        config.hotplugged.onlineCPUs = count
        await saveConfig(.cpusChanged, ["online": .int(Int64(count))])
    }

    // MARK: Disks

    func addDisk(_ request: DiskAddRequest) async throws(ControlError) {
        try check(.hotplug)
        try checkPlugAllowed()
        var disk: Disk
        var request = request
        if request.file == nil, request.size != nil || request.backing != nil {
            // A managed volume: created in the VM's folder.
            request.file = Disk.managedPath(folder: paths.folder, id: request.id, format: request.format ?? .qcow2)
        }
        switch HotplugValidation.disk(request, config: config, fileExists: FileOps.exists(request.file ?? "")) {
        case .success(let d): disk = d
        case .failure(let r): throw refuse(r)
        }
        let port: String
        switch HotplugValidation.freePort(config) {
        case .success(let p): port = p
        case .failure(let r): throw refuse(r)
        }
        if let base = disk.backing {
            guard FileOps.exists(base) else { throw .refused("--backing: \(base) does not exist on this host") }
            do { disk.backingFormat = try await launcher.provisioner.format(of: base) } catch {
                throw .refused("--backing: \(error.reason)")
            }
        }
        let executor = try executor()
        let created: [String]
        do { created = try await launcher.provisioner.createMissing([disk]) } catch { throw .internalError(error.description) }
        let placement = PCILayout(profile: config.profile).placement(forPort: port)
        // An unprivileged QEMU cannot open the file: it is given to the VM's uid and handed over as an fd set.
        var fdSet: Int32?
        var baseSet: Int32?
        if let uid = record.uid {
            do {
                fdSet = try await handOverDisk(disk, uid: uid, to: executor.qmp)
                if let base = disk.backing { baseSet = try await handOverBase(base, of: disk, to: executor.qmp) }
            } catch {
                if let fdSet { try? await executor.qmp.removeFD(set: fdSet) }
                FileClaims.release(disk.file, vm: name)
                launcher.provisioner.rollback(created)
                throw error
            }
        }
        do {
            try await executor.run(HotplugPlanner.addDisk(disk, at: placement, filename: fdSet.map { "/dev/fdset/\($0)" },
                                                          backingFilename: baseSet.map { "/dev/fdset/\($0)" }))
        } catch {
            if let fdSet { try? await executor.qmp.removeFD(set: fdSet) }
            if let baseSet { try? await executor.qmp.removeFD(set: baseSet) }
            FileClaims.release(disk.file, vm: name)
            launcher.provisioner.rollback(created)
            throw failure(error)
        }
        var stored = disk
        stored.size = nil  // the image exists now; a restart must not try to create it again
        config.hotplugged.disks.append(PluggedDisk(disk: stored, port: port))
        await saveConfig(.diskAdded, ["id": .string(disk.id), "file": .string(disk.file), "port": .string(port)])
    }

    func removeDisk(id: String, deleteImage: Bool) async throws(ControlError) {
        try check(.hotplug)
        guard let plugged = config.hotplugged.disks.first(where: { $0.disk.id == id }) else {
            if config.profile.disks.contains(where: { $0.id == id }) {
                throw .invalidRequest("disk \(id) comes from the profile (on the root bus, which has no hotplug); "
                    + "only disks added with `corral disk add` can be removed")
            }
            throw .notFound("\(name) has no disk \(id)")
        }
        if let chain = plugged.disk.chain, !chain.frozen.isEmpty {
            let names = chain.frozen.map(\.snapshot).joined(separator: ", ")
            throw .conflict("disk \(id) has snapshots (\(names)): its content is spread over their images; remove "
                + "them first (corral snapshot rm \(name) SNAPSHOT)")
        }
        let steps = HotplugPlanner.removeDisk(plugged.disk)
        try await runRemoval(steps, completion: .disk(id: id, deleteImage: deleteImage))
        let removed = finishDiskRemoval(id: id, deleteImage: deleteImage)
        await saveConfig(.diskRemoved, ["id": .string(id)])
        await dropFDSets(of: removed)
    }

    /// Drops the disk from the configuration; the caller then drops its fd set (`dropFDSets`).
    @discardableResult
    private func finishDiskRemoval(id: String, deleteImage: Bool) -> Disk? {
        guard let index = config.hotplugged.disks.firstIndex(where: { $0.disk.id == id }) else { return nil }
        let disk = config.hotplugged.disks.remove(at: index).disk
        FileClaims.release(disk.file, vm: name)
        if deleteImage { FileOps.remove(disk.file) }
        return disk
    }

    /// An unplugged disk's fd set (added at hotplug or at start) goes, so QEMU keeps no descriptor to a file the VM
    /// gave back.
    private func dropFDSets(of disk: Disk?) async {
        guard let disk, record.uid != nil, let qmp = running?.qmp,
              let sets = try? await qmp.queryFDSets(timeout: .seconds(5)) else { return }
        let own = Set([Self.fdSetOpaque(disk), "backing-" + disk.id])
        for (set, opaques) in sets where opaques.contains(where: own.contains) {
            try? await qmp.removeFD(set: set, timeout: .seconds(5))
        }
    }

    /// The text every fd set of `disk` carries (the same at start, `HandOverPlan`, and at hotplug).
    static func fdSetOpaque(_ disk: Disk) -> String { "disk-" + disk.id }

    /// Gives the disk to the VM's uid, opens it and hands the descriptor to QEMU in a new fd set; the set's number.
    private func handOverDisk(_ disk: Disk, uid: UInt32, to qmp: any QMPMonitor) async throws(ControlError) -> Int32 {
        let fd: Int32
        do { fd = try FileClaims.handOver(disk.file, vm: name, uid: uid, readonly: disk.readonly).fd } catch {
            throw error.heldBy != nil ? .conflict(error.description) : .refused(error.description)
        }
        defer { close(fd) }
        do { return try await qmp.addFD(fd, opaque: Self.fdSetOpaque(disk)) } catch {
            FileClaims.release(disk.file, vm: name)
            throw .qmpFailed(error, command: "add-fd")
        }
    }

    /// A base image for an unprivileged QEMU: opened read-only by the daemon, never given to the VM's uid (other VMs
    /// share it), handed over in its own fd set (`backing-ID`, as at start).
    private func handOverBase(_ base: String, of disk: Disk, to qmp: any QMPMonitor) async throws(ControlError) -> Int32 {
        let fd = open(base, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .refused("--backing: cannot open \(base): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        do { return try await qmp.addFD(fd, opaque: "backing-" + disk.id) } catch {
            throw .qmpFailed(error, command: "add-fd")
        }
    }

    // MARK: NICs

    func addNIC(_ request: NICAddRequest) async throws(ControlError) {
        try check(.hotplug)
        try checkPlugAllowed()
        let nic: NIC
        switch HotplugValidation.nic(request, config: config) {
        case .success(let n): nic = n
        case .failure(let r): throw refuse(r)
        }
        let port: String
        switch HotplugValidation.freePort(config) {
        case .success(let p): port = p
        case .failure(let r): throw refuse(r)
        }
        let placement = PCILayout(profile: config.profile).placement(forPort: port)
        let executor = try executor()
        let tap = try await handOverTap(for: nic, to: executor.qmp)
        do throws(HotplugError) {
            try await executor.run(HotplugPlanner.addNIC(nic, vmName: name, at: placement, tap: tap?.entry))
        } catch {
            // Descriptors netdev_add did not take stay in QEMU's monitor: drop them, so the tap goes too.
            for fdName in tap?.names ?? [] { try? await executor.qmp.closefd(fdName) }
            if let entry = tap?.entry { TapDevices.removeMacvtaps(of: [entry]) }
            throw failure(error)
        }
        config.hotplugged.nics.append(PluggedNIC(nic: nic, port: port))
        await saveConfig(.nicAdded, ["id": .string(nic.id), "mac": .string(nic.mac ?? ""), "port": .string(port)])
    }

    /// For a NIC whose tap corral makes: makes it (attached, up), hands QEMU every descriptor with `getfd` and closes
    /// ours, so the tap lives exactly as long as QEMU holds it (netdev_del, or QEMU's exit, removes it).
    private func handOverTap(for nic: NIC, to qmp: any QMPMonitor) async throws(ControlError)
        -> (entry: TapPlan.Entry, names: [String])?
    {
        guard TapPlan.makesTap(nic) else { return nil }
        let entry = TapPlan.entry(nic, vmName: name, bootCPUs: config.profile.cpu.count,
                                  vhostAvailable: HostProbe.vhostNetUsable())
        let opened: OpenedTaps
        do { opened = try TapDevices.open([entry]) } catch { throw .refused(error.description) }
        defer { opened.closeAll() }
        let names = TapPlan.fdNames(entry)
        var handed: [String] = []
        for (fdName, number) in zip(names.taps + names.vhosts, entry.fds.taps + entry.fds.vhosts) {
            guard let fd = opened.descriptors[number] else { continue }
            do throws(QMPError) {
                try await qmp.getfd(fdName, fd)
                handed.append(fdName)
            } catch {
                for done in handed { try? await qmp.closefd(done) }
                TapDevices.removeMacvtaps(of: [entry])
                throw .qmpFailed(error, note: "the tap \(entry.ifname) was not kept")
            }
        }
        return (entry, handed)
    }

    /// An unplugged NIC's macvtap goes (a tap went with netdev_del).
    private func releaseNIC(_ id: String) {
        guard let plugged = config.hotplugged.nics.first(where: { $0.nic.id == id }), TapPlan.makesTap(plugged.nic)
        else { return }
        TapDevices.removeMacvtaps(of: [TapPlan.entry(plugged.nic, vmName: name, bootCPUs: config.profile.cpu.count,
                                                     vhostAvailable: false)])
    }

    func removeNIC(id: String) async throws(ControlError) {
        try check(.hotplug)
        guard let plugged = config.hotplugged.nics.first(where: { $0.nic.id == id }) else {
            if config.profile.nics.contains(where: { $0.id == id }) {
                throw .invalidRequest("NIC \(id) comes from the profile (on the root bus, which has no hotplug); "
                    + "only NICs added with `corral nic add` can be removed")
            }
            throw .notFound("\(name) has no NIC \(id)")
        }
        try await runRemoval(HotplugPlanner.removeNIC(plugged.nic), completion: .nic(id: id))
        releaseNIC(id)
        config.hotplugged.nics.removeAll { $0.nic.id == id }
        await saveConfig(.nicRemoved, ["id": .string(id)])
    }

    // MARK: Memory

    func addMemory(_ request: MemoryAddRequest) async throws(ControlError) {
        try check(.hotplug)
        try checkPlugAllowed()
        let memory: PluggedMemory
        switch HotplugValidation.memory(request, config: config) {
        case .success(let m): memory = m
        case .failure(let r): throw refuse(r)
        }
        do { try await executor().run(HotplugPlanner.addMemory(memory)) } catch let error as HotplugError {
            throw failure(error)
        } catch let error as ControlError {
            throw error
        } catch {
            throw .internalError("\(error)")
        }
        config.hotplugged.memory.append(memory)
        await saveConfig(.memoryAdded, ["id": .string(memory.id), "sizeBytes": .int(Int64(memory.size.bytes))])
    }

    func removeMemory(id: String) async throws(ControlError) {
        try check(.hotplug)
        guard let memory = config.hotplugged.memory.first(where: { $0.id == id }) else {
            throw .notFound("\(name) has no hotplugged memory \(id)")
        }
        try await runRemoval(HotplugPlanner.removeMemory(memory), completion: .memory(id: id))
        config.hotplugged.memory.removeAll { $0.id == id }
        await saveConfig(.memoryRemoved, ["id": .string(id)])
    }

    // MARK: Pending unplugs

    /// Runs a removal; when the guest does not release the device in time, remembers what is left
    /// so a late DEVICE_DELETED can finish the job, and reports "unplug pending".
    func runRemoval(_ steps: [QMPStep], completion: PendingUnplug.Completion) async throws(ControlError) {
        let executor = try executor()
        for (index, step) in steps.enumerated() {
            do {
                try await executor.run([step])
            } catch {
                if case .unplugPending = error, case .deviceDeleted(let device) = step.wait {
                    pendingUnplugs[device] = PendingUnplug(remaining: Array(steps[(index + 1)...]), completion: completion)
                    await hub.publish(vm: name, .unplugPending, ["device": .string(device)])
                }
                throw failure(error)
            }
        }
    }

    /// A DEVICE_DELETED arrived: finish a removal that had timed out.
    ///
    /// The entry stays in `pendingUnplugs` (marked `finishing`) until the configuration no longer has the device:
    /// the QMP steps below suspend this actor, and a `status` served meanwhile must not see a device that is
    /// neither pending nor removed.
    func completePendingUnplug(_ device: String) async {
        guard let pending = pendingUnplugs[device], !pending.finishing else { return }
        guard let vm = running else {
            pendingUnplugs[device] = nil
            return
        }
        pendingUnplugs[device]?.finishing = true
        let executor = HotplugExecutor(qmp: vm.qmp, unplugTimeout: unplugTimeout)
        var remaining = pending.remaining
        // A further unplug (virtio-scsi controller) may itself be pending again.
        while let step = remaining.first {
            remaining.removeFirst()
            do { try await executor.run([step]) } catch {
                pendingUnplugs[device] = nil
                if case .unplugPending = error, case .deviceDeleted(let next) = step.wait {
                    pendingUnplugs[next] = PendingUnplug(remaining: remaining, completion: pending.completion)
                    return
                }
                logger.error("finishing an unplug failed", metadata: ["error": "\(error)"])
                return
            }
        }
        // The configuration changes and the device leaves the pending list in one step (no suspension between).
        let event: CorralEventName
        let data: JSONValue
        var removedDisk: Disk?
        var releasedDevices: [BindRecord] = []
        switch pending.completion {
        case .disk(let id, let deleteImage):
            removedDisk = finishDiskRemoval(id: id, deleteImage: deleteImage)
            (event, data) = (.diskRemoved, ["id": .string(id)])
        case .nic(let id):
            releaseNIC(id)
            config.hotplugged.nics.removeAll { $0.nic.id == id }
            (event, data) = (.nicRemoved, ["id": .string(id)])
        case .memory(let id):
            config.hotplugged.memory.removeAll { $0.id == id }
            (event, data) = (.memoryRemoved, ["id": .string(id)])
        case .hostdev(let id):
            releasedDevices = dropHostDevice(id)
            (event, data) = (.hostdevRemoved, ["id": .string(id)])
        case .cpu:
            let online = (config.hotplugged.onlineCPUs ?? config.profile.cpu.count) - 1
            config.hotplugged.onlineCPUs = online
            (event, data) = (.cpusChanged, ["online": .int(Int64(online))])
        }
        pendingUnplugs[device] = nil
        await saveConfig(event, data)
        await dropFDSets(of: removedDisk)
        await giveBack(releasedDevices)
    }
}
