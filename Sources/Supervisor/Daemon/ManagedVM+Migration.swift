import CorralControl
import CorralCore
import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import QMP

/// Live migration, source side. The QMP sequences come from `MigrationPlan` (pure); this file
/// is the choreography and the failure handling (docs/migration.md): on any failure before the
/// switch-over the source keeps (or resumes) the guest and the destination is told to abort.
extension ManagedVM {
    struct OutgoingMigration: Sendable {
        var destination: String
        var progress: MigrationProgress?
        /// The executor driving `MigrationStateMachine` (cancel requests go to it).
        var run: MigrationRun?
    }

    /// How often the source asks `query-migrate` for progress figures (the end comes from MIGRATION events).
    static let migrationProgressInterval: Duration = .milliseconds(250)

    /// `request` has passed `validate()` (`VMManager.migrate`). `onProgress` gets every progress figure as it comes
    /// (the caller streams it to `corral migrate`).
    func migrateOut(_ request: MigrateRequest, peer: any MigrationPeer, tlsDirectory: String,
                    onProgress: @escaping @Sendable (MigrationProgress) -> Void = { _ in })
        async throws(ControlError) -> MigrationResult
    {
        try check(.migrate)
        let options = request.options
        let endpoint = request.to
        if options.tls, !FileOps.exists(tlsDirectory + "/ca-cert.pem") {
            throw .invalidRequest("--tls needs certificates in \(tlsDirectory) (ca-cert.pem, client-cert.pem, client-key.pem)")
        }
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        // An unprivileged QEMU reads the credentials from a copy it may read, removed when the migration ends.
        var tlsFolder = tlsDirectory
        if options.tls, let uid = record.uid {
            do { tlsFolder = try TLSHandOver.stage(tlsDirectory, pid: vm.process.pid, uid: uid) } catch {
                throw .internalError(error.description)
            }
        }
        defer { if options.tls, record.uid != nil { TLSHandOver.remove(pid: vm.process.pid) } }
        let previous = state
        let destination = endpoint.description
        await feed(.migrationStarted)
        outgoing = OutgoingMigration(destination: destination)
        // Journaled before the first step: a daemon that dies from here on finds out how it ended (see
        // `resolveInterruptedMigration`).
        record.migratingTo = MigrationJournal(destination: endpoint, token: request.token,
                                              sourceWasRunning: previous != .paused)
        persist()
        await hub.publish(vm: name, .migrationStarted, ["to": .string(destination)])

        var sizes: [String: UInt64] = [:]
        if options.withStorage { sizes = await diskSizes(vm) }
        let incoming = IncomingRequest(config: config, accel: record.accel, options: options,
                                       listenHost: endpoint.host, diskSizes: sizes)
        let setup = MigrationRunSetup(name: name, options: options, incoming: incoming,
                                      disks: allDisks().map(MigrationDisk.init), tlsDirectory: tlsFolder,
                                      tlsHostname: endpoint.host, sourceWasRunning: previous != .paused)
        // The journal goes when the migration has an outcome here; with the owner unknown it stays, and the
        // destination is asked again until it answers (`keepResolving`).
        var ownerUnknown = false
        defer {
            if ownerUnknown {
                keepResolving(peer)
            } else {
                record.migratingTo = nil
                persist()
            }
        }
        let migration = MigrationRun(
            setup, qmp: vm.qmp, peer: peer, ticks: MigrationRun.ticker(every: Self.migrationProgressInterval),
            progress: { [weak self] progress in
                onProgress(progress)
                await self?.noteMigrationProgress(progress)
            },
            willStopSource: { [weak self] in await self?.stopAsMigratedSource(note: "migrated to \(destination)") })
        outgoing?.run = migration
        let outcome = await migration.run()
        outgoing = nil

        if outcome.state == .completed {
            var status = await vm.process.waitForExit(timeout: .seconds(10))
            if status == nil {
                vm.process.signal(SIGKILL)
                status = await vm.process.waitForExit(timeout: .seconds(10))
            }
            await processEnded(vm, status: status ?? .unknown)
            await hub.publish(vm: name, .migrated, ["to": .string(destination)])
            let final = outcome.final
            return MigrationResult(name: name, destination: destination, totalMilliseconds: final?.totalTimeMs,
                                   downtimeMilliseconds: final?.downtimeMs, setupMilliseconds: final?.setupTimeMs,
                                   transferredBytes: final?.ramTransferred.map { UInt64(max(0, $0)) })
        }
        let error = failureError(outcome)
        ownerUnknown = outcome.failure?.consequence == .ownerUnknown
        await feed(.migrationRolledBack(ownerUnknown: outcome.failure?.consequence == .ownerUnknown))
        var data: JSONObject = ["reason": .string(error.message)]
        if outcome.failure?.consequence == .guestLost { data["postcopy"] = true }
        if let consequence = outcome.failure?.consequence { data["consequence"] = .string(consequence.rawValue) }
        await hub.publish(vm: name, .migrationFailed, .object(data))
        throw error
    }

