import Foundation
import JSON
import Profiles
import QEMUCommand
import QMP
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport

/// Real QEMU (TCG) + the test guest: what the *guest* sees is asserted through its heartbeat lines.
@Suite(.serialized, .bootsGuests) struct LauncherTests {
    @Test func bootsHeartbeatsAndPowersOffCleanly() async throws {
        try Guest.requireBuilt()
        let folder = Guest.tempFolder("boot")
        defer { Guest.cleanUp(folder) }
        let profile = Guest.profile(
            name: "boot-test",
            disks: [Disk(id: "data", file: folder + "/data.qcow2", size: .mib(16))],
            nics: [NIC(id: "net0")])
        let paths = VMPaths(folder: folder + "/vm")
        let spawns = SpawnCalls()
        var request = StartRequest(config: LiveConfig(profile: profile), accel: .tcg, paths: paths)
        request.onSpawn = { pid, time in spawns.append(pid, time) }
        let vm = try await VMLauncher().start(request)

        #expect(spawns.calls.count == 1, "the spawn hook ran once, before start returned")
        #expect(spawns.calls.first?.pid == vm.process.pid && spawns.calls.first?.time == vm.startedAt)
        #expect(FileManager.default.fileExists(atPath: folder + "/data.qcow2"), "disk image created from size")
        let status = try await vm.qmp.execute("query-status")
        #expect(status["status"]?.stringValue == "running")

        let beat = try await HeartbeatWait.first(in: paths.serialLog) { $0.n >= 2 }
        #expect(beat.cpus == 1)
        #expect(beat.disks == ["vda"])
        #expect(beat.nics == ["eth0"])
        #expect(beat.memKB > 150_000 && beat.memKB < 262_144)

        let (exit, method) = await VMShutdown.stop(vm, timeout: .seconds(60))
        #expect(method == .powerdown, "the guest honours the ACPI power button")
        #expect(exit == .exited(0))
        #expect(!ProcessHandle.isAlive(vm.process.pid))
        let serial = try String(contentsOfFile: paths.serialLog, encoding: .utf8)
        #expect(serial.contains("CORRAL-POWEROFF"))
        let transcript = try String(contentsOfFile: paths.transcript, encoding: .utf8)
        #expect(transcript.contains("system_powerdown"), "QMP transcript records commands")
        #expect(transcript.contains("SHUTDOWN") || transcript.contains("POWERDOWN"))
        await vm.qmp.close()
    }

    @Test func qemuFailingAtStartShowsItsErrorAndLeavesNothing() async throws {
        try Guest.requireBuilt()
        let folder = Guest.tempFolder("fail")
        defer { Guest.cleanUp(folder) }
        var profile = Guest.profile(
            name: "fail-test", disks: [Disk(id: "data", file: folder + "/new.qcow2", size: .mib(8))])
        profile.machine = "no-such-machine"  // bypasses profile validation on purpose: QEMU itself refuses
        let paths = VMPaths(folder: folder + "/vm")
        await #expect {
            _ = try await VMLauncher().start(
                StartRequest(config: LiveConfig(profile: profile), accel: .tcg, paths: paths))
        } throws: { error in
            guard let error = error as? StartError else { return false }
            return error.qemuOutput.joined().contains("unsupported machine type")
                && error.description.contains("  qemu: qemu-system-x86_64: unsupported machine type")
        }
        #expect(!FileManager.default.fileExists(atPath: paths.qmpSocket), "no stale socket")
        #expect(!FileManager.default.fileExists(atPath: folder + "/new.qcow2"), "created image rolled back")
        #expect(try processesMentioning(folder).isEmpty, "no QEMU left running")
    }

    @Test func missingBinaryIsAClearError() async throws {
        let folder = Guest.tempFolder("nobin")
        defer { Guest.cleanUp(folder) }
        var profile = Guest.profile(name: "nobin")
        profile.qemu.binary = "qemu-system-does-not-exist"
        await #expect {
            _ = try await VMLauncher().start(
                StartRequest(config: LiveConfig(profile: profile), accel: .tcg, paths: VMPaths(folder: folder)))
        } throws: { error in
            "\(error)".contains("'qemu-system-does-not-exist' not found (qemu.binary)")
        }
    }

    @Test func socketPathTooLongIsRefusedUpFront() async throws {
        let long = "/tmp/" + String(repeating: "x", count: 120)
        let profile = Guest.profile(name: "long")
        await #expect {
            _ = try await VMLauncher().start(
                StartRequest(config: LiveConfig(profile: profile), accel: .tcg, paths: VMPaths(folder: long)))
        } throws: { error in
            "\(error)".contains("use a shorter --state-dir")
        }
        #expect(!FileManager.default.fileExists(atPath: long))
    }
}

/// pids of processes whose command line mentions `text` (from /proc).
func processesMentioning(_ text: String) throws -> [Int32] {
    let entries = try FileManager.default.contentsOfDirectory(atPath: "/proc")
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry), pid != getpid(),
            let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { return nil }
        let cmdline = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        return cmdline.contains(text) ? pid : nil
    }
}

/// What `StartRequest.onSpawn` was called with.
final class SpawnCalls: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [(pid: Int32, time: Double)] = []

    func append(_ pid: Int32, _ time: Double) { lock.withLock { recorded.append((pid, time)) } }
    var calls: [(pid: Int32, time: Double)] { lock.withLock { recorded } }
}
