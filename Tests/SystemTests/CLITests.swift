import Foundation
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Drives the real `corral` binary the way an operator does.
@Suite(.serialized, .bootsGuests) struct CLITests {
    static var binary: String {
        if let env = ProcessInfo.processInfo.environment["CORRAL_BIN"] { return env }
        let built = Guest.repoRoot + "/.build/debug/corral"
        return built
    }

    /// Runs corral to completion; returns its exit status and combined output.
    func corral(_ args: String...) async throws -> (Supervisor.ExitStatus, String) {
        let result = try await ProcessLauncher.run(Self.binary, args)
        return (result.status, result.output)
    }

    func tinyProfile(in folder: String, name: String) throws -> String {
        try Guest.writeProfile(in: folder, name: name)
    }

    @Test func runStreamsHeartbeatsAndStopsAfterDuration() async throws {
        try Guest.requireBuilt()
        let folder = Guest.tempFolder("run")
        defer { Guest.cleanUp(folder) }
        let profile = try tinyProfile(in: folder, name: "run-for")
        // A loaded CI host (TCG, many guests) has taken 25 s to reach the first heartbeat and well over the
        // default 10 s to act on the power button: the run lasts long enough for heartbeats under any such load.
        let (status, output) = try await corral("run", profile, "--for", "60", "--stop-timeout", "90",
                                                "--folder", folder + "/vm")
        #expect(status == .exited(0), "\(output)")
        #expect(output.contains("run-for: running (pid "))
        let beats = output.split(separator: "\n").compactMap { Heartbeat(line: String($0)) }
        #expect(!beats.isEmpty, "heartbeats streamed from the serial console:\n\(output)")
        #expect(beats.allSatisfy { $0.nics == ["eth0"] && $0.cpus == 1 })
        #expect(output.contains("run-for: stopped (powerdown"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/vm/qmp.sock"), "socket removed")
        #expect(try processesMentioning(folder + "/vm").isEmpty, "no QEMU left running")
    }

    @Test func runStopsGracefullyOnCtrlC() async throws {
        try Guest.requireBuilt()
        let folder = Guest.tempFolder("sigint")
        defer { Guest.cleanUp(folder) }
        let profile = try tinyProfile(in: folder, name: "run-int")
        let log = folder + "/out.log"
        let handle = try ProcessLauncher.launch(
            LaunchSpec(executable: Self.binary, arguments: ["run", profile, "--folder", folder + "/vm"], outputFile: log))
        _ = try await HeartbeatWait.first(in: log)
        handle.signal(SIGINT)
        let status = await handle.waitForExit(timeout: .seconds(90))
        if status == nil { await handle.terminate() }
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(status == .exited(0), "\(output)")
        #expect(output.contains("run-int: stopping (Ctrl-C)"))
        #expect(output.contains("run-int: stopped ("))
        #expect(try processesMentioning(folder + "/vm").isEmpty, "no QEMU left running")
    }

