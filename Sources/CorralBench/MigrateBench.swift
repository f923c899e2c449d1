// `corral-bench migrate --state-dir DIR --profile PROFILE [--rounds N]`
//
// Live migration over 127.0.0.1, two ways, each round on freshly booted test guests (same profile, same argv).
// Both clocks start with the source guest running and nothing prepared on the destination, and stop when the
// destination runs the guest:
//   A  corral: `VMManager.migrate` from one in-process manager to another (`LocalMigrationPeer`, wrapped to stamp
//      when the destination was prepared and when the commit returned, i.e. the destination runs the guest);
//   B  what an operator does by hand with a QMP client, on QEMUs started from `QEMUArgv.build` of the same
//      `LiveConfig`: start the destination QEMU with `-incoming defer -S`, connect QMP (greeting +
//      `qmp_capabilities`), `migrate-set-capabilities events` + `migrate-incoming` there; on the source
//      `migrate-set-capabilities events`, `migrate-set-parameters` (max-bandwidth, downtime-limit: what
//      `MigrationPlan.sourceSetup` sets for `MigrationOptions()`), `migrate`, then wait for the source's MIGRATION
//      event `completed`; `cont` on the destination and `query-status` there until running.
// A and B alternate (AB, then BA the next round). Per migration: wall time from the first step to the destination
// running, and `total-time`, `downtime`, `setup-time` from the source's `query-migrate` after completion.

import Foundation
import CorralModel
import JSON
import Logging
import Profiles
import QEMUCommand
import QMP
import CorralControl
import CorralCore
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

struct MigrateSample {
    var method: HotplugMethod
    /// ms from the first command until the destination runs the guest.
    var total: Double
    /// QEMU's figures from the source's final `query-migrate`.
    var qemuTotal: Double?
    var downtime: Double?
    var setup: Double?
    /// ms until the destination listens (inside the total): A: `prepareIncoming` (destination QEMU + QMP + checks +
    /// state files); B: QEMU start, QMP handshake, capabilities and `migrate-incoming`.
    var destinationPrep: Double
    /// ms from the source's `completed` (A: the commit call) until the destination runs.
    var switchover: Double
    /// A only: ms from the start until `VMManager.migrate` returned (the source QEMU has quit by then).
    var returned: Double?
}

/// Stamps the monotonic time of the destination's calls (A's breakdown).
actor MigrateStamps {
    var prepareStart: UInt64 = 0
    var prepareEnd: UInt64 = 0
    var commitStart: UInt64 = 0
    var commitEnd: UInt64 = 0
    func set(commitStart value: UInt64) { commitStart = value }
    func set(prepareStart value: UInt64) { prepareStart = value }
    func set(prepareEnd value: UInt64) { prepareEnd = value }
    func set(commitEnd value: UInt64) { commitEnd = value }
}

/// `LocalMigrationPeer` with stamps.
struct StampingPeer: MigrationPeer {
    let inner: LocalMigrationPeer
    let stamps: MigrateStamps

    func prepareIncoming(_ request: IncomingRequest) async throws(ControlError) -> IncomingReply {
        await stamps.set(prepareStart: monotonicNanoseconds())
        let reply = try await inner.prepareIncoming(request)
        await stamps.set(prepareEnd: monotonicNanoseconds())
        return reply
    }

    func commitIncoming(_ name: String) async throws(ControlError) -> VMStatus {
        await stamps.set(commitStart: monotonicNanoseconds())
        let status = try await inner.commitIncoming(name)
        await stamps.set(commitEnd: monotonicNanoseconds())
        return status
    }

    func abortIncoming(_ name: String) async throws(ControlError) {
        try await inner.abortIncoming(name)
    }
}

final class MigrateBench {
    let root: String
    let profilePath: String
    let config: LiveConfig
    let name: String
    let source: VMManager
    let destination: VMManager
    let stamps = MigrateStamps()
    var samples: [MigrateSample] = []
    var argvChecked = false
    let guestTimeout = 120.0

