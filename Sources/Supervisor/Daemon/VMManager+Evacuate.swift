import Cluster
import CorralControl
import CorralCore
import CorralModel
import Foundation
import Profiles
import QEMUCommand

/// `corral migrate --to NAME|auto`, `corral host evacuate` and `corral host restore` (docs/cluster.md).
///
/// Evacuate marks this host draining in etcd (`corral/drain/HOST`: no new VM, no incoming migration, no HA VM is
/// given to it), places every running VM with `ClusterPlacement.plan` and live-migrates them, `parallel` at a time,
/// recording in the drain record where each went. Restore clears the draining mark and asks each moved VM's current
/// owner to migrate it back here; the record goes once nothing is left to bring back.
extension VMManager: ClusterControl {
    public func setClusterConnector(_ connector: @escaping ClusterPeerConnector) {
        clusterConnector = connector
    }

    public func placement(_ name: String, to: String) async throws(ControlError) -> PlacementReply {
        let vm = try vm(name)
        guard options.cluster != nil else { throw .refused("--to \(to): this daemon is not in a cluster; give the destination as HOST:PORT") }
        let report = await cluster()
        switch ClusterPlacement.choose(await demand(name, vm), to: to, in: report) {
        case .success(let host): return PlacementReply(host: host.name, address: host.address)
        case .failure(let problem): throw .refused(problem.description)
        }
    }

    /// What moving `vm` asks of a destination.
    func demand(_ name: String, _ vm: ManagedVM) async -> ClusterPlacement.Demand {
        let config = await vm.config
        let accel = await vm.record.accel
        let facts = await hostFactsRead()
        let passthrough = config.profile.cpu.model == "host" || (config.profile.cpu.model == nil && accel == .kvm)
        let defaultQEMU = config.profile.qemu.binary == QEMUSettings().binary
        return ClusterPlacement.Demand(vm: name, load: await vm.committedLoad ?? Admission.Load(config),
                                       hostCPU: passthrough ? facts.cpuModel : nil,
                                       qemuVersion: defaultQEMU ? facts.qemuVersion : nil)
    }

    /// Refuses a new VM (up, start, incoming, HA adoption) while this host is draining.
    func refuseWhileDraining(_ what: String) async throws(ControlError) {
        guard let cluster = options.cluster else { return }
        let drain: DrainRecord?
        do { drain = try await cluster.drain(of: cluster.host) } catch {
            throw .unreachable("cannot tell whether this host is draining, so \(what) was refused: \(error)")
        }
        if drain?.draining == true {
            throw .refused("this host (\(cluster.host)) is draining: it takes no new VM, so \(what) was refused "
                + "(corral host restore \(cluster.host) ends the drain)")
        }
    }

    // MARK: Evacuate

    public func evacuate(_ host: String, _ request: EvacuateRequest) async throws(ControlError)
        -> AsyncStream<EvacuationUpdate>
    {
        let cluster = try clusterFor(host)
        if let problem = request.problem() { throw .invalidRequest(problem) }
        guard !evacuating else { throw .conflict("an evacuation or restore of \(host) is already running") }
        var drain: DrainRecord
        do {
            drain = try await cluster.drain(of: host) ?? DrainRecord(draining: true, since: Date().timeIntervalSince1970)
            drain.draining = true
            try await cluster.setDrain(drain)
            drainRecord = drain
        } catch {
            throw .unreachable("cannot mark \(host) draining in the cluster: \(error)")
        }
        evacuating = true
        let report: ClusterReport = await self.cluster()
        var demands: [ClusterPlacement.Demand] = []
        var summary = EvacuationSummary(host: host)
        for name in vms.keys.sorted() {
            guard let vm = vms[name] else { continue }
            let state = await vm.currentState
            if let refusal = HostDeviceMigration.refusal(await vm.config) {
                summary.stayed[name] = refusal
            } else if state == .running || state == .paused {
                demands.append(await demand(name, vm))
            } else {
                summary.stayed[name] = "it is \(state.rawValue): only running and paused VMs move"
            }
        }
        var steps: [EvacuationStep] = summary.stayed.keys.sorted().map { EvacuationStep(vm: $0, reason: summary.stayed[$0]) }
        var moves: [(vm: String, host: String, address: String)] = []
        for (vm, outcome) in ClusterPlacement.plan(demands, in: report) {
            switch outcome {
            case .success(let target):
                steps.append(EvacuationStep(vm: vm, to: target.name))
                moves.append((vm, target.name, target.address))
            case .failure(let problem):
                summary.stayed[vm] = problem.description
                steps.append(EvacuationStep(vm: vm, reason: problem.description))
            }
        }
        logger.notice("evacuating this host", metadata: ["host": "\(host)", "moves": "\(moves.count)", "staying": "\(summary.stayed.count)"])
        let options = request.options ?? MigrationOptions()
        let parallel = request.parallel ?? EvacuateRequest.defaultParallel
        let (updates, sink) = AsyncStream<EvacuationUpdate>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        sink.yield(.plan(steps))
        let initial = summary
        Task {
            var summary = initial
            let outcomes = await Self.bounded(moves, parallel: parallel) { move in
                let failure = await self.moveAway(move.vm, to: move.address, options: options, sink: sink)
                if failure == nil { await self.recordMoved(move.vm, to: move.host) }
                return (vm: move.vm, host: move.host, failure: failure)
            }
            for outcome in outcomes {
                if let failure = outcome.failure { summary.failed[outcome.vm] = failure.message } else { summary.moved[outcome.vm] = outcome.host }
            }
            sink.yield(.finished(summary))
            sink.finish()
            await self.evacuationEnded()
        }
        return updates
    }

