import CorralCore
import CorralModel
import Foundation
import JSON
import Profiles
import QEMUCommand
import QMP

/// `corral snapshot`: external disk snapshots (`SnapshotPlan` decides, this runs qemu-img and QMP).
extension ManagedVM {
    /// How long a live commit may take before corral gives up waiting (the job is then cancelled).
    static let commitTimeout: Duration = .seconds(600)

    var snapshotList: [SnapshotInfo] { SnapshotPlan.list(config) }

    /// Live on a running or paused VM, offline on a stopped one; refused while it starts, migrates or is incoming.
    private func snapshotMode(_ what: String) throws(ControlError) -> Bool {
        switch state {
        case .running, .paused: return true
        case .stopped, .crashed: return false
        default:
            throw .conflict("cannot \(what) a snapshot of \(name): it is \(state.rawValue) (needs running, paused, "
                + "stopped or crashed)")
        }
    }

    func createSnapshot(_ snapshot: String) async throws(ControlError) -> SnapshotResult {
        let live = try snapshotMode("take")
        let overlays: [SnapshotPlan.Overlay]
        switch SnapshotPlan.create(snapshot, config: config) {
        case .success(let o): overlays = o
        case .failure(let r): throw refuse(r)
        }
        if let taken = overlays.first(where: { FileOps.exists($0.file) }) {
            throw .conflict("\(taken.file) already exists: corral does not overwrite it (pick another snapshot name "
                + "or move the file)")
        }
        var created: [String] = []
        for overlay in overlays {
            do {
                try await launcher.provisioner.run(
                    ["create", "-q", "-f", "qcow2", "-b", overlay.backingFile, "-F", overlay.backingFormat.rawValue,
                     overlay.file], disk: overlay.diskID, file: overlay.file)
            } catch {
                launcher.provisioner.rollback(created)
                throw .refused("disks.\(overlay.diskID): cannot make the overlay \(overlay.file): \(error.reason)")
            }
            created.append(overlay.file)
        }
        if live {
            do {
                try await switchLive(to: overlays)
            } catch {
                launcher.provisioner.rollback(created)
                throw error
            }
        }
        config = SnapshotPlan.applying(overlays, snapshot: snapshot, at: Int64(Date().timeIntervalSince1970),
                                       to: config)
        let disks = overlays.map(\.diskID)
        await saveConfig(.snapshotCreated, ["snapshot": .string(snapshot), "live": .bool(live),
                                            "disks": .array(disks.map { .string($0) })])
        return SnapshotResult(vm: name, snapshot: snapshot, action: "created", disks: disks, live: live)
    }

    /// Hands the new overlays to QEMU and switches every disk onto its overlay in one transaction; on failure
    /// nothing stays in QEMU (nodes, fd sets) and the files are given back.
    private func switchLive(to overlays: [SnapshotPlan.Overlay]) async throws(ControlError) {
        let executor = try executor()
        var filenames: [String: String] = [:]
        var sets: [Int32] = []
        func undoHandOver() async {
            for set in sets { try? await executor.qmp.removeFD(set: set, timeout: .seconds(5)) }
            for overlay in overlays { FileClaims.release(overlay.file, vm: name) }
        }
        if let uid = record.uid {
            for overlay in overlays {
                guard let disk = config.disk(overlay.diskID) else { continue }
                let fd: Int32
                do { fd = try FileClaims.handOver(overlay.file, vm: name, uid: uid, readonly: false).fd } catch {
                    await undoHandOver()
                    throw .refused(error.description)
                }
                defer { close(fd) }
                do {
                    let set = try await executor.qmp.addFD(fd, opaque: DeviceProps.fdSetOpaque(disk, tag: overlay.tag))
                    sets.append(set)
                    filenames[overlay.diskID] = "/dev/fdset/\(set)"
                } catch {
                    await undoHandOver()
                    throw .qmpFailed(error, command: "add-fd")
                }
            }
        }
        do {
            try await executor.run(SnapshotPlan.liveSteps(overlays, config: config, filenames: filenames))
        } catch {
            await undoHandOver()
            throw failure(error)
        }
    }

    func revertSnapshot(_ snapshot: String) async throws(ControlError) -> SnapshotResult {
        guard try !snapshotMode("revert to") else {
            throw .conflict("cannot revert \(name) to \(snapshot) while it runs: stop it first (corral stop \(name))")
        }
        let plan: SnapshotPlan.Revert
        switch SnapshotPlan.revert(snapshot, config: config) {
        case .success(let p): plan = p
        case .failure(let r): throw refuse(r)
        }
        // The fresh overlays are made under a temporary name first: a failure leaves every image as it was.
        var made: [String] = []
        for overlay in plan.overlays {
            let temporary = overlay.file + ".new"
            FileOps.remove(temporary)
            do {
                try await launcher.provisioner.run(
                    ["create", "-q", "-f", "qcow2", "-b", overlay.backingFile, "-F", overlay.backingFormat.rawValue,
                     temporary], disk: overlay.diskID, file: overlay.file)
            } catch {
                launcher.provisioner.rollback(made)
                throw .refused("disks.\(overlay.diskID): cannot make a fresh overlay: \(error.reason)")
            }
            made.append(temporary)
        }
        for file in plan.delete { FileOps.remove(file) }
        for overlay in plan.overlays { _ = rename(overlay.file + ".new", overlay.file) }
        config = plan.config
        await saveConfig(.snapshotReverted, ["snapshot": .string(snapshot),
                                             "dropped": .array(plan.dropped.map { .string($0) })])
        return SnapshotResult(vm: name, snapshot: snapshot, action: "reverted", disks: plan.overlays.map(\.diskID),
                              live: false, dropped: plan.dropped, untouched: plan.untouched)
    }

