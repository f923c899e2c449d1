import CorralControl
import CorralCore
import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand

/// Live migration at the daemon level: the source asks a peer daemon to receive a VM; the
/// destination checks it can host it, starts QEMU waiting, and takes over on commit.
extension VMManager: MigrationControl {
    var tlsDirectory: String { options.tlsDirectory ?? stateRoot + "/tls" }

    /// How this daemon reaches other daemons (set by the API layer: HTTP over TCP with a token).
    public func setPeerConnector(_ connector: @escaping MigrationPeerConnector) {
        peerConnector = connector
    }

    // MARK: Source

    public func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError)
        -> AsyncStream<MigrationUpdate>
    {
        let vm = try vm(name)
        guard let connector = peerConnector else {
            throw .internalError("this daemon has no way to reach other daemons (no peer connector)")
        }
        do { try request.validate() } catch { throw ControlError(error) }
        if let refusal = HostDeviceMigration.refusal(await vm.config) { throw .conflict(refusal) }
        // Refused now when it cannot start (the VM's queue checks again when the migration's turn comes).
        if let refusal = Lifecycle.refusal(.migrate, vm: name, state: await vm.currentState) {
            throw .conflict(refusal)
        }
        let peer = connector(request.to, request.token ?? (options.cluster != nil ? options.clusterPeerToken : nil))
        let tls = tlsDirectory
        await vm.setOnMigratedAway { [weak self] name in await self?.forgetMigrated(name, vm: vm) }
        // Only the newest progress matters to a slow reader; the outcome, sent last, is never dropped.
        let (updates, sink) = AsyncStream<MigrationUpdate>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let job = Task { () async -> Void in
            do throws(ControlError) {
                let result = try await vm.queue.run { () async throws(ControlError) -> MigrationResult in
                    try await vm.migrateOut(request, peer: peer, tlsDirectory: tls) { progress in
                        sink.yield(.progress(progress))
                    }
                }
                // The destination owns the VM now: forget it here.
                await self.forgetMigrated(name, vm: vm)
                await self.countMigration(result)
                sink.yield(.completed(result))
            } catch {
                await self.countMigration(nil)
                sink.yield(.failed(error))
            }
            sink.finish()
            await self.migrationEnded(name)
        }
        migrations[name] = job
        return updates
    }

    func forgetMigrated(_ name: String, vm: ManagedVM) async {
        guard vms[name] === vm else { return }
        vms[name] = nil
        uids[name] = nil
        await vm.markRemoved()
        FileOps.removeTree(vm.paths.folder)
    }

    private func migrationEnded(_ name: String) { migrations[name] = nil }

    public func cancelMigration(_ name: String) async throws(ControlError) {
        // Not queued: the migration itself holds the VM's queue.
        try await vm(name).requestCancel()
    }

    // MARK: Destination

    public func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        var config = request.config
        let name = config.profile.name
        let problems = request.problems()
        guard problems.isEmpty else { throw .invalidRequest(problems.joined(separator: "; ")) }
        if let existing = vms[name] {
            throw .conflict("a VM named \(name) already exists here (\(await existing.currentState.rawValue))")
        }
        if request.options.postcopy, let refusal = PostcopySupport.refusal(
            unprivilegedQEMU: options.qemuIdentity != .root,
            sysctl: (try? FileOps.readText(options.hostRoot + PostcopySupport.sysctlPath)) ?? nil) {
            throw .refused(refusal)
        }
        let listen: HostPort
        do { listen = try HostPort(host: request.listenHost, port: 0) } catch {
            throw .invalidRequest("listenHost: \(error.description)")
        }
        guard HostProbe.findExecutable(config.profile.qemu.binary) != nil else {
            throw .refused("QEMU binary '\(config.profile.qemu.binary)' is not installed on this host")
        }
        for (field, path) in [("boot.kernel", config.profile.boot.kernel), ("boot.initrd", config.profile.boot.initrd)] {
            if let path, !FileOps.exists(path) { throw .refused("\(field): \(path) does not exist on this host") }
        }
        let paths = VMPaths(stateRoot: stateRoot, name: name)
        if request.options.withStorage {
            // Local copies in this daemon's state: the source mirrors into them over NBD.
            func local(_ disk: Disk) -> Disk {
                var copy = disk
                copy.file = paths.folder + "/disks/\(disk.id).\(disk.format.rawValue)"
                // The mirror copies the whole chain (sync full) into one image: snapshots stay with the source's
                // images (docs/provisioning.md).
                copy.chain = nil
                copy.size = ByteSize(bytes: request.diskSizes[disk.id] ?? disk.size?.bytes ?? 0)
                return copy
            }
            config.profile.disks = config.profile.disks.map(local)
            config.hotplugged.disks = config.hotplugged.disks.map { PluggedDisk(disk: local($0.disk), port: $0.port) }
            if let missing = config.allDisks.first(where: { ($0.size?.bytes ?? 0) == 0 }) {
                throw .invalidRequest("--with-storage: the source did not say how large disk \(missing.id) is")
            }
        } else {
            for disk in config.allDisks where !FileOps.exists(disk.file) {
                throw .refused("disks.\(disk.id): \(disk.file) does not exist on this host (shared storage expected; "
                    + "use --with-storage to copy the disks)")
            }
        }
        try await admit(Admission.Load(config), excluding: name)
        try await refuseWhileDraining("the incoming migration of \(name)")

        var record = VMRecord(name: name, profilePath: nil, accel: request.accel, now: Date().timeIntervalSince1970)
        record.state = .incoming
        guard vms[name] == nil else { throw .conflict("a VM named \(name) already exists here") }
        record.uid = try allocateUID(for: name)
        let store = VMStore(paths: paths)
        do {
            // live.json is written (atomically, durably) by the launcher just before QEMU starts; writing it here
            // too cost one more fsync pair on the migration's critical path.
            try FileOps.makeFolder(paths.folder + "/disks")
            try store.save(record)
        } catch {
            FileOps.removeTree(paths.folder)
            uids[name] = nil
            throw .internalError("cannot write \(paths.folder): \(error)")
        }
        let vm = ManagedVM(record: record, config: config, paths: paths, hub: hub, launcher: launcher,
                           restartEngine: options.restartEngine, unplugTimeout: options.unplugTimeout,
                           cgroups: cgroups, deviceCGroup: deviceCGroup, guestAgent: options.guestAgent,
                           logger: logger)
        await vm.setHostDeviceClaims(hostDeviceClaims)
        vms[name] = vm
        await vm.setOnIncomingLost { [weak self] lost in await self?.forget(lost, vm: vm) }
        await hub.setLogFile(store.eventsPath, for: name)
        let tls = tlsDirectory
        do throws(ControlError) {
            return try await vm.queue.run { () async throws(ControlError) -> IncomingReply in
                if request.options.withStorage {
                    let plugged = await vm.config.hotplugged.disks.map(\.disk)
                    do { _ = try await self.launcher.provisioner.createMissing(plugged) } catch let failure as DiskProvisioner.Failure {
                        throw ControlError.internalError(failure.description)
                    } catch {
                        throw ControlError.internalError("\(error)")
                    }
                }
                try await vm.launch(paused: true, incoming: "defer")
                let reply = try await vm.listenForIncoming(request, listen: listen, tlsDirectory: tls)
                await self.armIncomingDeadline(name, vm: vm)
                return reply
            }
        } catch {
            await vm.abortIncoming()
            await forget(name, vm: vm)
            throw error
        }
    }

    public func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        // Ownership moves here before the guest resumes here: never two owners, never a running copy without one.
        if options.cluster != nil {
            guard let vm = vms[name], await vm.currentState == .incoming else {
                return try await queued(name) { vm throws(ControlError) in try await vm.commitIncoming() }
            }
            let previous = try await takeOverOwnership(name)
            do {
                return try await queued(name) { vm throws(ControlError) in try await vm.commitIncoming() }
            } catch {
                // Not resumed here: the source keeps (and resumes) the guest, and with it the ownership.
                await handBackOwnership(name, to: previous)
                throw error
            }
        }
        return try await queued(name) { vm throws(ControlError) in try await vm.commitIncoming() }
    }

    public func abortIncoming(_ name: String) async throws(ControlError) {
        let vm = try vm(name)
        guard await vm.currentState == .incoming else {
            throw .conflict("cannot abort \(name): it is not an incoming migration")
        }
        await vm.queue.run { await vm.abortIncoming() }
        await forget(name, vm: vm)
    }

    /// Settles the incoming migration if its source has not committed it by `options.incomingDeadline` (and again
    /// every deadline while the stream is still moving).
    func armIncomingDeadline(_ name: String, vm: ManagedVM) async {
        let deadline = options.incomingDeadline
        await vm.armIncomingDeadline(Task { [weak self] in
            while true {
                do { try await Task.sleep(for: deadline) } catch { return }
                guard let self, await self.incomingDeadlinePassed(name, vm: vm, deadline: deadline) else { return }
            }
        })
    }

    /// True while the stream is still moving (look again later).
    private func incomingDeadlinePassed(_ name: String, vm: ManagedVM, deadline: Duration) async -> Bool {
        guard vms[name] === vm else { return false }
        let decision = await vm.queue.run { await vm.settleUncommitted(after: deadline) }
        if decision == .remove {
            logger.warning("removed an incoming migration never committed", metadata: ["vm": "\(name)"])
            await forget(name, vm: vm)
        }
        return decision == .wait
    }

    /// Drops a VM and its folder (an aborted or failed incoming migration).
    func forget(_ name: String, vm: ManagedVM) async {
        guard vms[name] === vm else { return }
        vms[name] = nil
        uids[name] = nil
        await vm.markRemoved()
        let output = VMLauncher.outputLines(vm.paths.qemuOutput, from: 0)
        if !output.isEmpty {
            logger.warning("incoming QEMU output", metadata: ["vm": "\(name)", "qemu": "\(output.joined(separator: " | "))"])
        }
        FileOps.removeTree(vm.paths.folder)
    }
}

/// A peer that is another `VMManager` in the same process (tests, and a daemon migrating to itself).
public struct LocalMigrationPeer: MigrationPeer {
    public let manager: VMManager
    public init(_ manager: VMManager) { self.manager = manager }
    public func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        try await manager.prepareIncoming(request)
    }
    public func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        try await manager.commitIncoming(name)
    }
    public func abortIncoming(_ name: String) async throws(ControlError) {
        try await manager.abortIncoming(name)
    }
    public func state(of name: String) async throws(ControlError) -> VMState? {
        do { return try await manager.status(name).state } catch .notFound { return nil }
    }
}