    /// One live migration of an evacuation; nil when it succeeded.
    private func moveAway(_ name: String, to address: String, options: MigrationOptions,
                          sink: AsyncStream<EvacuationUpdate>.Continuation) async -> ControlError? {
        let request: MigrateRequest
        do { request = MigrateRequest(to: try HostPort(parsing: address), token: nil, options: options) } catch {
            let failure = ControlError.internalError("the destination's address \(address) is not HOST:PORT")
            sink.yield(.failed(vm: name, failure))
            return failure
        }
        return await Self.relay(name, ended: .internalError("the migration of \(name) ended without an outcome"),
                                sink: sink) { () async throws(ControlError) in try await self.migrate(name, request) }
    }

    /// Records a finished move. Moves end concurrently and each write of the record awaits etcd: the record is
    /// changed here, at once, and written by one writer after another, each writing the record as it is then.
    private func recordMoved(_ vm: String, to target: String) async {
        drainRecord?.moved[vm] = target
        await writeDrainRecord()
    }

    private func writeDrainRecord() async {
        let previous = drainWriter
        let write = Task { () async -> Void in
            await previous?.value
            await self.flushDrainRecord()
        }
        drainWriter = write
        await write.value
    }

    private func flushDrainRecord() async {
        guard let cluster = options.cluster, let record = drainRecord else { return }
        do {
            try await cluster.setDrain(record.moved.isEmpty && !record.draining ? nil : record)
        } catch {
            logger.error("cannot write this host's drain record: restore may not bring every VM back",
                         metadata: ["moved": "\(record.moved)", "error": "\(error)"])
        }
    }

    private func evacuationEnded() { evacuating = false }

    // MARK: Restore

    public func restore(_ host: String, _ request: EvacuateRequest) async throws(ControlError)
        -> AsyncStream<EvacuationUpdate>
    {
        let cluster = try clusterFor(host)
        if let problem = request.problem() { throw .invalidRequest(problem) }
        guard !evacuating else { throw .conflict("an evacuation or restore of \(host) is already running") }
        guard let connector = clusterConnector else {
            throw .refused("restore asks other hosts' daemons to migrate VMs back, which needs this daemon's TCP API "
                + "and its admin token (corral daemon --listen … --token-file …, the same token on every host)")
        }
        let drain: DrainRecord
        let owners: [String: String]
        let hosts: [(name: String, record: HostRecord?, lease: Int64)]
        do {
            guard let found = try await cluster.drain(of: host) else {
                throw ControlError.conflict("host \(host) is not draining and has no evacuated VM to bring back")
            }
            drain = found
            owners = try await cluster.owners()
            hosts = try await cluster.hosts()
            // The drain ends first: the VMs come back to a host that takes them.
            var ended = drain
            ended.draining = false
            try await cluster.setDrain(ended.moved.isEmpty ? nil : ended)
            drainRecord = ended
        } catch let error as ControlError {
            throw error
        } catch {
            throw .unreachable("cannot read or end \(host)'s drain in the cluster: \(error)")
        }
        guard let here = hosts.first(where: { $0.name == host })?.record?.address,
              let address = try? HostPort(parsing: here) else {
            throw .refused("this host published no API address (corral daemon --listen or --host-address)")
        }
        var summary = EvacuationSummary(host: host)
        var steps: [EvacuationStep] = []
        var moves: [(vm: String, owner: String, address: HostPort)] = []
        var settled: [String] = []
        for vm in drain.moved.keys.sorted() {
            let owner = owners[vm]
            if owner == host || (owner == nil && vms[vm] != nil) {
                settled.append(vm)
                summary.moved[vm] = host
                steps.append(EvacuationStep(vm: vm, reason: "already here"))
            } else if let owner, let peer = hosts.first(where: { $0.name == owner })?.record?.address,
                      let peerAddress = try? HostPort(parsing: peer) {
                moves.append((vm, owner, peerAddress))
                steps.append(EvacuationStep(vm: vm, to: host))
            } else {
                let why = owner.map { "its owner \($0) is not live" } ?? "no host owns it now (removed?)"
                summary.stayed[vm] = why
                steps.append(EvacuationStep(vm: vm, reason: why))
                if owner == nil { settled.append(vm) }
            }
        }
        for vm in settled { await forgetMoved(vm) }
        evacuating = true
        logger.notice("restoring this host", metadata: ["host": "\(host)", "moves": "\(moves.count)"])
        let options = request.options ?? MigrationOptions()
        let parallel = request.parallel ?? EvacuateRequest.defaultParallel
        let (updates, sink) = AsyncStream<EvacuationUpdate>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        sink.yield(.plan(steps))
        let initial = summary
        Task {
            var summary = initial
            let outcomes = await Self.bounded(moves, parallel: parallel) { move in
                let failure = await Self.bringBack(move.vm, from: connector(move.address),
                                                   request: MigrateRequest(to: address, token: nil, options: options),
                                                   sink: sink)
                if failure == nil { await self.forgetMoved(move.vm) }
                return (vm: move.vm, failure: failure)
            }
            for outcome in outcomes {
                if let failure = outcome.failure { summary.failed[outcome.vm] = failure.message } else { summary.moved[outcome.vm] = host }
            }
            sink.yield(.finished(summary))
            sink.finish()
            await self.evacuationEnded()
        }
        return updates
    }