    init(root: String, profilePath: String, profile: Profile, source: VMManager, destination: VMManager) {
        self.root = root
        self.profilePath = profilePath
        self.config = LiveConfig(profile: profile)
        self.name = profile.name
        self.source = source
        self.destination = destination
    }

    var aSourceRoot: String { root + "/a-src" }
    var bSourceRoot: String { root + "/b-src" }
    var bDestinationRoot: String { root + "/b-dst" }

    /// Waits for a heartbeat in `log` (the watcher starts at the file's current end; a missing file counts as empty).
    func waitForHeartbeat(_ watcher: HeartbeatWatcher, _ what: String) async -> Heartbeat {
        guard let (beat, _) = await watcher.wait(timeout: guestTimeout, until: { _ in true }) else {
            fail("\(what): no heartbeat within \(guestTimeout) s (see \(watcher.path))")
        }
        return beat
    }

    // MARK: A

    func runCorral(round: Int) async {
        let serial = VMPaths(stateRoot: aSourceRoot, name: name).serialLog
        let watcher = HeartbeatWatcher(path: serial)
        let up: VMStatus
        do { up = try await source.up(UpRequest(profile: profilePath, name: name, accel: .tcg)) } catch {
            fail("A: up: \(error)")
        }
        let before = await waitForHeartbeat(watcher, "A source")
        if !argvChecked, let pid = up.pid { checkArgv(pid: pid) }

        await stamps.set(prepareStart: 0)
        await stamps.set(prepareEnd: 0)
        await stamps.set(commitStart: 0)
        await stamps.set(commitEnd: 0)
        let start = monotonicNanoseconds()
        let result: MigrationResult
        do { result = try await source.migrateAndWait(name, MigrateRequest(to: "127.0.0.1:7000")) } catch {
            fail("A: migrate: \(error)")
        }
        let returned = monotonicNanoseconds()
        let prepareStart = await stamps.prepareStart, prepareEnd = await stamps.prepareEnd
        let commitStart = await stamps.commitStart, commitEnd = await stamps.commitEnd
        guard commitEnd > 0 else { fail("A: the destination was never committed") }

        let moved: VMStatus
        do { moved = try await destination.status(name) } catch { fail("A: destination status: \(error)") }
        guard moved.state == .running else { fail("A: destination is \(moved.state.rawValue), not running") }
        let after = await waitForHeartbeat(HeartbeatWatcher(path: moved.serialLog, pollMicroseconds: 20000), "A destination")
        do { try await destination.remove(name, force: true) } catch { fail("A: rm on the destination: \(error)") }

        let sample = MigrateSample(
            method: .corral, total: Double(commitEnd - start) / 1e6,
            qemuTotal: result.totalMilliseconds.map(Double.init), downtime: result.downtimeMilliseconds.map(Double.init),
            setup: result.setupMilliseconds.map(Double.init), destinationPrep: Double(prepareEnd - prepareStart) / 1e6,
            switchover: Double(commitEnd - commitStart) / 1e6,
            returned: Double(returned - start) / 1e6)
        samples.append(sample)
        report(round, sample, heartbeats: (before.n, after.n))
    }

