import CorralCore
import CorralModel
import Foundation
import JSON
import Logging
import Profiles
import QEMUCommand
import QMP
import Synchronization
import Testing
@testable import Supervisor

/// The daemon core without QEMU: `VMManager` and `ManagedVM` over a scripted launcher, fake processes and the
/// strict scripted QMP monitor. Restart policy, reattach, pause/resume, the stop timeout, and a QEMU that dies in
/// each phase.
@Suite(.timeLimit(.minutes(1))) struct ManagedVMTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    /// Short delays so restarts happen at once; the cap as the daemon's.
    static let options = DaemonOptions(
        restartEngine: RestartPolicyEngine(maxRestarts: 5, window: 60, firstDelay: .milliseconds(5),
                                           maxDelay: .milliseconds(20)),
        autoBalloon: false, manageKSM: false)

    /// A state root and a profile in a fresh temporary folder.
    struct Scene {
        let root: String
        let profile: String

        init(restart: String = "on-failure", extra: String = "") throws {
            root = NSTemporaryDirectory() + "corral-managed-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            profile = root + "/web.yaml"
            try ("name: web\naccel: tcg\nmemory: 256M\nrestart: \(restart)\n" + extra)
                .write(toFile: profile, atomically: true, encoding: .utf8)
        }

        func open(_ launcher: FakeLauncher) async throws -> VMManager {
            try await VMManager.open(stateRoot: root + "/state", launcher: launcher, options: ManagedVMTests.options,
                                     peerConnector: nil, logger: ManagedVMTests.quiet)
        }

        /// `vm.json` as the daemon last wrote it.
        func record() throws -> VMRecord {
            let data = try Data(contentsOf: URL(fileURLWithPath: root + "/state/vms/web/vm.json"))
            return try JSONDecoder().decode(VMRecord.self, from: data)
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: root) }
    }

    /// The first event named `name` of `vm`, from the history on (so one published before the call counts).
    static func event(_ manager: VMManager, _ name: CorralEventName, within limit: Duration = .seconds(60)) async
        -> CorralEvent?
    {
        let events = await manager.events(vm: "web", history: 1000, follow: true)
        return await withTaskGroup(of: CorralEvent?.self) { group in
            group.addTask {
                for await event in events where event.name == name { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    static func stopEvent() -> QMPEvent { QMPEvent(name: "STOP", data: [:], timestamp: 1) }

    @Test func aPausedVMIsRecordedPausedAndAfterADaemonRestartIsStillPaused() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 1001)
        // The reply comes first; QEMU's STOP event only after it (the order that lost the pause before).
        qemu.qmp.expect("stop")
        let manager = try await scene.open(launcher)
        #expect(try await manager.up(UpRequest(profile: scene.profile)).state == .running)
        #expect(try await manager.pause("web").state == .paused)
        #expect(try scene.record().state == .paused, "vm.json says paused before any event arrived")
        qemu.qmp.emit([Self.stopEvent()])
        _ = await Self.event(manager, "STOP")
        #expect(try await manager.status("web").state == .paused)
        await manager.shutdown()
        qemu.qmp.verify()

        // A new daemon finds the same QEMU by its recorded pid, and QEMU says it is paused.
        let second = FakeLauncher()
        let found = second.willReattach(pid: 1001, status: "paused")
        let restarted = try await scene.open(second)
        let status = try await restarted.status("web")
        #expect(status.state == .paused && status.pid == 1001)
        #expect(try scene.record().state == .paused && scene.record().pid == 1001)
        #expect(second.startCount == 0, "a VM that is still running is never started again")
        await restarted.shutdown()
        found.qmp.verify()
    }

    /// A guest can negotiate a device (virtio-net failover) while the daemon still finishes the start: QEMU's event
    /// is in the VM's history all the same (it once was dropped until the lifecycle had taken the start).
    @Test func anEventQEMUSendsWhileTheStartFinishesIsInTheHistory() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let negotiated = QMPEvent(name: "FAILOVER_NEGOTIATED", data: ["device-id": .string("nic-lan0")], timestamp: 1)
        let qemu = launcher.willStart(pid: 1151, eventsAfterStatus: [negotiated])
        let manager = try await scene.open(launcher)
        #expect(try await manager.up(UpRequest(profile: scene.profile)).state == .running)
        let seen = await Self.event(manager, .qmp("FAILOVER_NEGOTIATED"), within: .seconds(10))
        #expect(seen?.data?["device-id"]?.stringValue == "nic-lan0")
        await manager.shutdown()
        qemu.qmp.verify()
    }

    @Test func aResumeIsRecordedToo() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 1101, status: "paused")
        qemu.qmp.expect("cont")
        let manager = try await scene.open(launcher)
        #expect(try await manager.up(UpRequest(profile: scene.profile, paused: true)).state == .paused)
        #expect(try scene.record().state == .paused)
        #expect(try await manager.resume("web").state == .running)
        #expect(try scene.record().state == .running)
        await #expect(throws: ControlError.conflict("cannot resume web: it is running (resume needs paused)")) {
            try await manager.resume("web")
        }
        await manager.shutdown()
        qemu.qmp.verify()
    }

    @Test func aCrashedQEMUIsRestartedByThePolicy() async throws {
        let scene = try Scene(restart: "on-failure")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let first = launcher.willStart(pid: 2001)
        let second = launcher.willStart(pid: 2002)
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        first.process.exit(.signaled(SIGSEGV))
        let restarted = await Self.event(manager, .restarted)
        #expect(restarted?.data == ["restartCount": 1])
        let status = try await manager.status("web")
        #expect(status.state == .running && status.pid == 2002 && status.restartCount == 1)
        #expect(status.lastExit?.hasPrefix("QEMU killed by signal \(SIGSEGV)") == true, "\(status.lastExit ?? "")")
        #expect(try scene.record().pid == 2002 && scene.record().desiredRunning)
        await manager.shutdown()
        first.qmp.verify()
        second.qmp.verify()
    }

    @Test func aQEMUThatKeepsFailingToRestartEndsCrashed() async throws {
        let scene = try Scene(restart: "always")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let first = launcher.willStart(pid: 2101)
        for _ in 0..<5 { launcher.willStart(pid: 0, failing: "QEMU exited with status 1 during start") }
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        first.process.exit(.exited(1))
        let crashed = await Self.event(manager, .crashed)
        #expect(crashed?.data?["reason"]?.stringValue == "5 restarts within 60 s; giving up (restart: always)")
        let status = try await manager.status("web")
        #expect(status.state == .crashed && status.pid == nil)
        #expect(launcher.startCount == 6 && launcher.unusedStarts == 0)
        #expect(try !scene.record().desiredRunning && scene.record().state == .crashed)
        await manager.shutdown()
    }

    @Test func stopFallsBackToQuitWhenTheGuestIgnoresThePowerButton() async throws {
        let scene = try Scene(restart: "always")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 3001)
        qemu.qmp.expect("system_powerdown")
        qemu.qmp.expect("quit", effect: { qemu.process.exit(.exited(0)) })
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        let status = try await manager.stop("web", timeout: .milliseconds(50))
        #expect(status.state == .stopped && status.lastExit == "stopped by corral (quit)")
        #expect(try !scene.record().desiredRunning && scene.record().pid == nil)
        #expect(launcher.startCount == 1, "a stop is not a failure: restart: always does not restart it")
        await manager.shutdown()
        qemu.qmp.verify()
    }

    @Test func aQEMUThatExitsDuringTheStopIsStillAStop() async throws {
        let scene = try Scene(restart: "always")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 3101)
        // The guest powers off while the power button's reply is on its way.
        qemu.qmp.expect("system_powerdown", effect: { qemu.process.exit(.exited(0)) })
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        let status = try await manager.stop("web", timeout: .seconds(30))
        #expect(status.state == .stopped && status.lastExit == "stopped by corral (powerdown)")
        #expect(launcher.startCount == 1)
        await manager.shutdown()
        qemu.qmp.verify()
    }

    @Test func aQEMUThatDiesDuringStartLeavesNothing() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        launcher.willStart(pid: 0, failing: "QEMU exited with status 1 during start")
        let manager = try await scene.open(launcher)
        await #expect(throws: ControlError.startFailed(reason: "cannot start web: QEMU exited with status 1 during start",
                                                       qemuOutput: ["qemu: QEMU exited with status 1 during start"])) {
            try await manager.up(UpRequest(profile: scene.profile))
        }
        #expect(await manager.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scene.root + "/state/vms/web"), "no folder left behind")
        await manager.shutdown()
    }

    @Test func aQEMUThatDiesWhilePausedWithoutARestartPolicyIsCrashed() async throws {
        let scene = try Scene(restart: "no")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 4001, status: "paused")
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile, paused: true))
        qemu.process.exit(.signaled(SIGKILL))
        _ = await Self.event(manager, .crashed)
        let status = try await manager.status("web")
        #expect(status.state == .crashed && status.lastExit?.hasPrefix("QEMU killed by signal 9") == true)
        #expect(try scene.record().state == .crashed)
        #expect(launcher.startCount == 1)
        await manager.shutdown()
        qemu.qmp.verify()
    }

    @Test func aQEMUThatDiedWhileNoDaemonWatchedIsRestartedByThePolicy() async throws {
        let scene = try Scene(restart: "on-failure")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        launcher.willStart(pid: 5001)
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        await manager.shutdown()

        // The new daemon finds no such QEMU (nothing to reattach) and restarts it as the policy says.
        let second = FakeLauncher()
        let replacement = second.willStart(pid: 5002)
        let restarted = try await scene.open(second)
        _ = await Self.event(restarted, .restarted)
        let status = try await restarted.status("web")
        #expect(status.state == .running && status.pid == 5002 && status.restartCount == 1)
        #expect(status.lastExit == "QEMU exited while the daemon was not running")
        await restarted.shutdown()
        replacement.qmp.verify()
    }

    @Test func anIncomingVMWhoseQEMUDiesIsForgottenNotRestarted() async throws {
        let scene = try Scene(restart: "always")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 6001, status: "inmigrate")
        let paths = VMPaths(folder: scene.root + "/incoming")
        try FileManager.default.createDirectory(atPath: paths.folder, withIntermediateDirectories: true)
        let profile = try ProfileLoader().load(path: scene.profile)
        let hub = EventHub()
        let vm = ManagedVM(record: VMRecord(name: "web", profilePath: nil, accel: .tcg, now: 0),
                           config: LiveConfig(profile: profile), paths: paths, hub: hub, launcher: launcher,
                           restartEngine: Self.options.restartEngine, unplugTimeout: .seconds(1), logger: Self.quiet)
        let lost = Mutex<[String]>([])
        let (done, finished) = AsyncStream<Void>.makeStream()
        await vm.setOnIncomingLost { name in
            lost.withLock { $0.append(name) }
            finished.yield()
        }
        try await vm.launch(paused: true, incoming: "defer")
        #expect(await vm.currentState == VMState.incoming)
        let request = try #require(launcher.requests.last)
        #expect(request.startPaused && request.incoming == "defer", "-S: the guest must not run before the commit")
        let events = await hub.subscribe(vm: "web", history: 0)
        qemu.qmp.emit([QMPEvent(name: "RESUME", data: [:], timestamp: 1)])
        for await event in events where event.name == "RESUME" { break }
        #expect(await vm.status().state == .incoming, "only the commit makes it run here")
        qemu.process.exit(.exited(1))
        for await _ in done { break }
        #expect(lost.withLock { $0 } == ["web"])
        #expect(await vm.currentState == VMState.stopped && launcher.startCount == 1)
        #expect(await vm.status().lastExit == "incoming migration failed (QEMU exited with status 1)")
        qemu.qmp.verify()
    }

    /// A QEMU whose QMP connection ends while it runs (it sent an endless line, say): the VM is marked, nothing is
    /// killed or restarted.
    /// Until the guest's kernel has switched CPU hotplug to the modern ACPI interface, QEMU refuses a vCPU unplug:
    /// the request is early, not failed (409 conflict with the reason, not 502), and the count stays as it was.
    @Test func aVCPUUnplugBeforeTheGuestEnabledACPIIsAConflict() async throws {
        let scene = try Scene(extra: "cpu: { count: 2, max: 4, sockets: 1, cores: 4, threads: 1 }\n")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 7002)
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        func slot(_ core: Int64, _ path: String?) -> JSONValue {
            var slot: JSONObject = ["type": "max-x86_64-cpu", "vcpus-count": 1,
                                    "props": ["socket-id": 0, "core-id": .int(core), "thread-id": 0]]
            if let path { slot["qom-path"] = .string(path) }
            return .object(slot)
        }
        qemu.qmp.expect("query-hotpluggable-cpus", nil,
                        .ok([slot(3, nil), slot(2, nil), slot(1, "/machine/peripheral/cpu-s0-c1-t0"),
                             slot(0, "/machine/unattached/device[0]")]))
        let refusal = "acpi: device unplug request for not supported device type: max-x86_64-cpu"
        qemu.qmp.expect("device_del", ["id": "/machine/peripheral/cpu-s0-c1-t0"], .error("GenericError", refusal))
        var failure: ControlError?
        do { _ = try await manager.setCPUs("web", count: 1) } catch { failure = error }
        guard case .conflict(let message)? = failure else {
            Issue.record("expected a conflict, got \(String(describing: failure))")
            await manager.shutdown()
            return
        }
        #expect(message.contains("has not enabled ACPI CPU hot-unplug yet") && message.contains(refusal), "\(message)")
        qemu.qmp.verify()
        await manager.shutdown()
    }

    @Test func aLostMonitorMarksTheVMAndTouchesNothingElse() async throws {
        let scene = try Scene(restart: "always")
        defer { scene.cleanUp() }
        let launcher = FakeLauncher()
        let qemu = launcher.willStart(pid: 7001)
        let manager = try await scene.open(launcher)
        _ = try await manager.up(UpRequest(profile: scene.profile))
        qemu.qmp.disconnect()
        var status = try await manager.status("web")
        for _ in 0..<100 where status.problem == nil {
            try await Task.sleep(for: .milliseconds(20))
            status = try await manager.status("web")
        }
        #expect(status.problem?.hasPrefix("the QMP monitor was lost while QEMU runs") == true)
        #expect(status.state == .running && status.pid == 7001, "still its QEMU, still running")
        #expect(qemu.process.signals.isEmpty && launcher.startCount == 1, "nothing killed, nothing restarted")
        await manager.shutdown()
    }

    /// A destination daemon that died during an incoming migration leaves an uncommitted VM: the next daemon kills
    /// its QEMU (provably that folder's) and removes the folder, so the next migration of that VM is not refused.
    @Test func anUncommittedIncomingMigrationIsClearedByTheNextDaemon() async throws {
        let scene = try Scene()
        defer { scene.cleanUp() }
        let folder = scene.root + "/state/vms/web"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var record = VMRecord(name: "web", profilePath: nil, accel: .tcg, now: 0)
        record.state = .incoming
        record.desiredRunning = true
        try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: folder + "/vm.json"))
        // Stands in for the incoming QEMU: its command line names the folder.
        // (Not `sh -c`: a shell may exec its last command and lose the folder from its command line.)
        let qemu = try ProcessLauncher.launch(LaunchSpec(
            executable: "python3", arguments: ["-c", "import time; time.sleep(300)", folder + "/qmp.sock"]))
        for _ in 0..<500 where !VMLauncher.commandLine(of: qemu.pid).contains(folder) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let manager = try await scene.open(FakeLauncher())
        #expect(await qemu.waitForExit(timeout: .seconds(10)) != nil, "its QEMU was killed")
        #expect(!FileManager.default.fileExists(atPath: folder), "its folder is gone")
        #expect(await manager.list().isEmpty)
        await manager.shutdown()
    }
}
