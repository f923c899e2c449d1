import CorralModel
import Foundation
import Supervisor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// No head-of-line blocking in the real daemon: while one `up` is stuck (its QEMU takes long to answer, as a huge
/// preallocated guest does) and profile bombs keep arriving, `ls`, `status` and pause/resume of another VM are
/// answered. Checked by order, not by the clock: each answer arrives while that `up` is still in flight.
extension DaemonCLITests {
    @Test func aStuckUpAndProfileBombsDelayNeitherLsNorOtherVMs() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("hol")
        defer { Self.cleanUp(root) }
        // The wrapper writes into the test's folder: its QEMU runs as root here (isolation is IsolationTests' subject).
        let daemon = try await Daemon.start(root: root, extra: ["--qemu-user", "root"])

        let quick = try await daemon.run("up", try Guest.writeProfile(in: root, name: "quick"))
        try #require(quick.status == .exited(0), "\(quick)")

        // A "QEMU" that answers only once the test lets it: a wrapper that waits for a file, then execs QEMU.
        let started = root + "/slow.started", release = root + "/slow.release"
        let wrapper = root + "/slow-qemu"
        try """
            #!/bin/sh
            : > \(started)
            while [ ! -e \(release) ]; do sleep 0.1; done
            exec qemu-system-x86_64 "$@"

            """.write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let slowProfile = try Guest.writeProfile(in: root, name: "slow", extra: "qemu: { binary: \(wrapper) }\n")
        let slowUp = try ProcessLauncher.launch(LaunchSpec(
            executable: DaemonCLITests.binary, arguments: ["up", slowProfile, "--socket", daemon.socket],
            outputFile: root + "/slow-up.out"))
        defer { FileManager.default.createFile(atPath: release, contents: Data()) }
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: started), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let inFlight = FileManager.default.fileExists(atPath: started)
        try #require(inFlight, "the slow up never reached its QEMU: \((try? String(contentsOfFile: root + "/slow-up.out", encoding: .utf8)) ?? "")")

        // Profile bombs arriving at the same time are refused, each on its own.
        var bomb = "name: laughs\nmemory: 1G\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 { bomb += "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        try bomb.write(toFile: root + "/bomb.yaml", atomically: true, encoding: .utf8)
        let bombs = try (0..<3).map { index in
            try ProcessLauncher.launch(LaunchSpec(
                executable: DaemonCLITests.binary, arguments: ["up", root + "/bomb.yaml", "--socket", daemon.socket],
                outputFile: root + "/bomb\(index).out"))
        }

        // Everything about other VMs, and the list itself, is answered meanwhile.
        let list = try await daemon.json([VMStatus].self, "ls")
        #expect(list.first { $0.name == "quick" }?.state == .running, "\(list)")
        let status = try await daemon.json(VMStatus.self, "status", "quick")
        #expect(status.state == .running)
        let pause = try await daemon.run("pause", "quick")
        #expect(pause.status == .exited(0), "\(pause)")
        let resume = try await daemon.run("resume", "quick")
        #expect(resume.status == .exited(0), "\(resume)")
        for (index, bomb) in bombs.enumerated() {
            let refused = await bomb.waitForExit(timeout: .seconds(60))
            let output = (try? String(contentsOfFile: root + "/bomb\(index).out", encoding: .utf8)) ?? ""
            #expect(refused == .exited(2) && output.contains("alias"), "\(output)")
        }
        #expect(slowUp.exitStatus == nil, "every answer above came while the slow up was still in flight")
        let whileStuck = try await daemon.json([VMStatus].self, "ls")
        #expect(whileStuck.contains { $0.name == "slow" }, "the VM being started is listed: \(whileStuck)")

        // Let it go: the stuck up finishes normally.
        FileManager.default.createFile(atPath: release, contents: Data())
        let finished = await slowUp.waitForExit(timeout: .seconds(120))
        #expect(finished == .exited(0), "\((try? String(contentsOfFile: root + "/slow-up.out", encoding: .utf8)) ?? "")")
        let after = try await daemon.json([VMStatus].self, "ls")
        #expect(after.map(\.state) == [.running, .running], "\(after)")
        _ = try await daemon.run("rm", "--force", "quick")
        _ = try await daemon.run("rm", "--force", "slow")
        #expect(await daemon.terminate() == .exited(0))
    }
}