    /// Once: A's source QEMU command line must equal B's argv apart from the state folder.
    func checkArgv(pid: Int32) {
        argvChecked = true
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
            note("migrate: cannot read /proc/\(pid)/cmdline; argv not compared")
            return
        }
        let real = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            .filter { !$0.isEmpty }
        let mine = argv(stateRoot: bSourceRoot, destination: false)
            .map { $0.replacingOccurrences(of: bSourceRoot, with: aSourceRoot) }
        // argv[0] may be resolved to a full path by the launcher; compare the rest.
        if Array(real.dropFirst()) == Array(mine.dropFirst()) {
            note("migrate: A's source argv equals B's apart from the state folder (\(mine.count) arguments)")
            argvMatch = "identical apart from the state folder"
        } else {
            let diff = zip(real.dropFirst(), mine.dropFirst()).first { $0 != $1 }
            note("migrate: A's argv differs from B's: \(diff.map { "\($0.0) vs \($0.1)" } ?? "length \(real.count) vs \(mine.count)")")
            argvMatch = "**differs** (see the run's stderr)"
        }
    }

    var argvMatch = "not compared"

    // MARK: B

    func argv(stateRoot: String, destination: Bool) -> [String] {
        let paths = VMPaths(stateRoot: stateRoot, name: name)
        let request = StartRequest(config: config, accel: .tcg, paths: paths, startPaused: destination,
                                   incoming: destination ? "defer" : nil)
        return QEMUArgv.build(config, request.runtimeOptions)
    }

    /// Starts QEMU from `argv` in a fresh folder and connects `QMPClient`.
    func startQEMU(stateRoot: String, destination: Bool) async -> (ProcessHandle, QMPClient, VMPaths) {
        let paths = VMPaths(stateRoot: stateRoot, name: name)
        FileOps.removeTree(paths.folder)
        do { try FileOps.makeFolder(paths.folder) } catch { fail("B: \(paths.folder): \(error)") }
        let process: ProcessHandle
        do {
            process = try ProcessLauncher.launch(LaunchSpec(argv: argv(stateRoot: stateRoot, destination: destination),
                                                            outputFile: paths.qemuOutput, detach: true))
        } catch {
            fail("B: cannot start QEMU: \(error)")
        }
        do {
            let qmp = try await QMPClient.connect(socketPath: paths.qmpSocket, connectTimeout: .seconds(30))
            return (process, qmp, paths)
        } catch {
            process.signal(SIGKILL)
            fail("B: QMP on \(paths.qmpSocket): \(error)")
        }
    }

    @discardableResult
    func qmp(_ client: QMPClient, _ command: String, _ arguments: JSONObject? = nil) async -> JSONValue {
        do { return try await client.execute(command, arguments) } catch {
            fail("B: \(command): \(error)")
        }
    }

    func stop(_ process: ProcessHandle, _ client: QMPClient) async {
        await client.close()
        process.signal(SIGKILL)
        _ = await process.waitForExit(timeout: .seconds(10))
    }

    func runRaw(round: Int) async {
        let sourcePaths = VMPaths(stateRoot: bSourceRoot, name: name)
        FileOps.removeTree(sourcePaths.folder)
        let watcher = HeartbeatWatcher(path: sourcePaths.serialLog)
        let (sourceProcess, sourceQMP, _) = await startQEMU(stateRoot: bSourceRoot, destination: false)
        let before = await waitForHeartbeat(watcher, "B source")

        // Timed from here, like A: nothing exists on the destination yet.
        let start = monotonicNanoseconds()
        let (destinationProcess, destinationQMP, destinationPaths) = await startQEMU(stateRoot: bDestinationRoot,
                                                                                       destination: true)
        await qmp(destinationQMP, "migrate-set-capabilities",
                  ["capabilities": [["capability": "events", "state": true]]])
        let port = freeLoopbackPort()
        let uri = "tcp:127.0.0.1:\(port)"
        await qmp(destinationQMP, "migrate-incoming", ["uri": .string(uri)])
        let prep = Double(monotonicNanoseconds() - start) / 1e6

        // Subscribe before `migrate`, so the end is not missed.
        let events = sourceQMP.events(["MIGRATION"])
        await qmp(sourceQMP, "migrate-set-capabilities", ["capabilities": [["capability": "events", "state": true]]])
        await qmp(sourceQMP, "migrate-set-parameters", [
            "max-bandwidth": .int(MigrationPlan.defaultMaxBandwidth),
            "downtime-limit": .int(Int64(MigrationPlan.defaultDowntimeLimitMs)),
        ])
        await qmp(sourceQMP, "migrate", ["uri": .string(uri)])
        var ended = ""
        for await event in events {
            let status = event.data["status"]?.stringValue ?? ""
            if status == "completed" || status == "failed" || status == "cancelled" {
                ended = status
                break
            }
        }
        guard ended == "completed" else { fail("B: migration ended \(ended.isEmpty ? "without an event" : ended)") }
        let completed = monotonicNanoseconds()
        await qmp(destinationQMP, "cont")
        while await qmp(destinationQMP, "query-status")["status"]?.stringValue != "running" {
            guard seconds(since: start) < guestTimeout else { fail("B: destination never ran") }
            try? await Task.sleep(for: .milliseconds(1))
        }
        let running = monotonicNanoseconds()
        let total = Double(running - start) / 1e6
        let final = await qmp(sourceQMP, "query-migrate")

        let after = await waitForHeartbeat(HeartbeatWatcher(path: destinationPaths.serialLog, pollMicroseconds: 20000),
                                           "B destination")
        await stop(sourceProcess, sourceQMP)
        await stop(destinationProcess, destinationQMP)
        FileOps.removeTree(sourcePaths.folder)
        FileOps.removeTree(destinationPaths.folder)

        func field(_ key: String) -> Double? { final[key]?.intValue.map(Double.init) }
        let sample = MigrateSample(method: .raw, total: total, qemuTotal: field("total-time"),
                                   downtime: field("downtime"), setup: field("setup-time"), destinationPrep: prep,
                                   switchover: Double(running - completed) / 1e6, returned: nil)
        samples.append(sample)
        report(round, sample, heartbeats: (before.n, after.n))
    }

    /// A loopback TCP port the kernel considers free right now.
    func freeLoopbackPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { fail("socket(): errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { fail("bind(127.0.0.1:0): errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func report(_ round: Int, _ s: MigrateSample, heartbeats: (Int, Int)) {
        func ms(_ v: Double?) -> String { v.map { decimal($0) } ?? "?" }
        var line = "migrate: round \(round) \(s.method.rawValue): total \(ms(s.total)) ms, QEMU total-time \(ms(s.qemuTotal))"
            + " downtime \(ms(s.downtime)) setup-time \(ms(s.setup)), destination prep \(ms(s.destinationPrep)) ms, switch-over \(ms(s.switchover)) ms"
        if let returned = s.returned { line += ", migrate() returned after \(ms(returned)) ms" }
        line += "; heartbeat n=\(heartbeats.0) before, n=\(heartbeats.1) on the destination"
        note(line)
        if heartbeats.1 <= heartbeats.0 { fail("\(s.method.rawValue): the destination's heartbeat did not continue the count") }
    }

    // MARK: Table

    func table(rounds: Int) -> String {
        let a = samples.filter { $0.method == .corral }, b = samples.filter { $0.method == .raw }
        func cell(_ values: [Double?]) -> String { Spread(values.compactMap { $0 })?.cell ?? "–" }
        let limit = Double(MigrationPlan.defaultDowntimeLimitMs)
        func within(_ set: [MigrateSample]) -> String {
            let known = set.compactMap(\.downtime)
            return "\(known.filter { $0 <= limit }.count) of \(set.count)"
        }
        var out = """
            | | what | n | total ms | QEMU total-time ms | downtime ms | setup-time ms | downtime ≤ \(Int(limit)) ms | destination ready ms | switch-over ms |
            |---|---|---:|---:|---:|---:|---:|---:|---:|---:|

            """
        out += "| A | `VMManager.migrate` → `LocalMigrationPeer`, until the destination's commit (`cont`) returned | \(a.count) | "
            + "\(cell(a.map(\.total))) | \(cell(a.map(\.qemuTotal))) | \(cell(a.map(\.downtime))) | \(cell(a.map(\.setup))) | "
            + "\(within(a)) | \(cell(a.map(\.destinationPrep))) | \(cell(a.map(\.switchover))) |\n"
        out += "| B | raw QMP by hand: destination QEMU `-incoming defer -S` + handshake + caps + `migrate-incoming`; source caps + params + `migrate`; MIGRATION `completed` event; `cont`, until running | \(b.count) | "
            + "\(cell(b.map(\.total))) | \(cell(b.map(\.qemuTotal))) | \(cell(b.map(\.downtime))) | \(cell(b.map(\.setup))) | "
            + "\(within(b)) | \(cell(b.map(\.destinationPrep))) | \(cell(b.map(\.switchover))) |\n"
        if let sa = Spread(a.map(\.total)), let sb = Spread(b.map(\.total)) {
            let ratio = sa.median / sb.median
            out += "| A/B | total, median over median (goal ≤ 1.10×) | | **\(decimal(ratio, places: 2))×** | | | | | | |\n"
            out += "| A−B | total, median minus median | | \(decimal(sa.median - sb.median)) | | | | | | |\n"
        }
        out += "| A′ | `VMManager.migrate` returned (the source QEMU has quit and its folder is gone) | \(a.count) | "
            + "\(cell(a.map(\.returned))) | | | | | | |\n"
        out += "\nCells: median (min–max) over \(rounds) round(s); A and B alternate (AB, then BA), each migration on a freshly booted guest "
            + "(after its first heartbeat). *QEMU total-time, downtime, setup-time*: the source's `query-migrate` after completion. "
            + "Both clocks start with the source guest running and nothing on the destination. *Destination ready* (inside "
            + "the total): A: `prepareIncoming` returned (checks, state files, QEMU start, QMP handshake, capabilities, "
            + "`migrate-incoming`, port query); B: QEMU start, QMP handshake, capabilities and `migrate-incoming`. "
            + "*Switch-over*: from the source's MIGRATION `completed` event (A: the commit call) until the destination "
            + "runs (A: `commitIncoming` returned). "
            + "Every migration was checked: the guest's heartbeat counter continued on the destination.\n"
        return out
    }
}

func runMigrateBench(_ arguments: [String]) async {
    let flags = Flags(arguments) { usage() }
    guard let stateDir = flags.string("--state-dir"), let profilePath = flags.string("--profile") else { usage() }
    let rounds = flags.int("--rounds", default: 5)

    let profile: Profile
    do { profile = try ProfileLoader().load(path: profilePath) } catch { fail("\(profilePath): \(error)") }
    guard profile.serial == .log else { fail("\(profilePath): needs `serial: log` (heartbeats)") }

    var logger = Logger(label: "corral-bench")
    logger.logLevel = .error
    let options = DaemonOptions(autoBalloon: false, manageKSM: false, cgroupRoot: nil)
    let source: VMManager, destination: VMManager
    do {
        source = try await VMManager.open(stateRoot: stateDir + "/a-src", logger: logger, options: options)
        destination = try await VMManager.open(stateRoot: stateDir + "/a-dst", logger: logger, options: options)
    } catch {
        fail("cannot open \(stateDir): \(error)")
    }
    let bench = MigrateBench(root: stateDir, profilePath: profilePath, profile: profile,
                             source: source, destination: destination)
    let stamps = bench.stamps
    await source.setPeerConnector { _, _ in StampingPeer(inner: LocalMigrationPeer(destination), stamps: stamps) }

    for round in 1...max(1, rounds) {
        if round % 2 == 1 {
            await bench.runCorral(round: round)
            await bench.runRaw(round: round)
        } else {
            await bench.runRaw(round: round)
            await bench.runCorral(round: round)
        }
    }
    await source.shutdown()
    await destination.shutdown()
    print("A's source QEMU argv vs B's: \(bench.argvMatch).\n")
    print(bench.table(rounds: rounds), terminator: "")
}