    /// Asks the VM's owner to migrate it here; nil when it came back.
    private static func bringBack(_ name: String, from peer: any ClusterPeer, request: MigrateRequest,
                                  sink: AsyncStream<EvacuationUpdate>.Continuation) async -> ControlError? {
        await relay(name, ended: .unreachable("the migration of \(name) back here ended without an outcome"),
                    sink: sink) { () async throws(ControlError) in try await peer.migrate(name, request) }
    }

    /// Passes one migration's updates on as the VM's (progress once a second at most: enough for a view of several
    /// at once); nil when it completed, else why not (`ended` when the stream stopped without an outcome).
    private static func relay(_ name: String, ended: ControlError, sink: AsyncStream<EvacuationUpdate>.Continuation,
                              start: @Sendable () async throws(ControlError) -> AsyncStream<MigrationUpdate>) async -> ControlError? {
        do {
            var lastProgress = ContinuousClock.now - .seconds(1)
            for await update in try await start() {
                switch update {
                case .progress(let progress):
                    guard ContinuousClock.now - lastProgress >= .seconds(1) else { continue }
                    lastProgress = .now
                    sink.yield(.progress(vm: name, progress))
                case .completed(let result):
                    sink.yield(.moved(vm: name, result))
                    return nil
                case .failed(let error):
                    sink.yield(.failed(vm: name, error))
                    return error
                }
            }
            sink.yield(.failed(vm: name, ended))
            return ended
        } catch {
            sink.yield(.failed(vm: name, error))
            return error
        }
    }

    /// Drops a VM from this host's drain record (it is back, or gone); the record goes with its last VM once the
    /// host no longer drains.
    private func forgetMoved(_ vm: String) async {
        drainRecord?.moved[vm] = nil
        await writeDrainRecord()
    }

    // MARK: Helpers

    /// The cluster member, when `host` names this host.
    private func clusterFor(_ host: String) throws(ControlError) -> ClusterMember {
        guard let cluster = options.cluster else { throw .refused("this daemon is not in a cluster") }
        guard host == cluster.host else {
            throw .notFound("no live host named \(host) in the cluster (this is \(cluster.host))")
        }
        return cluster
    }

    /// Runs `work` on every item, at most `parallel` at once; the results in the order they ended.
    static func bounded<Item: Sendable, Result: Sendable>(
        _ items: [Item], parallel: Int, _ work: @escaping @Sendable (Item) async -> Result
    ) async -> [Result] {
        await withTaskGroup(of: Result.self) { group in
            var next = items.makeIterator()
            var results: [Result] = []
            for _ in 0..<max(1, parallel) {
                guard let item = next.next() else { break }
                group.addTask { await work(item) }
            }
            while let result = await group.next() {
                results.append(result)
                if let item = next.next() { group.addTask { await work(item) } }
            }
            return results
        }
    }
}
