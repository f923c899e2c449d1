import Foundation
import Profiles
import QEMUCommand
import Testing

/// Launches the real QEMU with our argv (TCG, paused) and checks it accepts every argument.
@Suite("QEMU accepts the argv", .serialized)
struct QEMUAcceptanceTests {
    @Test("q35 + UEFI, every disk bus and cache mode, NICs, balloon, 9 root ports, hotplugged devices")
    func q35() throws {
        try acceptance(machine: "q35", slots: 9, incoming: nil)
    }

    @Test("i440fx, reserved hotplug slots, hotplugged devices, -incoming defer")
    func i440fx() throws {
        try acceptance(machine: "pc", slots: 4, incoming: "defer")
    }

    /// Hugepages are left out: this host need not have any reserved, and with `prealloc` QEMU would fail.
    @Test("memory.merge false (-machine mem-merge=off) and memory.lock (-overcommit mem-lock=on)")
    func mergeOffAndLock() throws {
        // Four ports: `richHotplugged` puts its NIC on hp3.
        try acceptance(machine: "q35", slots: 4, incoming: nil) { profile in
            profile.memory.merge = false
            profile.memory.lock = true
        }
    }

    private func acceptance(machine: String, slots: Int, incoming: String?,
                            tune: (inout Profile) -> Void = { _ in }) throws {
        let qemu = try #require(findExecutable("qemu-system-x86_64"),
                                "qemu-system-x86_64 is not installed; run scripts/test (it installs the test dependencies)")
        let qemuImg = try #require(findExecutable("qemu-img"), "qemu-img is not installed; run scripts/test")

        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("corral-argv-\(ProcessInfo.processInfo.processIdentifier)-\(machine)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        var profile = Fixture.rich(dir: dir.path, machine: machine, slots: slots)
        profile.qemu.binary = qemu
        tune(&profile)
        // The longest disk id Profiles accepts (32): its node names must be shortened to QEMU's 31 bytes.
        profile.disks.append(Disk(id: "a-very-long-disk-identifier-0001", file: dir.path + "/long.qcow2",
                                  bus: .virtioBlk, cache: .writethrough))
        let hotplugged = Fixture.richHotplugged(dir: dir.path)
        for disk in profile.disks + hotplugged.disks.map(\.disk) {
            let status = try run(qemuImg, ["create", "-q", "-f", disk.format.rawValue, disk.file, "64M"])
            #expect(status.code == 0, "qemu-img create \(disk.file): \(status.stderr)")
        }

        let runtime = RuntimeOptions(accel: .tcg, qmpSocket: dir.appendingPathComponent("q,m p.sock").path,
                                     serialLog: dir.appendingPathComponent("serial, log").path,
                                     pidFile: dir.appendingPathComponent("qemu.pid").path,
                                     startPaused: true, incoming: incoming)
        let args = QEMUArgv.build(LiveConfig(profile: profile, hotplugged: hotplugged), runtime)
        #expect(args.contains("-S"))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: args[0])
        process.arguments = Array(args.dropFirst())
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()

        // QEMU rejects bad arguments while parsing, before it would sit paused; give it time to fail.
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let stillRunning = process.isRunning
        // SIGKILL, not terminate(): a child spawned from a dispatch worker thread inherits that thread's
        // signal mask, in which SIGTERM is blocked, so QEMU would never see a SIGTERM.
        if stillRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n")
        #expect(stillRunning, "QEMU exited with \(process.terminationStatus): \(errors.joined(separator: "\n"))")
        #expect(errors.isEmpty, "QEMU complained:\n\(errors.joined(separator: "\n"))")
        // It really got as far as creating the runtime files we asked for.
        #expect(FileManager.default.fileExists(atPath: runtime.qmpSocket))
        #expect(FileManager.default.fileExists(atPath: runtime.serialLog ?? ""))
    }
}

func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

private func run(_ executable: String, _ arguments: [String]) throws -> (code: Int32, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stderr = Pipe()
    process.standardError = stderr
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let data = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