    func removeSnapshot(_ snapshot: String) async throws(ControlError) -> SnapshotResult {
        let live = try snapshotMode("remove")
        let merges: [SnapshotPlan.Merge]
        let next: LiveConfig
        switch SnapshotPlan.remove(snapshot, config: config) {
        case .success(let (m, n)): (merges, next) = (m, n)
        case .failure(let r): throw refuse(r)
        }
        // Disk by disk: one that fails leaves the ones before it merged (and recorded) and itself as it was.
        var done: [String] = []
        for merge in merges {
            do {
                if live { try await commitLive(merge) } else { try await commitOffline(merge) }
            } catch {
                if !done.isEmpty {
                    await saveConfig(.snapshotRemoved, ["snapshot": .string(snapshot), "partial": true,
                                                        "disks": .array(done.map { .string($0) })])
                }
                throw error
            }
            if let merged = next.disk(merge.diskID) { config.updateDisk(merge.diskID) { $0 = merged } }
            FileClaims.release(merge.top, vm: name)
            FileOps.remove(merge.top)
            done.append(merge.diskID)
        }
        await saveConfig(.snapshotRemoved, ["snapshot": .string(snapshot), "live": .bool(live),
                                            "disks": .array(done.map { .string($0) })])
        return SnapshotResult(vm: name, snapshot: snapshot, action: "removed", disks: done, live: live)
    }

    private func commitOffline(_ merge: SnapshotPlan.Merge) async throws(ControlError) {
        for arguments in SnapshotPlan.offlineCommands(merge) {
            do { try await launcher.provisioner.run(arguments, disk: merge.diskID, file: merge.top) } catch {
                throw .refused("disks.\(merge.diskID): cannot merge \(merge.top) into \(merge.base): \(error.reason)")
            }
        }
    }

    /// `block-commit` as a job: waits for it (pivoting with `job-complete` when the overlay is the active image),
    /// dismisses it, then drops the merged overlay's nodes and fd set.
    private func commitLive(_ merge: SnapshotPlan.Merge) async throws(ControlError) {
        let executor = try executor()
        let qmp = executor.qmp
        let job = SnapshotPlan.jobID(merge)
        do { try await executor.run([SnapshotPlan.commitStep(merge)]) } catch { throw failure(error) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: Self.commitTimeout)
        var completing = false
        while true {
            let reply: JSONValue
            do { reply = try await qmp.execute("query-jobs", nil, timeout: .seconds(10)) } catch {
                throw .qmpFailed(error, command: "query-jobs")
            }
            let entry = reply.arrayValue?.first { $0["id"]?.stringValue == job }
            let status = entry?["status"]?.stringValue ?? "concluded"
            if status == "concluded" || status == "null" {
                let error = entry?["error"]?.stringValue
                _ = try? await qmp.execute("job-dismiss", ["id": .string(job)], timeout: .seconds(10))
                if let error {
                    throw .refused("disks.\(merge.diskID): committing \(merge.top) into \(merge.base) failed: \(error)")
                }
                break
            }
            if status == "ready", merge.active, !completing {
                do { _ = try await qmp.execute("job-complete", ["id": .string(job)], timeout: .seconds(10)) } catch {
                    throw .qmpFailed(error, command: "job-complete")
                }
                completing = true
            }
            if clock.now > deadline {
                _ = try? await qmp.execute("job-cancel", ["id": .string(job)], timeout: .seconds(10))
                throw .refused("disks.\(merge.diskID): committing \(merge.top) did not finish in "
                    + "\(Self.commitTimeout); the job was cancelled and the snapshot kept")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let drop = [QMPStep("blockdev-del", ["node-name": .string(merge.topNode)], retryWhileInUse: true),
                    QMPStep("blockdev-del", ["node-name": .string(merge.topFileNode)], retryWhileInUse: true)]
        do { try await executor.run(drop) } catch {
            logger.warning("merged overlay still open in QEMU", metadata: ["error": "\(error)"])
        }
        guard record.uid != nil, let disk = config.disk(merge.diskID),
              let sets = try? await qmp.queryFDSets(timeout: .seconds(5)) else { return }
        let tag = merge.active ? disk.chain?.activeNodeTag
            : disk.chain?.frozen.first { $0.file == merge.top }?.tag
        let opaque = DeviceProps.fdSetOpaque(disk, tag: tag)
        for (set, opaques) in sets where opaques.contains(opaque) {
            try? await qmp.removeFD(set: set, timeout: .seconds(5))
        }
    }
}
