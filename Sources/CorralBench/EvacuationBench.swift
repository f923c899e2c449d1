import Cluster
import CorralControl
import CorralModel
import Foundation
import Logging
import Supervisor

// `corral-bench cluster` part 3, evacuation: three hosts (in-process managers, each in the etcd cluster, migrating
// over loopback), N guests on host-a; `evacuate` with --parallel 1 (one by one) and --parallel N, each followed by a
// `restore`, alternating which comes first; ROUNDS rounds. Times are from the call to the summary.

/// A peer that is another manager of this process, as `restore` drives it.
struct LocalClusterPeer: ClusterPeer {
    let manager: VMManager
    func migrate(_ name: String, _ request: MigrateRequest) async throws(ControlError) -> AsyncStream<MigrationUpdate> {
        try await manager.migrate(name, request)
    }
}

struct EvacuationFigures {
    var serial: [Double] = []
    var parallel: [Double] = []
    var restoreSerial: [Double] = []
    var restoreParallel: [Double] = []
}

func runEvacuationBench(stateDir: String, profile: String, urls: [String], vms: Int, rounds: Int,
                        logger: Logger) async -> EvacuationFigures {
    let hosts = ["evac-a", "evac-b", "evac-c"]
    let ports = [7101, 7102, 7103]
    var managers: [Int: VMManager] = [:]
    var members: [ClusterMember] = []
    for (host, port) in zip(hosts, ports) {
        let store: EtcdGateway
        do { store = try EtcdGateway(urls: urls) } catch { fail("--etcd: \(error)") }
        let member = ClusterMember(host: host, store: store, record: HostRecord(address: "127.0.0.1:\(port)", joinedAt: 0),
                                   logger: logger)
        do { try await member.join() } catch { fail("join \(host): \(error)") }
        members.append(member)
        var options = DaemonOptions(autoBalloon: false, manageKSM: false, cgroupRoot: nil)
        options.cluster = member
        let box = ManagerBox()
        do {
            let manager = try await VMManager.open(stateRoot: stateDir + "/" + host, logger: logger, options: options,
                                                   peerConnector: { destination, _ in box.peer(destination.port) })
            managers[port] = manager
        } catch { fail("cannot open \(host): \(error)") }
    }
    ManagerBox.all = managers
    for manager in managers.values {
        await manager.setClusterConnector { address in LocalClusterPeer(manager: ManagerBox.all[address.port]!) }
    }
    let loops = managers.values.map { manager in Task { await manager.run() } }
    let a = managers[ports[0]]!
    for i in 0..<vms {
        do { _ = try await a.up(UpRequest(profile: profile, name: "evac\(i)")) } catch { fail("up evac\(i): \(error)") }
    }
    // Capacity is published by each host's cluster tick (every second).
    try? await Task.sleep(for: .seconds(3))

    func timed(_ action: (EvacuateRequest) async throws(ControlError) -> AsyncStream<EvacuationUpdate>, parallel: Int) async -> Double {
        let start = monotonicNanoseconds()
        do {
            for await update in try await action(EvacuateRequest(parallel: parallel)) {
                guard case .finished(let summary) = update else { continue }
                guard summary.failed.isEmpty, summary.moved.count == vms else { fail("evacuation: \(summary)") }
            }
        } catch { fail("evacuation: \(error)") }
        return seconds(since: start)
    }

    var figures = EvacuationFigures()
    for round in 1...max(1, rounds) {
        for parallel in (round % 2 == 1 ? [1, vms] : [vms, 1]) {
            note("evacuation round \(round)/\(rounds), --parallel \(parallel)")
            let out = await timed({ request throws(ControlError) in try await a.evacuate("evac-a", request) }, parallel: parallel)
            let back = await timed({ request throws(ControlError) in try await a.restore("evac-a", request) }, parallel: parallel)
            if parallel == 1 {
                figures.serial.append(out)
                figures.restoreSerial.append(back)
            } else {
                figures.parallel.append(out)
                figures.restoreParallel.append(back)
            }
        }
    }
    for i in 0..<vms { try? await a.remove("evac\(i)", force: true) }
    for loop in loops { loop.cancel() }
    for member in members { await member.leave() }
    return figures
}

/// The managers by port, for the connectors (filled once all are open).
final class ManagerBox: @unchecked Sendable {
    nonisolated(unsafe) static var all: [Int: VMManager] = [:]
    func peer(_ port: Int) -> any MigrationPeer { LocalMigrationPeer(ManagerBox.all[port]!) }
}
