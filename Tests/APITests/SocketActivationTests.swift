import CorralModel
import Foundation
import Supervisor
import Testing
import UnixSockets
#if canImport(Glibc)
import Glibc
#endif

/// The real `corral daemon` started the way systemd starts it for `corral.socket`: the listening socket is passed as
/// descriptor 3 with `LISTEN_FDS`/`LISTEN_PID`. The passer keeps its copy, so a client that connects while the daemon
/// restarts waits for the next one instead of failing, and the socket file is never the daemon's to remove.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SocketActivationTests {
    struct Place {
        let root: String
        var socket: String { root + "/corral.sock" }
        var state: String { root + "/state" }
    }

    static func withPlace(_ body: (Place) async throws -> Void) async throws {
        var template = Array("/tmp/corral-act-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        defer {
            for pid in BinaryTCPTests.processes(mentioning: root) { kill(pid, SIGKILL) }
            FileOps.removeTree(root)
        }
        try await body(Place(root: root))
    }

    /// `corral daemon` with `listener` as its descriptor 3 and the variables systemd sets (LISTEN_PID is the
    /// daemon's own pid: the shell sets it and execs, keeping its pid); waits until it serves.
    static func activatedDaemon(_ place: Place, listener: Int32, log: String) async throws -> ProcessHandle {
        var spec = LaunchSpec(
            executable: "/bin/sh",
            arguments: ["-c", "LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" daemon --state-dir \"$1\" --no-ksm --no-auto-balloon",
                        BinaryTCPTests.binary, place.state],
            outputFile: log)
        spec.passing = [3: listener]
        let daemon = try ProcessLauncher.launch(spec)
        let ready = await BinaryTCPTests.firstLine(in: log, within: .seconds(60)) {
            $0.contains("listening") && $0.contains("socket=\(place.socket)")
        }
        try #require(ready != nil, "the daemon did not serve the passed socket: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        return daemon
    }

    static func inode(_ path: String) -> UInt64? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return UInt64(info.st_ino)
    }

    func corral(_ args: [String], socket: String) async throws -> (status: Supervisor.ExitStatus, output: String) {
        try await ProcessLauncher.run(BinaryTCPTests.binary, args + ["--socket", socket])
    }

    @Test func aClientThatConnectsWhileTheDaemonRestartsIsAnsweredByTheNextOne() async throws {
        try await Self.withPlace { place in
            let listener = try UnixStreamListen.listen(path: place.socket, backlog: 16)
            defer { close(listener) }
            let socketInode = try #require(Self.inode(place.socket))

            var daemon = try await Self.activatedDaemon(place, listener: listener, log: place.root + "/daemon1.log")
            let first = try await corral(["ls", "--json"], socket: place.socket)
            #expect(first.status == .exited(0), "\(first.output)")
            let passedOn = try String(contentsOfFile: "/proc/\(daemon.pid)/environ", encoding: .utf8)
            #expect(passedOn.contains("LISTEN_FDS=1"), "the test really passed the socket")

            // The daemon stops (systemctl restart's first half): the socket file stays, the same one.
            daemon.signal(SIGTERM)
            let stopped = await daemon.waitForExit(timeout: .seconds(30))
            #expect(stopped == .exited(0), "\(String(describing: stopped))")
            #expect(Self.inode(place.socket) == socketInode, "the daemon left the passed socket where it was")

            // A client now connects with no daemon running: it waits in the socket's backlog…
            let waiting = try ProcessLauncher.launch(LaunchSpec(
                executable: BinaryTCPTests.binary, arguments: ["ls", "--json", "--socket", place.socket],
                outputFile: place.root + "/client.out"))
            try await Task.sleep(for: .seconds(1))
            #expect(waiting.exitStatus == nil,
                    "the client gave up while no daemon ran: \((try? String(contentsOfFile: place.root + "/client.out", encoding: .utf8)) ?? "")")

            // …and the next daemon answers it.
            daemon = try await Self.activatedDaemon(place, listener: listener, log: place.root + "/daemon2.log")
            let answered = await waiting.waitForExit(timeout: .seconds(30))
            let output = (try? String(contentsOfFile: place.root + "/client.out", encoding: .utf8)) ?? ""
            #expect(answered == .exited(0), "\(output)")
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(output)")

            // The daemon's children (QEMU) must not inherit the socket: it is close-on-exec (O_CLOEXEC = 0o2000000).
            let fdinfo = try String(contentsOfFile: "/proc/\(daemon.pid)/fdinfo/3", encoding: .utf8)
            let flags = fdinfo.split(separator: "\n").first { $0.hasPrefix("flags:") }
                .flatMap { Int($0.dropFirst("flags:".count).trimmingCharacters(in: .whitespaces), radix: 8) }
            #expect(flags.map { $0 & 0o2000000 != 0 } == true, "\(fdinfo)")

            daemon.signal(SIGTERM)
            _ = await daemon.waitForExit(timeout: .seconds(30))
            #expect(Self.inode(place.socket) == socketInode, "still the passer's socket")
        }
    }

    @Test func systemdsOwnSocketActivateStartsTheDaemonOnTheFirstConnection() async throws {
        guard let activate = HostProbe.findExecutable("systemd-socket-activate") else {
            Issue.record("systemd-socket-activate (package systemd) is missing")
            return
        }
        try await Self.withPlace { place in
            let log = place.root + "/daemon.log"
            let activator = try ProcessLauncher.launch(LaunchSpec(
                executable: activate,
                arguments: ["-l", place.socket, BinaryTCPTests.binary, "daemon", "--state-dir", place.state,
                            "--no-ksm", "--no-auto-balloon"],
                outputFile: log))
            defer { activator.signal(SIGKILL) }
            let listening = await BinaryTCPTests.firstLine(in: log, within: .seconds(30)) { $0.contains("Listening on") }
            try #require(listening != nil, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")

            let list = try await corral(["ls"], socket: place.socket)
            #expect(list.status == .exited(0), "\(list.output)")
            #expect(list.output.contains("NAME"), "\(list.output)")
            let logText = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(logText.contains("socket=\(place.socket)") && logText.contains("listening"), "\(logText)")

            // A malformed activation is refused with a message naming it, before any state is touched.
            let bad = try await ProcessLauncher.run("/bin/sh", [
                "-c", "LISTEN_FDS=many LISTEN_PID=$$ exec \"$0\" daemon --state-dir \"$1\" --socket \"$1.sock\"",
                BinaryTCPTests.binary, place.root + "/other"])
            #expect(bad.status == .exited(1) && bad.output.contains("LISTEN_FDS=many"), "\(bad.output)")
            #expect(!FileManager.default.fileExists(atPath: place.root + "/other"), "no state made")
        }
    }
}
