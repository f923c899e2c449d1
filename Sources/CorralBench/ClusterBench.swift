import Cluster
import CorralModel
import Foundation
import Logging
import Supervisor

// `corral-bench cluster`: what the cluster costs and how fast HA is, with a real etcd (scripts/bench-cluster).
//   1. ownership overhead: `up` of the same paused VM on a manager without a cluster and on one in the cluster
//      (the claim transaction before QEMU starts), alternating, RUNS each;
//   2. failover: an `ha: true` guest on host-a, host-a's link to etcd cut at t0; when host-a has paused it, when
//      host-b runs it, when host-b's guest prints its first heartbeat; FAILOVERS rounds;
//   3. evacuation (EvacuationBench.swift): EVACUATE guests off a host one by one and all at once, and back.

func runClusterBench(_ arguments: [String]) async {
    let flags = Flags(arguments) { usage() }
    guard let stateDir = flags.string("--state-dir"), let profilePath = flags.string("--profile"),
          let etcd = flags.string("--etcd") else { usage() }
    let runs = flags.int("--runs", default: 10)
    let failovers = flags.int("--failovers", default: 3)
    let evacuateVMs = flags.int("--evacuate", default: 3)
    let evacuations = flags.int("--evacuations", default: 2)
    let urls = etcd.split(separator: ",").map(String.init)
    var logger = Logger(label: "corral-bench")
    logger.logLevel = .error

    func member(_ host: String, _ store: any ClusterStore) -> ClusterMember {
        ClusterMember(host: host, store: store, record: HostRecord(address: "192.0.2.1:7070", joinedAt: 0), logger: logger)
    }
    func manager(_ folder: String, _ cluster: ClusterMember?) async -> VMManager {
        var options = DaemonOptions(autoBalloon: false, manageKSM: false, cgroupRoot: nil)
        options.cluster = cluster
        do { return try await VMManager.open(stateRoot: stateDir + "/" + folder, logger: logger, options: options) } catch {
            fail("cannot open \(folder): \(error)")
        }
    }
    let gateway: () -> EtcdGateway = {
        do { return try EtcdGateway(urls: urls) } catch { fail("--etcd: \(error)") }
    }

    // 1. Ownership overhead.
    let solo = member("bench-solo", gateway())
    do { try await solo.join() } catch { fail("cannot join etcd at \(etcd): \(error)") }
    let plain = await manager("plain", nil)
    let clustered = await manager("clustered", solo)
    var plainTimes: [Double] = [], clusteredTimes: [Double] = []
    for run in 0..<(2 * runs) {
        let useCluster = (run % 2 == 1) != ((run / 2) % 2 == 1)
        let target = useCluster ? clustered : plain
        let start = monotonicNanoseconds()
        do { _ = try await target.up(UpRequest(profile: profilePath, name: "owned", paused: true)) } catch {
            fail("up: \(error)")
        }
        let ms = seconds(since: start) * 1000
        if useCluster { clusteredTimes.append(ms) } else { plainTimes.append(ms) }
        do { try await target.remove("owned", force: true) } catch { fail("rm: \(error)") }
    }
    await plain.shutdown()
    await clustered.shutdown()
    await solo.leave()

    // 2. Failover.
    var pausedAfter: [Double] = [], runningAfter: [Double] = [], heartbeatAfter: [Double] = []
    let haProfile: String
    do {
        var text = try String(contentsOfFile: profilePath, encoding: .utf8)
        text += "\nha: true\n"
        haProfile = stateDir + "/ha.yaml"
        try text.write(toFile: haProfile, atomically: true, encoding: .utf8)
    } catch { fail("cannot write the HA profile: \(error)") }
    for round in 1...max(1, failovers) {
        note("failover round \(round)/\(failovers)")
        let link = SeveredStore(gateway())
        let a = member("bench-a", link), b = member("bench-b", gateway())
        do {
            try await a.join()
            try await b.join()
        } catch { fail("join: \(error)") }
        let hostA = await manager("ha-a-\(round)", a), hostB = await manager("ha-b-\(round)", b)
        let loops = [Task { await hostA.run() }, Task { await hostB.run() }]
        let started: VMStatus
        do { started = try await hostA.up(UpRequest(profile: haProfile, name: "ha")) } catch { fail("up on host-a: \(error)") }
        _ = await waitForHeartbeat(started.serialLog, after: 0, within: 120)
        let t0 = monotonicNanoseconds()
        link.isCut = true
        var paused: Double?, running: Double?
        while running == nil, seconds(since: t0) < 120 {
            if paused == nil, (try? await hostA.status("ha"))?.state == .paused { paused = seconds(since: t0) }
            if (try? await hostB.status("ha"))?.state == .running { running = seconds(since: t0) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        guard let running, let moved = try? await hostB.status("ha") else { fail("host-b never ran the HA VM") }
        let beat = await waitForHeartbeat(moved.serialLog, after: 0, within: 120)
        pausedAfter.append(paused ?? .nan)
        runningAfter.append(running)
        heartbeatAfter.append(beat.map { _ in seconds(since: t0) } ?? .nan)
        // Back to nothing: host-a rejoins and drops its copy; host-b removes the VM.
        link.isCut = false
        let deadline = monotonicNanoseconds() + 60_000_000_000
        while !(await hostA.list().isEmpty), monotonicNanoseconds() < deadline { try? await Task.sleep(for: .milliseconds(200)) }
        try? await hostB.remove("ha", force: true)
        for loop in loops { loop.cancel() }
        await a.leave()
        await b.leave()
    }

    // 3. Evacuation.
    let evac = await runEvacuationBench(stateDir: stateDir + "/evac", profile: profilePath, urls: urls,
                                        vms: evacuateVMs, rounds: evacuations, logger: logger)

    let overheadPlain = Spread(plainTimes), overheadCluster = Spread(clusteredTimes)
    print("| measure | median (min–max) | runs |")
    print("|---|---:|---:|")
    if let overheadPlain, let overheadCluster {
        print("| `up` of a paused VM, no cluster (ms) | \(overheadPlain.cell) | \(overheadPlain.count) |")
        print("| `up` of a paused VM, in the cluster: the ownership claim first (ms) | \(overheadCluster.cell) | \(overheadCluster.count) |")
        print("| ownership overhead, difference of medians (ms) | \(decimal(overheadCluster.median - overheadPlain.median)) | |")
    }
    for (label, values) in [("host-a cut off → its HA guest paused (s)", pausedAfter),
                            ("host-a cut off → host-b runs the VM (s), goal ≤ 25 s", runningAfter),
                            ("host-a cut off → first heartbeat of the guest on host-b (s)", heartbeatAfter)] {
        if let spread = Spread(values.filter { !$0.isNaN }) { print("| \(label) | \(spread.cell) | \(spread.count) |") }
    }
    for (label, values) in [("evacuate \(evacuateVMs) guests one by one, --parallel 1 (s)", evac.serial),
                            ("evacuate \(evacuateVMs) guests at once, --parallel \(evacuateVMs) (s)", evac.parallel),
                            ("restore them one by one (s)", evac.restoreSerial),
                            ("restore them at once (s)", evac.restoreParallel)] {
        if let spread = Spread(values) { print("| \(label) | \(spread.cell) | \(spread.count) |") }
    }
}

/// Seconds until a heartbeat line appears in `log` (from byte `after`), or nil.
func waitForHeartbeat(_ log: String, after offset: Int, within limit: Double) async -> Double? {
    let start = monotonicNanoseconds()
    while seconds(since: start) < limit {
        if let data = FileManager.default.contents(atPath: log), data.count > offset,
           String(decoding: data[offset...], as: UTF8.self).contains("CORRAL-HB n=") {
            return seconds(since: start)
        }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return nil
}
