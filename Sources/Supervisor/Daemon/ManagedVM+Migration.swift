import Foundation
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
        var cancelRequested = false
        var progress: MigrationProgress?
        var disks: [MigrationDisk] = []
        var mirroring = false
        var postcopyStarted = false
        /// The destination took the guest over (postcopy: at the switch-over).
        var destinationCommitted = false
    }

    func migrateOut(_ request: MigrateRequest, to endpoint: MigrationEndpoint, peer: any MigrationPeer,
                    tlsDirectory: String) async throws(ControlError) -> MigrationResult {
        try check(.migrate)
        let options = request.options
        let problems = options.problems()
        guard problems.isEmpty else { throw .invalidRequest(problems.joined(separator: "; ")) }
        if options.tls, !FileOps.exists(tlsDirectory + "/ca-cert.pem") {
            throw .invalidRequest("--tls needs certificates in \(tlsDirectory) (ca-cert.pem, client-cert.pem, client-key.pem)")
        }
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        let previous = state
        let destination = "\(endpoint.host):\(endpoint.port)"
        state = .migrating
        outgoing = OutgoingMigration(destination: destination)
        await hub.publish(vm: name, .corral, "migration-started", ["to": .string(destination)])

        var sizes: [String: UInt64] = [:]
        if options.withStorage { sizes = await diskSizes(vm) }
        let incoming = IncomingRequest(config: config, accel: record.accel, options: options,
                                       listenHost: endpoint.host, diskSizes: sizes)
        var prepared = false
        var committed = false
        do throws(ControlError) {
            let reply = try await peer.prepareIncoming(incoming)
            prepared = true
            let final = try await runSource(vm, options, reply: reply, endpoint: endpoint, tlsDirectory: tlsDirectory) {
                () async throws(ControlError) in
                // Postcopy: the destination must run as soon as it holds the CPU state.
                _ = try await peer.commitIncoming(self.name)
                committed = true
            }
            if !committed {
                // Only a destination that confirms it runs the guest may take it: otherwise resume here.
                do { _ = try await peer.commitIncoming(name) } catch let failure {
                    throw ControlError.qmp("the destination could not take over \(name) (\(failure)); it keeps running here")
                }
                committed = true
            }
            exitRequested = true
            _ = try? await vm.qmp.execute("quit", nil, timeout: .seconds(3))
            if await vm.process.waitForExit(timeout: .seconds(10)) == nil { vm.process.signal(SIGKILL) }
            await finishExit(generation: generation, status: nil, note: "migrated to \(destination)")
            outgoing = nil
            await hub.publish(vm: name, .corral, "migrated", ["to": .string(destination)])
            return MigrationResult(name: name, destination: destination, totalMilliseconds: final.totalTimeMs,
                                   downtimeMilliseconds: final.downtimeMs, setupMilliseconds: final.setupTimeMs,
                                   transferredBytes: final.ramTransferred.map { UInt64(max(0, $0)) })
        } catch {
            if committed && options.postcopy && outgoing?.postcopyStarted == true {
                // Past a postcopy switch-over the guest's memory is split between the hosts: it cannot come back.
                outgoing = nil
                await hub.publish(vm: name, .corral, "migration-failed", ["reason": .string(error.message), "postcopy": true])
                throw .qmp("postcopy migration failed after the switch-over; the guest is lost: \(error.message)")
            }
            await rollbackSource(vm, wasPaused: previous == .paused)
            if prepared { try? await peer.abortIncoming(name) }
            outgoing = nil
            if running != nil { state = previous == .paused ? .paused : .running }
            await hub.publish(vm: name, .corral, "migration-failed", ["reason": .string(error.message)])
            throw error
        }
    }

    /// `corral migrate --cancel`: asks QEMU to stop; `migrateOut` then rolls back.
    func requestCancel() async throws(ControlError) {
        guard outgoing != nil, let vm = running else { throw .conflict("\(name) is not migrating") }
        guard outgoing?.postcopyStarted != true else {
            throw .conflict("\(name) is past the postcopy switch-over; it can no longer be cancelled")
        }
        outgoing?.cancelRequested = true
        _ = try? await vm.qmp.execute(MigrationPlan.cancel().command)
        for disk in outgoing?.disks ?? [] {
            _ = try? await vm.qmp.execute("block-job-cancel", ["device": .string(disk.mirrorJobID), "force": true])
        }
    }

    var migrationProgress: MigrationProgress? { outgoing?.progress }

    private func send(_ qmp: QMPClient, _ step: MigrationCommand) async throws(ControlError) {
        do { _ = try await qmp.execute(step.command, step.arguments.isEmpty ? nil : step.arguments) } catch {
            throw .qmp("\(step.command): \(error.description)")
        }
    }

    private func runSource(_ vm: RunningVM, _ options: MigrationOptions, reply: IncomingReply,
                           endpoint: MigrationEndpoint, tlsDirectory: String,
                           onPostcopy: () async throws(ControlError) -> Void) async throws(ControlError) -> MigrationProgress {
        let qmp = vm.qmp
        let deadline = options.timeoutSeconds.map { Date().addingTimeInterval(Double($0)) }
        var tlsID: String?
        if options.tls {
            tlsID = MigrationPlan.tlsCredsID
            _ = try? await qmp.execute("object-del", ["id": .string(MigrationPlan.tlsCredsID)])
            try await send(qmp, MigrationPlan.objectAdd(
                MigrationPlan.tlsCredsObject(id: MigrationPlan.tlsCredsID, endpoint: .client, dir: tlsDirectory)))
        }
        if options.withStorage {
            guard let host = reply.nbdHost, let port = reply.nbdPort else {
                throw .internalError("the destination did not export the disks over NBD")
            }
            let disks = allDisks().map(MigrationDisk.init)
            outgoing?.disks = disks
            outgoing?.mirroring = true
            for step in MigrationPlan.startMirrors(disks, nbd: MigrationEndpoint(host: host, port: port), tlsCredsID: tlsID) {
                try await send(qmp, step)
            }
            try await waitForMirrorsReady(qmp, jobs: disks.map(\.mirrorJobID), deadline: deadline)
        }
        for step in MigrationPlan.sourceSetup(options: options, tlsCredsID: tlsID, tlsHostname: endpoint.host) {
            try await send(qmp, step)
        }
        try await send(qmp, MigrationPlan.start(uri: reply.uri))
        return try await follow(qmp, options: options, deadline: deadline, onPostcopy: onPostcopy)
    }

    /// Polls `query-migrate` (as libvirt does) for progress and the end, reacting to the phases.
    private func follow(_ qmp: QMPClient, options: MigrationOptions, deadline: Date?,
                        onPostcopy: () async throws(ControlError) -> Void) async throws(ControlError) -> MigrationProgress {
        var lastTransferred: Int64 = -1
        var lastMovement = Date()
        let stallLimit: TimeInterval = 20
        while true {
            let reply: JSONValue
            do { reply = try await qmp.execute("query-migrate", nil, timeout: .seconds(5)) } catch {
                throw .qmp("query-migrate: \(error.description)")
            }
            let progress = MigrationProgress(queryMigrate: reply)
            outgoing?.progress = progress
            await hub.publish(vm: name, .corral, "migration-progress", progress.eventData)
            switch progress.status {
            case .completed?:
                return progress
            case .failed?:
                throw .qmp("the migration failed: \(progress.errorDescription ?? "QEMU gave no reason")")
            case .cancelled?:
                throw outgoing?.cancelRequested == true
                    ? .conflict("migration cancelled; \(name) keeps running here")
                    : .qmp("QEMU cancelled the migration")
            case .preSwitchover?:
                // Storage is in sync and the source is paused: end the mirrors cleanly, then switch over.
                for step in MigrationPlan.finishMirrors(outgoing?.disks ?? [], force: false) { try await send(qmp, step) }
                try await waitForJobsGone(qmp, jobs: (outgoing?.disks ?? []).map(\.mirrorJobID))
                outgoing?.mirroring = false
                for step in MigrationPlan.removeNBDClients(outgoing?.disks ?? []) { _ = try? await send(qmp, step) }
                try await send(qmp, MigrationPlan.continueAfterPreSwitchover())
            case .active? where options.postcopy && outgoing?.postcopyStarted == false && (progress.dirtySyncCount ?? 0) >= 1:
                try await send(qmp, MigrationPlan.postcopyStart())
                outgoing?.postcopyStarted = true
            case .postcopyActive? where outgoing?.postcopyStarted == true && outgoing?.destinationCommitted == false:
                try await onPostcopy()
                outgoing?.destinationCommitted = true
            default:
                break
            }
            if outgoing?.cancelRequested == true, progress.status?.isTerminal != true {
                _ = try? await qmp.execute(MigrationPlan.cancel().command)
            }
            let moved = progress.ramTransferred ?? 0
            if moved != lastTransferred {
                lastTransferred = moved
                lastMovement = Date()
            } else if progress.status == .active, Date().timeIntervalSince(lastMovement) > stallLimit {
                _ = try? await qmp.execute(MigrationPlan.cancel().command)
                throw .qmp("the migration stalled: no data moved for \(Int(stallLimit)) s (is the link to the destination down?)")
            }
            if let deadline, Date() > deadline, outgoing?.postcopyStarted != true {
                _ = try? await qmp.execute(MigrationPlan.cancel().command)
                throw .qmp("the migration did not finish within --timeout")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    private func waitForMirrorsReady(_ qmp: QMPClient, jobs: [String], deadline: Date?) async throws(ControlError) {
        while true {
            if outgoing?.cancelRequested == true { throw .conflict("migration cancelled; \(name) keeps running here") }
            let reply: JSONValue
            do { reply = try await qmp.execute("query-block-jobs") } catch { throw .qmp("query-block-jobs: \(error.description)") }
            let listed = reply.arrayValue ?? []
            var ready = 0
            for job in jobs {
                guard let entry = listed.first(where: { $0["device"]?.stringValue == job }) else {
                    throw .qmp("storage mirror \(job) ended before it was in sync")
                }
                if entry["ready"]?.boolValue == true { ready += 1 }
            }
            if ready == jobs.count { return }
            if let deadline, Date() > deadline { throw .qmp("storage mirroring did not finish within --timeout") }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    private func waitForJobsGone(_ qmp: QMPClient, jobs: [String]) async throws(ControlError) {
        for _ in 0..<300 {
            let reply = (try? await qmp.execute("query-block-jobs"))?.arrayValue ?? []
            if !reply.contains(where: { jobs.contains($0["device"]?.stringValue ?? "") }) { return }
            try? await Task.sleep(for: .milliseconds(100))
        }
        throw .qmp("storage mirrors did not finish at the switch-over")
    }

    /// After a failure: stop what runs, drop the NBD clients and TLS object, resume the guest.
    private func rollbackSource(_ vm: RunningVM, wasPaused: Bool) async {
        let qmp = vm.qmp
        _ = try? await qmp.execute(MigrationPlan.cancel().command)
        let disks = outgoing?.disks ?? []
        for step in MigrationPlan.finishMirrors(disks, force: true) {
            _ = try? await qmp.execute(step.command, step.arguments)
        }
        if !disks.isEmpty { try? await waitForJobsGone(qmp, jobs: disks.map(\.mirrorJobID)) }
        for step in MigrationPlan.removeNBDClients(disks) { _ = try? await qmp.execute(step.command, step.arguments) }
        _ = try? await qmp.execute("object-del", ["id": .string(MigrationPlan.tlsCredsID)])
        // A migration that reached its last phase leaves the source paused (postmigrate/paused).
        for _ in 0..<50 {
            let status = (try? await qmp.queryStatus())?.status ?? ""
            if status == "finish-migrate" || status == "inmigrate" {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            if !wasPaused && status != "running" { _ = try? await qmp.execute(MigrationPlan.resume().command) }
            // A completed precopy leaves the source in postmigrate; `cont` takes the guest back.
            break
        }
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

    func allDisks() -> [Disk] { config.profile.disks + config.hotplugged.disks.map(\.disk) }
}

extension MigrationProgress {
    /// The `migration-progress` event payload (`corral migrate` draws its bar from it).
    var eventData: JSONValue {
        var object: JSONObject = ["status": .string(rawStatus ?? "unknown")]
        if let percent { object["percent"] = .double(percent) }
        if let mib = mibPerSecond { object["mibPerSecond"] = .double(mib) }
        if let remaining = ramRemaining { object["remainingBytes"] = .int(remaining) }
        if let total = ramTotal { object["totalBytes"] = .int(total) }
        if let dirty = dirtyPagesRate { object["dirtyPagesRate"] = .int(dirty) }
        if let expected = expectedDowntimeMs { object["expectedDowntimeMs"] = .int(expected) }
        return .object(object)
    }
}
