import Foundation
import CorralModel
import JSON
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The daemon core (VMManager) in-process, with real QEMU under TCG and the test guest.
@Suite(.serialized, .bootsGuests) struct DaemonTests {
    @Test func upStatusStopRemove() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d1")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        let profile = try Guest.writeProfile(in: root, name: "alpha", extra: "disks: [ { id: data, file: \(root)/alpha.qcow2, size: 16M } ]\n")

        let up = try await manager.up(UpRequest(profile: profile))
        #expect(up.state == .running)
        #expect(up.pid != nil)
        // By the time `up` answers, vm.json (written while QEMU started) names this QEMU; no temporary is left.
        let folder = root + "/state/vms/alpha"
        let record = try JSONDecoder().decode(VMRecord.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/vm.json")))
        #expect(record.pid == up.pid && record.state == .running && record.desiredRunning)
        #expect(record.startedAt != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).allSatisfy { !$0.contains(".tmp-") })
        let beat = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        #expect(beat.disks == ["vda"] && beat.nics == ["eth0"])

        let status = try await manager.status("alpha")
        #expect(status.state == .running)
        #expect(status.pid == up.pid && ProcessHandle.isAlive(status.pid!))
        #expect(status.cpus == .init(online: 1, max: 2))
        #expect(status.memory.sizeBytes == 256 << 20)
        #expect(status.disks.map(\.id) == ["data"] && status.nics.map(\.mac).first?.hasPrefix("52:54:00:") == true)
        #expect((status.uptimeSeconds ?? -1) >= 0)

        await #expect(throws: ControlError.self) { _ = try await manager.up(UpRequest(profile: profile)) }

        let stopped = try await manager.stop("alpha", timeout: .seconds(60))
        #expect(stopped.state == .stopped)
        #expect(stopped.pid == nil)
        #expect(stopped.lastExit == "stopped by corral (powerdown)")
        #expect(!ProcessHandle.isAlive(up.pid!))
        #expect(!FileManager.default.fileExists(atPath: up.qmpSocket), "no stale socket")

        try await manager.remove("alpha", force: false)
        #expect(await manager.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root + "/state/vms/alpha"))
        #expect(FileManager.default.fileExists(atPath: root + "/alpha.qcow2"), "rm keeps the user's disk image")
        await manager.shutdown()
    }

    @Test func killedQEMUIsRestartedWithOnFailureAndCrashedWithNo() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d2")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        defer { Task { await manager.shutdown() } }
        let flaky = try Guest.writeProfile(in: root, name: "flaky", extra: "restart: on-failure\n")
        let fragile = try Guest.writeProfile(in: root, name: "fragile", extra: "restart: \"no\"\n")
        let a = try await manager.up(UpRequest(profile: flaky))
        let b = try await manager.up(UpRequest(profile: fragile))