    /// The error `corral migrate` reports: the peer's own refusal as it came, otherwise what the machine says.
    private func failureError(_ outcome: MigrationRunOutcome) -> ControlError {
        if outcome.state == .cancelled { return .conflict("migration cancelled; \(name) keeps running here") }
        guard let failure = outcome.failure else {
            return outcome.cause ?? .internalError("the migration of \(name) ended in \(outcome.state)")
        }
        switch failure.consequence {
        case .sourceKeepsRunning:
            if outcome.destinationRefused, let cause = outcome.cause { return cause }
            return failed("\(name) keeps running here")
        case .sourceExited:
            return failed("the destination was told to abort")
        case .ownerUnknown:
            return failed("\(name) is left paused here: check the destination before resuming it")
        case .guestLost:
            return failed("postcopy migration failed after the switch-over; the guest is lost")
        }
        /// The machine's cause keeps its kind (a QMP failure keeps its command and class; a lost peer stays
        /// unreachable); the consequence is added to it.
        func failed(_ consequence: String) -> ControlError {
            switch outcome.cause {
            case .qmp(let qmp)?: return .qmp(qmp.noting(consequence))
            case .unreachable(let m)?: return .unreachable("\(m); \(consequence)")
            case let other?: return .qmp(QMPFailure(desc: other.message, note: consequence))
            case nil: return .qmp(QMPFailure(desc: failure.reason, note: consequence))
            }
        }
    }

    /// `corral migrate --cancel`: the machine decides whether it is still possible.
    func requestCancel() async throws(ControlError) {
        guard let run = outgoing?.run else { throw .conflict("\(name) is not migrating") }
        do { try await run.cancel() } catch {
            throw .conflict("\(name): \(error.description)")
        }
    }

    var migrationProgress: MigrationProgress? { outgoing?.progress }

    private func noteMigrationProgress(_ progress: MigrationProgress) async {
        outgoing?.progress = progress
        await hub.publish(vm: name, .migrationProgress, JSONValue(encoding: progress))
    }


    /// Virtual size of each disk by id (`query-block`), for the destination to create its images.
    private func diskSizes(_ vm: RunningVM) async -> [String: UInt64] {
        var sizes: [String: UInt64] = [:]
        for disk in allDisks() {
            let node = DeviceProps.formatNodeName(disk)
            if let info = try? await vm.qmp.execute("query-named-block-nodes", ["flat": true]),
                let entry = info.arrayValue?.first(where: { $0["node-name"]?.stringValue == node }),
                let size = entry["image"]?["virtual-size"]?.intValue
            {
                sizes[disk.id] = UInt64(size)
            }
        }
        return sizes
    }

    func allDisks() -> [Disk] { config.allDisks }

    enum InterruptedMigration: Equatable {
        /// No journaled migration, or it was resolved with the guest running (or paused, as it was) here.
        case keptHere
        /// The destination runs the guest: this QEMU was ended, the manager forgets the VM.
        case movedAway
        /// The destination could not be asked: the guest is left as QEMU has it, the journal kept for the next try.
        case unresolved(String)
    }

    /// A daemon that restarted while this VM was migrating away: QEMU went on without it. The destination says how
    /// it ended. Committed there (running or paused): this copy goes. Incoming there, or not there at all: the
    /// migration is cancelled here, the destination's copy aborted, and the guest resumed here if it was running.
    func resolveInterruptedMigration(_ peer: any MigrationPeer) async -> InterruptedMigration {
        guard let journal = record.migratingTo, let vm = running else { return .keptHere }
        let there: VMState?
        do { there = try await peer.state(of: name) } catch {
            logger.error("cannot resolve an interrupted migration", metadata: ["to": "\(journal.destination)", "error": "\(error.message)"])
            return .unresolved(error.message)
        }
        if there == .running || there == .paused {
            disksWentWithMigration = true
            await end(note: "migrated to \(journal.destination) (completed while the daemon was down)")
            await hub.publish(vm: name, .migrated, ["to": .string(journal.destination.description)])
            return .movedAway
        }
        _ = try? await vm.qmp.send(MigrationPlan.cancel())
        if there == .incoming { try? await peer.abortIncoming(name) }
        let status = (try? await vm.qmp.queryStatus())?.status
        if journal.sourceWasRunning, status == "postmigrate" || status == "finish-migrate" || status == "paused" {
            // Stopped by the migration (it had run when the migration began): the guest runs here again.
            if (try? await vm.qmp.cont()) != nil { await feed(.resumedByRequest) }
        }
        record.migratingTo = nil
        persist()
        await hub.publish(vm: name, .migrationFailed, ["reason": "the daemon restarted during the migration; rolled back"])
        return .keptHere
    }

    /// With the owner unknown (the destination did not answer the commit), the destination is asked again, soon at
    /// first and then every 5 s for about 5 minutes, until it answers: then the guest resumes here or this copy goes
    /// (`resolveInterruptedMigration`).
    func keepResolving(_ peer: any MigrationPeer) {
        resolver?.cancel()
        resolver = Task { [weak self] in
            for attempt in 0..<64 {
                do { try await Task.sleep(for: .seconds(min(5, attempt + 1))) } catch { return }
                guard let self else { return }
                let outcome = await self.queue.run { await self.resolveInterruptedMigration(peer) }
                switch outcome {
                case .keptHere: return
                case .movedAway:
                    await self.migratedAway()
                    return
                case .unresolved: continue
                }
            }
        }
    }

    func setOnMigratedAway(_ handler: @escaping @Sendable (String) async -> Void) { onMigratedAway = handler }

    private func migratedAway() async { await onMigratedAway?(name) }

    /// The source's QEMU is about to stop because the destination now runs the guest: the disks are the
    /// destination's now (it claims them at its commit), so this side must not give them back at its exit.
    func stopAsMigratedSource(note: String) async {
        disksWentWithMigration = true
        await feed(.endRequested(note: note))
    }
}