    @Test func checkExitsTwoAndNamesEveryProblem() async throws {
        let folder = Guest.tempFolder("check")
        defer { Guest.cleanUp(folder) }
        let path = folder + "/bad.yaml"
        try """
            name: Bad_Name
            cpu: { count: 12, max: 8 }
            memory: { size: 512MB }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try await corral("check", path)
        #expect(status == .exited(2))
        #expect(output.contains("\(path):1:7: name:"), "\(output)")
        #expect(output.contains("\(path):2:15: cpu.count: 12 is more than cpu.max (8)"), "\(output)")
        #expect(output.contains("\(path):3:17: memory.size:"), "\(output)")
    }

    /// `corral daemon` hands over to `corrald` beside it; a `corral` alone (and none in PATH) says what is missing.
    @Test func daemonWithoutCorraldSaysWhatIsMissing() async throws {
        let folder = Guest.tempFolder("lonely")
        defer { Guest.cleanUp(folder) }
        let lonely = folder + "/corral"
        try FileManager.default.copyItem(atPath: Self.binary, toPath: lonely)
        let result = try await ProcessLauncher.run(
            "/usr/bin/env", ["PATH=\(folder)/empty", lonely, "daemon", "--state-dir", folder + "/state", "--socket", folder + "/s.sock"])
        #expect(result.status == .exited(1), "\(result.output)")
        #expect(result.output.contains("cannot find corrald (the daemon executable) next to corral or in PATH"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/s.sock") && !FileManager.default.fileExists(atPath: folder + "/state"))
    }

    /// `corral check|argv|run|convert|qmp --socket` hand over to `corral-local`; without it they say what is missing, while
    /// `--help` and argument errors still come from `corral` itself.
    @Test func localVerbsWithoutCorralLocalSayWhatIsMissing() async throws {
        let folder = Guest.tempFolder("lonely-local")
        defer { Guest.cleanUp(folder) }
        let lonely = folder + "/corral"
        try FileManager.default.copyItem(atPath: Self.binary, toPath: lonely)
        let profile = Guest.repoRoot + "/profiles/tiny-test.yaml"
        let env = ["/usr/bin/env", "PATH=\(folder)/empty", lonely]
        let check = try await ProcessLauncher.run(env[0], Array(env.dropFirst()) + ["check", profile])
        #expect(check.status == .exited(1), "\(check.output)")
        #expect(check.output.contains("cannot find corral-local (the executable for check, argv, run, convert and qmp --socket)"),
                "\(check.output)")
        let help = try await ProcessLauncher.run(env[0], Array(env.dropFirst()) + ["argv", "--help"])
        #expect(help.status == .exited(0) && help.output.contains("USAGE: corral argv <profile>"), "\(help.output)")
        let bad = try await ProcessLauncher.run(env[0], Array(env.dropFirst()) + ["run", profile, "--for", "0"])
        #expect(bad.status != .exited(0) && bad.output.contains("--for must be more than 0 seconds"), "\(bad.output)")
        #expect(!bad.output.contains("corral-local"), "parsed by corral, not handed over: \(bad.output)")
    }

    /// The client binary carries the API client and nothing the daemon or the local verbs need: its start-up cost
    /// (metadata scans in argument parsing) is what `corral up` pays over QEMU. Swift symbol and type names embed
    /// their module as `<length><name>`.
    @Test func theClientBinaryCarriesNoSupervisorProfilesOrServer() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.binary))
        func carries(_ module: String) -> Bool { bytes.range(of: Data("\(module.utf8.count)\(module)".utf8)) != nil }
        #expect(carries("CorralWire") && carries("CorralModel"), "the search finds the modules the client does link")
        for module in ["Supervisor", "Profiles", "QEMUCommand", "Yams", "Hummingbird", "NIOCore", "API"] {
            #expect(!carries(module), "corral links \(module)")
        }
    }

    @Test func argvShowsKVMAndJSONDevicesForWeb() async throws {
        let (status, output) = try await corral("argv", Guest.repoRoot + "/profiles/web.yaml", "--no-file-checks")
        #expect(status == .exited(0), "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasSuffix("qemu-system-x86_64") == true)
        #expect(lines.contains("-enable-kvm"))
        let devices = zip(lines, lines.dropFirst()).filter { $0.0 == "-device" }.map(\.1)
        #expect(!devices.isEmpty && devices.allSatisfy { $0.hasPrefix("{\"driver\":") })
        let (_, quoted) = try await corral("argv", Guest.repoRoot + "/profiles/web.yaml", "--no-file-checks", "--shell")
        #expect(quoted.split(separator: "\n").count == 1)
        #expect(quoted.contains(" -device '{\"driver\":"))
    }

    /// QEMU's QMP socket serves one client at a time, so this drives a bare QEMU nobody else holds.
    @Test func qmpCommandTalksToAnyQMPSocket() async throws {
        let folder = Guest.tempFolder("qmpcli")
        defer { Guest.cleanUp(folder) }
        let socket = folder + "/qmp.sock"
        let qemu = try ProcessLauncher.launch(LaunchSpec(
            executable: "qemu-system-x86_64",
            arguments: ["-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
                        "-chardev", "socket,id=qmp,path=\(socket),server=on,wait=off", "-mon", "chardev=qmp,mode=control"],
            outputFile: folder + "/qemu.out"))
        defer { qemu.signal(SIGKILL) }
        let (status, reply) = try await corral("qmp", "--socket", socket, "query-status")
        #expect(status == .exited(0), "\(reply)")
        #expect(reply.contains("\"status\": \"prelaunch\""), "\(reply)")
        let (cont, _) = try await corral("qmp", "--socket", socket, "cont")
        #expect(cont == .exited(0))
        let (_, running) = try await corral("qmp", "--socket", socket, "query-status")
        #expect(running.contains("\"running\": true"), "\(running)")
        let (bad, message) = try await corral("qmp", "--socket", socket, "no-such-command")
        #expect(bad == .exited(1))
        #expect(message.contains("CommandNotFound"), "\(message)")
        let (badArgs, argsMessage) = try await corral("qmp", "--socket", socket, "query-status", "[1]")
        #expect(badArgs == .exited(2))
        #expect(argsMessage.contains("must be one JSON object"))
    }
}