        let flakyEvents = await manager.events(vm: "flaky", history: 0)
        kill(a.pid!, SIGKILL)
        #expect(await EventWait.first(in: flakyEvents) { $0.name == "restarted" } != nil,
                "on-failure restarts a QEMU killed from outside")
        let after = try await manager.status("flaky")
        #expect(after.state == .running)
        #expect(after.restartCount == 1)
        #expect(after.pid != nil && after.pid != a.pid)
        #expect(after.lastExit == "QEMU killed by signal 9 (Killed)")
        let beats = try await HeartbeatWait.first(in: after.serialLog) { $0.n >= 1 }
        #expect(beats.n >= 1)

        let fragileEvents = await manager.events(vm: "fragile", history: 0)
        kill(b.pid!, SIGKILL)
        #expect(await EventWait.first(in: fragileEvents) { $0.name == "crashed" } != nil)
        let down = try await manager.status("fragile")
        #expect(down.state == .crashed)
        #expect(down.restartCount == 0 && down.pid == nil)

        _ = try await manager.kill("flaky")
        #expect(try await manager.status("flaky").state == .stopped, "corral kill is not a failure: no restart")
    }

    @Test func reattachesAfterDaemonRestartWithSamePids() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d3")
        defer { Guest.cleanUp(root) }
        let state = root + "/state"
        let first = try await VMManager.open(stateRoot: state)
        var pids: [String: Int32] = [:]
        for name in ["r1", "r2", "r3"] {
            let profile = try Guest.writeProfile(in: root, name: name)
            pids[name] = try await first.up(UpRequest(profile: profile)).pid
        }
        let before = try await HeartbeatWait.first(in: state + "/vms/r1/serial.log") { $0.n >= 2 }
        await first.shutdown()  // the daemon goes away; VMs keep running
        for pid in pids.values { #expect(ProcessHandle.isAlive(pid)) }

        let second = try await VMManager.open(stateRoot: state)
        let listed = await second.list()
        #expect(listed.map(\.name) == ["r1", "r2", "r3"])
        for vm in listed {
            #expect(vm.state == .running)
            #expect(vm.pid == pids[vm.name], "reattached to the same QEMU, not a new one")
            #expect((vm.uptimeSeconds ?? -1) >= 0 && (vm.uptimeSeconds ?? .infinity) < 300, "uptime survives reattach")
        }
        let later = try await HeartbeatWait.first(in: state + "/vms/r1/serial.log") { $0.n > before.n + 2 }
        #expect(later.n > before.n)
        let reply = try await second.qmp("r2", command: "query-status", arguments: nil)
        #expect(reply["status"]?.stringValue == "running")
        for name in ["r1", "r2", "r3"] { _ = try await second.kill(name) }
        await second.shutdown()
    }

    /// Broken state on disk: the daemon starts, lists each broken VM with the reason, keeps every other VM (the
    /// good one is reattached, same pid), and kills nothing it cannot prove is its QEMU (a pid file pointing at an
    /// unrelated process leaves that process alone).
    @Test func brokenStateFoldersAreListedWithTheReasonAndNothingElseIsTouched() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d6")
        defer { Guest.cleanUp(root) }
        let state = root + "/state"
        let first = try await VMManager.open(stateRoot: state)
        let good = try await first.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "good")))
        await first.shutdown()
        let fm = FileManager.default
        let vms = state + "/vms"
        // Garbage vm.json.
        try fm.createDirectory(atPath: vms + "/garbage", withIntermediateDirectories: true)
        try "{not json".write(toFile: vms + "/garbage/vm.json", atomically: true, encoding: .utf8)
        // A truncated live.json.
        try fm.createDirectory(atPath: vms + "/truncated", withIntermediateDirectories: true)
        let record = try String(contentsOfFile: vms + "/good/vm.json", encoding: .utf8)
        try record.replacingOccurrences(of: "\"good\"", with: "\"truncated\"")
            .write(toFile: vms + "/truncated/vm.json", atomically: true, encoding: .utf8)
        let live = try String(contentsOfFile: vms + "/good/live.json", encoding: .utf8)
        try String(live.prefix(live.count / 2)).write(toFile: vms + "/truncated/live.json", atomically: true, encoding: .utf8)
        // A record whose pid is an unrelated process.
        let bystander = try ProcessLauncher.launch(LaunchSpec(executable: "/bin/sleep", arguments: ["300"]))
        defer { bystander.signal(SIGKILL) }
        try fm.createDirectory(atPath: vms + "/impostor", withIntermediateDirectories: true)
        try record.replacingOccurrences(of: "\"good\"", with: "\"impostor\"")
            .replacingOccurrences(of: "\"pid\" : \(good.pid!)", with: "\"pid\" : \(bystander.pid)")
            .write(toFile: vms + "/impostor/vm.json", atomically: true, encoding: .utf8)
        try live.write(toFile: vms + "/impostor/live.json", atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: vms + "/impostor/vm.json", encoding: .utf8).contains("\(bystander.pid)"),
                "the impostor's record names the unrelated process")

        let second = try await VMManager.open(stateRoot: state)
        let listed = Dictionary(uniqueKeysWithValues: await second.list().map { ($0.name, $0) })
        #expect(listed["good"]?.state == .running && listed["good"]?.pid == good.pid, "the good VM is reattached")
        #expect(listed["garbage"]?.state == .broken)
        #expect(listed["garbage"]?.problem?.hasPrefix("a state file is not valid JSON") == true, "\(listed["garbage"]?.problem ?? "")")
        #expect(listed["truncated"]?.state == .broken)
        #expect(listed["impostor"].map { $0.state == .crashed || $0.state == .stopped } == true, "not running: \(String(describing: listed["impostor"]?.state))")
        #expect(bystander.exitStatus == nil && ProcessHandle.isAlive(bystander.pid), "the unrelated process lives")
        await #expect(throws: ControlError.self) { try await second.start("garbage") }
        try await second.remove("garbage", force: false)
        #expect(!fm.fileExists(atPath: vms + "/garbage"), "rm removes a broken VM's folder")
        _ = try await second.kill("good")
        await second.shutdown()
    }

    /// `corral pause` is recorded in `vm.json` at once (not only when QEMU's STOP event arrives), and a new
    /// daemon finds the VM paused on the same QEMU, its guest frozen until it is resumed.
    @Test func aPausedVMStaysPausedAcrossADaemonRestart() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d5")
        defer { Guest.cleanUp(root) }
        let state = root + "/state"
        let first = try await VMManager.open(stateRoot: state)
        let up = try await first.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "sleepy")))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 1 }
        #expect(try await first.pause("sleepy").state == .paused)
        let record = try JSONDecoder().decode(VMRecord.self, from: Data(contentsOf: URL(fileURLWithPath: state + "/vms/sleepy/vm.json")))
        #expect(record.state == .paused, "vm.json says paused as soon as pause answered")
        await first.shutdown()

        let second = try await VMManager.open(stateRoot: state)
        let found = try await second.status("sleepy")
        #expect(found.state == .paused && found.pid == up.pid)
        let reply = try await second.qmp("sleepy", command: "query-status", arguments: nil)
        #expect(reply["status"]?.stringValue == "paused", "QEMU agrees")
        let resumed = try await second.resume("sleepy")
        #expect(resumed.state == .running)
        let before = HeartbeatWait.last(in: up.serialLog)?.n ?? 0
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n > before }
        _ = try await second.kill("sleepy")
        await second.shutdown()
    }

    /// A daemon that dies after spawning QEMU but before the spawn hook has recorded its pid left a `vm.json`
    /// without a pid. The next daemon finds the QEMU through its pid file and takes it over instead of
    /// leaving it running unowned (where `corral start` would launch a second QEMU on the same disks).
    @Test func aQEMUStartedButNotRecordedIsTakenOverThroughItsPidFile() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d6")
        defer { Guest.cleanUp(root) }
        let state = root + "/state"
        let first = try await VMManager.open(stateRoot: state)
        let up = try await first.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "orphan")))
        let pid = try #require(up.pid)
        await first.shutdown()
        // Turn vm.json back into what it was before QEMU was spawned.
        let recordPath = state + "/vms/orphan/vm.json"
        var record = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any])
        record["pid"] = nil
        record["startedAt"] = nil
        record["desiredRunning"] = false
        record["state"] = "stopped"
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: recordPath))
        #expect(FileManager.default.fileExists(atPath: state + "/vms/orphan/qemu.pid"))

        let second = try await VMManager.open(stateRoot: state)
        let status = try await second.status("orphan")
        #expect(status.state == .running)
        #expect(status.pid == pid, "the same QEMU, not a second one")
        #expect(status.uptimeSeconds != nil)
        _ = try await HeartbeatWait.first(in: status.serialLog) { $0.n >= 2 }
        _ = try await second.kill("orphan")
        await second.shutdown()

        // Its QEMU gone as well (pid file left behind): the VM stays defined and stopped, nothing is started.
        var stopped = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any])
        stopped["pid"] = nil
        stopped["desiredRunning"] = false
        try JSONSerialization.data(withJSONObject: stopped).write(to: URL(fileURLWithPath: recordPath))
        try "\(pid)\n".write(toFile: state + "/vms/orphan/qemu.pid", atomically: true, encoding: .utf8)
        let third = try await VMManager.open(stateRoot: state)
        let after = try await third.status("orphan")
        #expect(after.state == .stopped && after.pid == nil)
        #expect(!FileManager.default.fileExists(atPath: state + "/vms/orphan/qemu.pid"))
        await third.shutdown()
    }

    @Test func invalidProfileAndFailingQEMULeaveNothing() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d4")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        let bad = root + "/bad.yaml"
        try "name: bad\ncpu: { count: 3, max: 2 }\nmemory: { size: 1GB }\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let invalid = await controlError { () async throws(ControlError) in _ = try await manager.up(UpRequest(profile: bad)) }
        guard case .invalidProfile(let diagnostics)? = invalid else {
            Issue.record("expected invalid-profile, got \(String(describing: invalid))")
            return
        }
        #expect(diagnostics.map(\.path) == ["cpu.count", "memory.size"])

        let broken = try Guest.writeProfile(in: root, name: "broken", extra: "machine: pc-q35-99.0\n")
        let failed = await controlError { () async throws(ControlError) in _ = try await manager.up(UpRequest(profile: broken)) }
        guard case .startFailed(_, let output)? = failed else {
            Issue.record("expected start-failed, got \(String(describing: failed))")
            return
        }
        #expect(output.joined(separator: "\n").contains("unsupported machine type"))
        #expect(await manager.list().isEmpty, "a VM whose start failed is not listed")
        #expect(!FileManager.default.fileExists(atPath: root + "/state/vms/broken"))
        #expect(try processesMentioning(root + "/state").isEmpty)
        await manager.shutdown()
    }

    @Test func concurrentOperationsOnOneVMAreSerialized() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("d5")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        let profile = try Guest.writeProfile(in: root, name: "busy")
        _ = try await manager.up(UpRequest(profile: profile))
        let outcomes = await withTaskGroup(of: String.self, returning: [String].self) { group in
            for i in 0..<20 {
                group.addTask {
                    do {
                        switch i % 4 {
                        case 0: return "pause:\(try await manager.pause("busy").state.rawValue)"
                        case 1: return "resume:\(try await manager.resume("busy").state.rawValue)"
                        case 2: return "status:\(try await manager.status("busy").state.rawValue)"
                        default:
                            let reply = try await manager.qmp("busy", command: "query-status", arguments: nil)
                            return "qmp:\(reply["status"]?.stringValue ?? "?")"
                        }
                    } catch let error as ControlError {
                        return "refused:\(error.code)"
                    } catch {
                        return "error:\(error)"
                    }
                }
            }
            var all: [String] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.count == 20)
        #expect(outcomes.allSatisfy { !$0.hasPrefix("error:") }, "\(outcomes)")
        #expect(outcomes.filter { $0.hasPrefix("refused:") }.allSatisfy { $0 == "refused:conflict" })
        // Whatever order they ran in, corral's view and QEMU's agree at the end.
        let final = try await manager.status("busy")
        let qemu = try await manager.qmp("busy", command: "query-status", arguments: nil)
        #expect((final.state == .running) == (qemu["running"]?.boolValue == true))
        #expect(final.state == .running || final.state == .paused)
        _ = try await manager.kill("busy")
        await manager.shutdown()
    }
}

/// The ControlError an operation threw, or nil when it succeeded.
func controlError(_ body: () async throws(ControlError) -> Void) async -> ControlError? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}
