import Foundation
import CorralModel
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport
import UnixSockets

#if canImport(Glibc)
import Glibc
#endif

/// `corral daemon` and the CLI verbs as an operator runs them: the real binary, real QEMU under
/// TCG, the test guest; every outcome checked in the CLI's JSON, in QEMU, or in what the guest
/// reports on its serial console.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10))) struct DaemonCLITests {
    /// The `corral` built with this test bundle (so `--scratch-path X` finds X's binary), then
    /// `$CORRAL_BIN`, then `.build/debug/corral`.
    static let binary: String = {
        if let env = ProcessInfo.processInfo.environment["CORRAL_BIN"], !env.isEmpty { return env }
        let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let sibling = bundle.appendingPathComponent("corral").path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return CLITests.binary
    }()

    // MARK: Harness

    /// One `corral daemon` on `ROOT/state` and `ROOT/d.sock` (short: socket paths are limited).
    struct Daemon {
        let root: String
        let handle: ProcessHandle
        let log: String
        var state: String { root + "/state" }
        var socket: String { root + "/d.sock" }

        /// Starts a daemon (without KSM management: tests must not retune the host) and waits
        /// until it says it listens on its socket.
        static func start(root: String, log name: String = "daemon.log", extra: [String] = []) async throws -> Daemon {
            let log = root + "/" + name
            let handle = try ProcessLauncher.launch(LaunchSpec(
                executable: DaemonCLITests.binary,
                arguments: ["daemon", "--state-dir", root + "/state", "--socket", root + "/d.sock", "--no-ksm"] + extra,
                outputFile: log))
            let daemon = Daemon(root: root, handle: handle, log: log)
            let socket = daemon.socket
            let listening = await LineWait.first(in: log, within: .seconds(60)) {
                $0.contains("socket=\(socket)") && $0.contains("listening")
            }
            if listening == nil {
                handle.signal(SIGKILL)
                _ = await handle.waitForExit(timeout: .seconds(10))
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                Issue.record("the daemon did not start listening:\n\(text)")
                throw NotListening()
            }
            return daemon
        }

        struct NotListening: Error {}

        /// Runs `corral ARGS --socket SOCK` (`--daemon-socket` for `qmp`), in `directory` when given.
        func run(_ args: String..., in directory: String? = nil) async throws -> CLIResult {
            let socketFlag = args.first == "qmp" ? "--daemon-socket" : "--socket"
            let words = args + [socketFlag, socket]
            let result: (status: Supervisor.ExitStatus, output: String)
            if let directory {
                result = try await ProcessLauncher.run("/usr/bin/env", ["-C", directory, DaemonCLITests.binary] + words)
            } else {
                result = try await ProcessLauncher.run(DaemonCLITests.binary, words)
            }
            return CLIResult(command: "corral " + args.joined(separator: " "), status: result.status,
                             output: result.output)
        }

        /// Runs a `--json` verb that must succeed and decodes what it printed.
        func json<T: Decodable>(_ type: T.Type, _ args: String...) async throws -> T {
            let words = ["corral"] + args + ["--json", "--socket", socket]
            let result = try await ProcessLauncher.run(DaemonCLITests.binary, Array(words.dropFirst()))
            try #require(result.status == .exited(0), "\(words.joined(separator: " ")): \(result.output)")
            return try JSONDecoder().decode(type, from: Data(result.output.utf8))
        }

        /// Waits for the VM's event `name`: `corral events VM --history 200 --json` replays the past,
        /// so an event that happened before the CLI subscribed is found too.
        func waitForEvent(vm: String, _ name: CorralEventName, within limit: Duration = .seconds(120)) async throws
            -> CorralEvent?
        {
            let output = root + "/events-\(vm)-\(UUID().uuidString.prefix(6)).ndjson"
            let watcher = try ProcessLauncher.launch(LaunchSpec(
                executable: DaemonCLITests.binary,
                arguments: ["events", vm, "--history", "200", "--json", "--socket", socket], outputFile: output))
            let line = await LineWait.first(in: output, within: limit) { line in
                (try? JSONDecoder().decode(CorralEvent.self, from: Data(line.utf8)))?.name == name
            }
            watcher.signal(SIGTERM)
            if await watcher.waitForExit(timeout: .seconds(10)) == nil { _ = await watcher.terminate() }
            return try line.map { try JSONDecoder().decode(CorralEvent.self, from: Data($0.utf8)) }
        }

        /// SIGTERM and wait: the daemon leaves its VMs running.
        func terminate() async -> Supervisor.ExitStatus? {
            handle.signal(SIGTERM)
            return await handle.waitForExit(timeout: .seconds(60))
        }
    }

    struct CLIResult: CustomStringConvertible {
        var command: String
        var status: Supervisor.ExitStatus
        var output: String
        var description: String { "\(command) → \(status)\n\(output)" }
    }

    /// Kills every process whose command line mentions the test's folder (daemons, QEMUs, CLI
    /// watchers), then removes the folder.
    static func cleanUp(_ root: String) {
        for pid in (try? processesMentioning(root)) ?? [] { kill(pid, SIGKILL) }
        FileOps.removeTree(root)
    }

    /// 0 when something accepts connections at `path`, else connect(2)'s errno.
    static func connectErrno(_ path: String) -> Int32 {
        do {
            close(try UnixStreamConnect.connect(path: path))
            return 0
        } catch {
            guard case .connect(let code) = error else { return EINVAL }
            return code
        }
    }

    static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    // MARK: Lifecycle

    @Test func upStatusStopRemoveThroughTheCLI() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc1")
        defer { Self.cleanUp(root) }
        let daemon = try await Daemon.start(root: root)
        #expect(Self.isSocket(daemon.socket))
        let profile = try Guest.writeProfile(in: root, name: "alpha")

        let up = try await daemon.run("up", profile)
        #expect(up.status == .exited(0), "\(up)")
        #expect(up.output == "alpha\n")
        let status = try await daemon.json(VMStatus.self, "status", "alpha")
        #expect(status.state == .running)
        let pid = try #require(status.pid)
        #expect(ProcessHandle.isAlive(pid))
        let beat = try await HeartbeatWait.first(in: status.serialLog) { $0.n >= 1 }
        #expect(beat.nics == ["eth0"])

        let human = try await daemon.run("status", "alpha")
        #expect(human.output.contains("state:") && human.output.contains("running"), "\(human)")
        #expect(!human.output.contains("unplug pending"), "nothing is pending")

        let stop = try await daemon.run("stop", "alpha", "--timeout", "60")
        #expect(stop.status == .exited(0), "\(stop)")
        #expect(stop.output == "alpha: stopped\n")
        #expect(!ProcessHandle.isAlive(pid))
        let rm = try await daemon.run("rm", "alpha")
        #expect(rm.output == "alpha: removed\n", "\(rm)")
        #expect(try await daemon.json([VMStatus].self, "ls").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: daemon.state + "/vms/alpha"))

        // The VM's story, told and finished: --no-follow prints the past events and exits.
        let story = try await daemon.run("events", "alpha", "--history", "3", "--no-follow")
        #expect(story.status == .exited(0), "\(story)")
        let names = story.output.split(separator: "\n").map { $0.split(separator: " ")[4] }
        #expect(names == ["SHUTDOWN", "stopped", "removed"], "\(story.output)")

        #expect(await daemon.terminate() == .exited(0))
        #expect(!FileManager.default.fileExists(atPath: daemon.socket), "the daemon removes its socket")
    }

    @Test func aNewDaemonTakesOverThreeRunningVMsWithTheirPids() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc2")
        defer { Self.cleanUp(root) }
        let first = try await Daemon.start(root: root, log: "first.log")
        let names = ["r1", "r2", "r3"]
        for name in names {
            let up = try await first.run("up", try Guest.writeProfile(in: root, name: name))
            #expect(up.status == .exited(0), "\(up)")
        }
        let before = try await first.json([VMStatus].self, "ls")
        #expect(before.map(\.name) == names && before.allSatisfy { $0.state == .running && $0.pid != nil })
        var beats: [String: Int] = [:]
        for vm in before {
            beats[vm.name] = try await HeartbeatWait.first(in: vm.serialLog) { $0.n >= 1 }.n
        }

        first.handle.signal(SIGKILL)
        #expect(await first.handle.waitForExit(timeout: .seconds(30)) == .signaled(SIGKILL))
        for vm in before { #expect(ProcessHandle.isAlive(vm.pid!), "\(vm.name) outlives its daemon") }
        #expect(Self.connectErrno(first.socket) == ECONNREFUSED,
                "no QEMU inherited the daemon's listener: the dead daemon's socket is stale")

        let second = try await Daemon.start(root: root, log: "second.log")
        let after = try await second.json([VMStatus].self, "ls")
        #expect(after.map(\.name) == names)
        for vm in after {
            #expect(vm.state == .running)
            #expect(vm.pid == before.first { $0.name == vm.name }?.pid, "\(vm.name): the same QEMU, not a new one")
            let seen = beats[vm.name] ?? 0
            let later = try await HeartbeatWait.first(in: vm.serialLog) { $0.n > seen + 1 }
            #expect(later.n > seen, "\(vm.name) keeps beating")
        }
        for name in names { _ = try await second.run("kill", name) }
        #expect(await second.terminate() == .exited(0))
    }

    @Test func killedQEMUIsRestartedOrMarkedCrashedByItsPolicy() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc3")
        defer { Self.cleanUp(root) }
        let daemon = try await Daemon.start(root: root)
        for (name, policy) in [("flaky", "on-failure"), ("fragile", "\"no\"")] {
            let up = try await daemon.run("up", try Guest.writeProfile(in: root, name: name, extra: "restart: \(policy)\n"))
            #expect(up.status == .exited(0), "\(up)")
        }

        let flaky = try await daemon.json(VMStatus.self, "status", "flaky")
        kill(try #require(flaky.pid), SIGKILL)
        #expect(try await daemon.waitForEvent(vm: "flaky", "restarted") != nil)
        let restarted = try await daemon.json(VMStatus.self, "status", "flaky")
        #expect(restarted.state == .running)
        #expect(restarted.restartCount == 1)
        #expect(restarted.pid != nil && restarted.pid != flaky.pid)
        #expect(restarted.lastExit?.contains("signal 9") == true, "\(restarted.lastExit ?? "-")")

        let fragile = try await daemon.json(VMStatus.self, "status", "fragile")
        kill(try #require(fragile.pid), SIGKILL)
        #expect(try await daemon.waitForEvent(vm: "fragile", "crashed") != nil)
        let crashed = try await daemon.json(VMStatus.self, "status", "fragile")
        #expect(crashed.state == .crashed)
        #expect(crashed.pid == nil && crashed.restartCount == 0)
        #expect(try await daemon.run("ls").output.contains("crashed"))

        _ = try await daemon.run("kill", "flaky")
        #expect(await daemon.terminate() == .exited(0))
    }

    @Test func invalidProfileExitsTwoAndFailingQEMUExitsOneLeavingNothing() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc4")
        defer { Self.cleanUp(root) }
        let daemon = try await Daemon.start(root: root)

        let bad = root + "/bad.yaml"
        try "name: bad\ncpu: { count: 3, max: 2 }\nmemory: { size: 1GB }\n".write(toFile: bad, atomically: true,
                                                                                  encoding: .utf8)
        let invalid = try await daemon.run("up", bad)
        #expect(invalid.status == .exited(2), "\(invalid)")
        let lines = invalid.output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("\(bad):2:") && $0.contains("cpu.count:") }, "\(invalid)")
        #expect(lines.contains { $0.hasPrefix("\(bad):3:") && $0.contains("memory.size:") }, "\(invalid)")
        #expect(lines.last == "error: invalid profile (2 errors)", "\(invalid)")

        let broken = try Guest.writeProfile(in: root, name: "broken", extra: "machine: pc-q35-99.0\n")
        let failed = try await daemon.run("up", broken)
        #expect(failed.status == .exited(1), "\(failed)")
        #expect(failed.output.hasPrefix("error: "), "\(failed)")
        #expect(failed.output.split(separator: "\n").contains { $0.hasPrefix("  qemu: ") && $0.contains("unsupported machine type") },
                "QEMU's own message is shown: \(failed)")

        #expect(try await daemon.json([VMStatus].self, "ls").isEmpty, "nothing is listed")
        #expect(!FileManager.default.fileExists(atPath: daemon.state + "/vms/broken"))
        let left = try processesMentioning(daemon.state).filter { $0 != daemon.handle.pid }
        #expect(left.isEmpty, "no QEMU left: \(left)")
        #expect(await daemon.terminate() == .exited(0))
    }

    @Test func twentyConcurrentCLIOperationsOnOneVM() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc5")
        defer { Self.cleanUp(root) }
        let daemon = try await Daemon.start(root: root)
        #expect(try await daemon.run("up", try Guest.writeProfile(in: root, name: "busy")).status == .exited(0))

        // Twenty processes at once, each its own client connection.
        var running: [(String, ProcessHandle, String)] = []
        for i in 0..<20 {
            let verb: [String] =
                switch i % 4 {
                case 0: ["pause", "busy", "--socket", daemon.socket]
                case 1: ["resume", "busy", "--socket", daemon.socket]
                case 2: ["status", "busy", "--socket", daemon.socket]
                default: ["qmp", "busy", "query-status", "--daemon-socket", daemon.socket]
                }
            let output = root + "/op-\(i).out"
            running.append((verb.joined(separator: " "),
                            try ProcessLauncher.launch(LaunchSpec(executable: Self.binary, arguments: verb,
                                                                  outputFile: output)),
                            output))
        }
        var refused = 0
        for (command, handle, output) in running {
            let status = await handle.waitForExit(timeout: .seconds(300))
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            switch status {
            case .exited(0)?:
                break
            case .exited(1)?:
                refused += 1
                #expect(text.split(separator: "\n").contains { $0.hasPrefix("error: ") }, "\(command): \(text)")
            default:
                Issue.record("\(command) ended with \(String(describing: status)): \(text)")
            }
        }
        #expect(refused < 20, "most operations succeed")

        // Whatever order they ran in, corral's view and QEMU's agree at the end.
        let final = try await daemon.json(VMStatus.self, "status", "busy")
        let qmp = try await daemon.run("qmp", "busy", "query-status")
        #expect(qmp.status == .exited(0), "\(qmp)")
        let reply = try JSONSerialization.jsonObject(with: Data(qmp.output.utf8)) as? [String: Any]
        let qemuRunning = try #require(reply?["running"] as? Bool, "\(qmp)")
        #expect(final.state == .running || final.state == .paused)
        #expect((final.state == .running) == qemuRunning, "status says \(final.state), QEMU says running=\(qemuRunning)")
        _ = try await daemon.run("kill", "busy")
        #expect(await daemon.terminate() == .exited(0))
    }

    // MARK: Hotplug and overcommit

    @Test func hotplugVerbsShowUpInTheGuest() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc6")
        defer { Self.cleanUp(root) }
        let daemon = try await Daemon.start(root: root)
        let profile = try Guest.writeProfile(in: root, name: "hp", cpu: "{ count: 1, max: 2 }",
                                             extra: "hotplug: { slots: 4 }\n")
        #expect(try await daemon.run("up", profile).status == .exited(0))
        let log = try await daemon.json(VMStatus.self, "status", "hp").serialLog
        _ = try await HeartbeatWait.first(in: log) { $0.n >= 1 && $0.cpus == 1 }

        let cpu = try await daemon.run("cpu", "hp", "2")
        #expect(cpu.output == "hp: 2 vCPUs online (max 2)\n", "\(cpu)")
        _ = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.cpus == 2 }

        // A relative --file is resolved against the CLI's working directory.
        let work = root + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let disk = try await daemon.run("disk", "add", "hp", "--id", "d1", "--file", "rel.qcow2", "--size", "16M",
                                        in: work)
        #expect(disk.status == .exited(0), "\(disk)")
        #expect(disk.output.hasPrefix("hp: disk d1 added: \(work)/rel.qcow2 (qcow2"), "\(disk)")
        #expect(FileManager.default.fileExists(atPath: work + "/rel.qcow2"))
        _ = try await HeartbeatWait.first(in: log) { $0.disks == ["vda"] }

        let nic = try await daemon.run("nic", "add", "hp", "--id", "n1")
        #expect(nic.status == .exited(0), "\(nic)")
        #expect(nic.output.hasPrefix("hp: nic n1 added: 52:54:00:"), "\(nic)")
        _ = try await HeartbeatWait.first(in: log) { $0.nics == ["eth0", "eth1"] }

        let rm = try await daemon.run("disk", "rm", "hp", "d1", "--delete-image")
        #expect(rm.output == "hp: disk d1 removed\n", "\(rm)")
        _ = try await HeartbeatWait.first(in: log) { $0.disks.isEmpty }
        #expect(!FileManager.default.fileExists(atPath: work + "/rel.qcow2"), "--delete-image removed the image")
        let status = try await daemon.json(VMStatus.self, "status", "hp")
        #expect(status.disks.isEmpty && status.nics.map(\.id) == ["net0", "n1"] && status.cpus.online == 2)

        // An id in use is invalid input: exit 2 and a one-line reason.
        let twice = try await daemon.run("nic", "add", "hp", "--id", "n1")
        #expect(twice.status == .exited(2) && twice.output.hasPrefix("error: "), "\(twice)")

        // vCPU unplug last: under QEMU 7.2/TCG the daemon refuses any plug after it.
        let down = try await daemon.run("cpu", "hp", "1")
        #expect(down.output == "hp: 1 vCPU online (max 2)\n", "\(down)")
        _ = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.cpus == 1 }

        _ = try await daemon.run("kill", "hp")
        #expect(await daemon.terminate() == .exited(0))
    }

    @Test func balloonStatsAndHostThroughTheCLI() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("dc7")
        defer { Self.cleanUp(root) }
        let daemon = try await Daemon.start(root: root)
        let profile = try Guest.writeProfile(in: root, name: "bal", memory: "{ size: 256M, balloon: { min: 128M } }")
        #expect(try await daemon.run("up", profile).status == .exited(0))
        let log = try await daemon.json(VMStatus.self, "status", "bal").serialLog
        let before = try await HeartbeatWait.first(in: log) { $0.n >= 2 }

        let balloon = try await daemon.run("balloon", "bal", "160M")
        #expect(balloon.status == .exited(0), "\(balloon)")
        #expect(balloon.output.hasPrefix("bal: balloon target 160M"), "\(balloon)")
        let after = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.memKB < before.memKB - 60_000 }
        #expect(after.memKB < before.memKB)

        // The balloon reaches its target a moment after the guest gave the memory back.
        var stats = try await daemon.json(GuestStats.self, "stats", "bal")
        for _ in 0..<30 where stats.balloonBytes != 160 << 20 {
            try await Task.sleep(for: .milliseconds(300))
            stats = try await daemon.json(GuestStats.self, "stats", "bal")
        }
        #expect(stats.balloonBytes == 160 << 20)
        #expect(stats.balloonTargetBytes == 160 << 20)
        #expect(stats.autoBalloon == false, "a manual target turns the policy off for this VM")
        let human = try await daemon.run("stats", "bal")
        #expect(human.output.split(separator: "\n").first == "balloon:          160 MiB (target 160 MiB)", "\(human)")

        let tooBig = try await daemon.run("balloon", "bal", "1G")
        #expect(tooBig.status == .exited(2), "an out-of-range size is invalid input: \(tooBig)")

        let host = try await daemon.json(HostReport.self, "host")
        let row = try #require(host.vms.first { $0.name == "bal" })
        #expect(row.state == .running && row.memoryBytes == 256 << 20 && row.balloonBytes == 160 << 20)
        #expect(host.cpus.capacity >= 1 && host.memory.capacity > 0)
        #expect(host.ksm.managed == false, "--no-ksm")
        let table = try await daemon.run("host")
        #expect(table.output.split(separator: "\n").contains { $0.hasPrefix("bal ") && $0.contains("running") },
                "\(table)")

        let set = try await daemon.run("set", "bal", "--auto-balloon", "on", "--memory-shares", "2000")
        #expect(set.output == "bal: memory-shares 2000, auto-balloon on\n", "\(set)")
        #expect(try await daemon.json(HostReport.self, "host").vms.first?.memoryShares == 2000)

        _ = try await daemon.run("kill", "bal")
        #expect(await daemon.terminate() == .exited(0))
    }
}

/// Waits for the first line of a (growing) file that satisfies a predicate.
enum LineWait {
    static func first(in path: String, within limit: Duration,
                      where predicate: @escaping @Sendable (String) -> Bool) async -> String? {
        await LogFollower.firstLine(in: path, within: limit, where: predicate)
    }
}
