import Foundation
import JSON
import QMP
import Testing

/// Talks to a real `qemu-system-x86_64` (TCG, no guest, started paused with `-S`).
@Suite("QMP against a real QEMU")
struct QEMUIntegrationTests {
    static func findQEMU() -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("qemu-system-x86_64")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    @Test func lifecycleOverQMP() async throws {
        guard let qemu = Self.findQEMU() else {
            Issue.record("qemu-system-x86_64 is not installed (not on PATH); run scripts/test, which installs it")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qmp-it-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let socket = directory.appendingPathComponent("qmp.sock").path

        let process = Process()
        process.executableURL = qemu
        process.arguments = [
            "-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
            "-chardev", "socket,id=qmp,path=\(socket),server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: directory)
        }

        let transcript = TranscriptRecorder()
        let client: QMPClient
        do {
            client = try await QMPClient.connect(socketPath: socket, connectTimeout: .seconds(20),
                                                 transcript: transcript.callback)
        } catch {
            let stderr = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
            Issue.record("could not connect to QEMU's QMP socket: \(error); QEMU said: \(stderr)")
            return
        }

        #expect(client.greeting.version.major >= 7)
        #expect(try await client.queryVersion().major == client.greeting.version.major)

        let initial = try await client.queryStatus()
        #expect(["prelaunch", "paused"].contains(initial.status))
        #expect(initial.running == false)

        let events = client.events(["RESUME", "STOP", "SHUTDOWN"])

        try await client.cont()
        #expect(await nextEvent(events)?.name == "RESUME")
        let running = try await client.queryStatus()
        #expect(running.status == "running")
        #expect(running.running)

        try await client.stop()
        #expect(await nextEvent(events)?.name == "STOP")
        let paused = try await client.queryStatus()
        #expect(paused.status == "paused")
        #expect(paused.running == false)

        await #expect(throws: QMPError.self) { try await client.execute("no-such-command") }
        do {
            _ = try await client.execute("device_del", ["id": "nothing-here"])
            Issue.record("device_del of a missing device succeeded")
        } catch {
            guard case .commandFailed(let command, let errorClass, let desc) = error else {
                Issue.record("expected commandFailed, got \(error)")
                return
            }
            #expect(command == "device_del")
            #expect(errorClass == "DeviceNotFound")
            #expect(desc.contains("nothing-here"))
        }

        try await client.quit()
        let shutdown = await nextEvent(events)
        #expect(shutdown?.name == "SHUTDOWN")
        #expect(shutdown.map { $0.timestamp > 1_600_000_000 } == true)
        let ended: Void? = await withHangGuard { await client.waitForDisconnect() }
        #expect(ended != nil, "QEMU did not close the QMP socket after quit")
        #expect(await !client.isConnected)
        #expect(transcript.all.contains { $0.direction == .sent && $0.text.contains(#""execute":"quit""#) })
        await client.close()

        if process.isRunning {
            _ = await withHangGuard { process.waitUntilExit() }
        }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
    }
}
