import API
import CorralModel
import CorralWire
import Foundation
import CorralControl
import LogTail
import Supervisor
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The real `corral daemon` binary with a TCP listener, driven by `CorralClient` over TCP.
///
/// It lives here rather than in SystemTests because only this test target may import `API`
/// (the client); it boots the same test guest as the system tests.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(5))) struct BinaryTCPTests {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The `corral` next to this test bundle, then `$CORRAL_BIN`, then `.build/debug/corral`.
    static let binary: String = {
        if let env = ProcessInfo.processInfo.environment["CORRAL_BIN"], !env.isEmpty { return env }
        let sibling = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("corral").path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return repoRoot + "/.build/debug/corral"
    }()

    /// `$CORRAL_TEST_GUEST` (a folder built with `scripts/build-test-guest DIR`), else `.build/test-guest`.
    static var guestFolder: String {
        if let dir = ProcessInfo.processInfo.environment["CORRAL_TEST_GUEST"], !dir.isEmpty { return dir }
        return repoRoot + "/.build/test-guest"
    }
    static var kernel: String { guestFolder + "/vmlinuz" }
    static var initrd: String { guestFolder + "/initrd.img" }

    /// Processes whose command line mentions `text` (daemon, QEMU), for cleanup.
    static func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry), pid != getpid(),
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { return nil }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text) ? pid : nil
        }
    }

    /// First line of a growing file that satisfies `predicate`, or nil after `limit`.
    static func firstLine(in path: String, within limit: Duration, where predicate: @escaping @Sendable (String) -> Bool)
        async -> String?
    {
        await LogFollower.firstLine(in: path, within: limit, where: predicate)
    }

    @Test func wrongTokenIsRefusedBeforeAnythingHappensRightTokenWorks() async throws {
        guard FileManager.default.fileExists(atPath: Self.kernel), FileManager.default.fileExists(atPath: Self.initrd)
        else {
            Issue.record("test guest missing: run scripts/build-test-guest (scripts/test does)")
            return
        }
        var template = Array("/tmp/corral-tcp-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        defer {
            for pid in Self.processes(mentioning: root) { kill(pid, SIGKILL) }
            FileOps.removeTree(root)
        }
        try "correct-horse-battery\n".write(toFile: root + "/token", atomically: true, encoding: .utf8)
        try "scraper-only\n".write(toFile: root + "/metrics-token", atomically: true, encoding: .utf8)
        let profile = root + "/tcp.yaml"
        try """
            name: tcp
            accel: tcg
            cpu: { count: 1, max: 1 }
            memory: { size: 256M }
            boot:
              kernel: \(Self.kernel)
              initrd: \(Self.initrd)
              cmdline: "console=ttyS0 panic=-1 quiet no_timer_check"

            """.write(toFile: profile, atomically: true, encoding: .utf8)

        // Port 0: the kernel picks one, the daemon logs it.
        let log = root + "/daemon.log"
        let daemon = try ProcessLauncher.launch(LaunchSpec(
            executable: Self.binary,
            arguments: ["daemon", "--state-dir", root + "/state", "--socket", root + "/d.sock", "--no-ksm",
                        "--listen", "127.0.0.1:0", "--token-file", root + "/token",
                        "--metrics-token-file", root + "/metrics-token"],
            outputFile: log))
        let listening = await Self.firstLine(in: log, within: .seconds(60)) {
            $0.contains("tcp=127.0.0.1:") && $0.contains("listening")
        }
        let line = try #require(listening, "the daemon did not listen on TCP: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let address = try #require(line.split(separator: " ").first { $0.hasPrefix("tcp=127.0.0.1:") })
        let port = try #require(Int(address.split(separator: ":").last ?? ""))

        let right = CorralClient.Endpoint.tcp(try HostPort(host: "127.0.0.1", port: port), token: "correct-horse-battery")
        let wrong = CorralClient.Endpoint.tcp(try HostPort(host: "127.0.0.1", port: port), token: "correct-horse-batterx")

        let up = try await CorralClient.withClient(right) { try await $0.up(UpRequest(profile: profile)) }
        #expect(up.state == .running)
        let pid = try #require(up.pid)

        try await CorralClient.withClient(wrong) { client in
            for attempt in 0..<3 {
                do {
                    switch attempt {
                    case 0: _ = try await client.list()
                    case 1: _ = try await client.kill("tcp")
                    default: _ = try await client.up(UpRequest(profile: profile, name: "intruder"))
                    }
                    Issue.record("attempt \(attempt) with a wrong token was served")
                } catch let error as CorralClientError {
                    guard case .unauthorized = error else {
                        Issue.record("attempt \(attempt): expected unauthorized, got \(error)")
                        continue
                    }
                }
            }
        }

        // Nothing was done: the same one VM, still running on the same QEMU.
        let listed = try await CorralClient.withClient(right) { try await $0.list() }
        #expect(listed.map(\.name) == ["tcp"])
        #expect(listed.first?.state == .running && listed.first?.pid == pid)
        #expect(ProcessHandle.isAlive(pid))

        // The metrics token opens GET /metrics and nothing else; the admin token opens it too.
        let scraped = try Self.get(port: port, "/metrics", token: "scraper-only")
        #expect(scraped.status == 200)
        #expect(scraped.body.contains(#"corral_vm_state{state="running",vm="tcp"} 1"#), "\(scraped.body)")
        #expect(try Self.get(port: port, "/metrics", token: "correct-horse-battery").status == 200)
        #expect(try Self.get(port: port, "/v1/vms", token: "scraper-only").status == 403)
        #expect(try Self.get(port: port, "/metrics", token: "scraper-onlz").status == 401)

        _ = try await CorralClient.withClient(right) { try await $0.kill("tcp") }
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit(timeout: .seconds(60)) == .exited(0))
    }

    /// `GET path` on 127.0.0.1:`port` with a bearer token, over a plain socket (the connection closed after it).
    static func get(port: Int, _ path: String, token: String) throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "connect: errno \(errno)")
        let request = Array("GET \(path) HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n".utf8)
        try #require(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == request.count)
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            reply += buffer.prefix(n)
        }
        let text = String(decoding: reply, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// systemd's Type=notify: the daemon says READY=1 once its socket answers, and STOPPING=1 when told to stop.
    @Test func theDaemonTellsSystemdWhenItIsReadyAndWhenItStops() async throws {
        var template = Array("/tmp/corral-ntf-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        defer {
            for pid in Self.processes(mentioning: root) { kill(pid, SIGKILL) }
            FileOps.removeTree(root)
        }
        let notifyPath = root + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(notifyPath.utf8))
            raw[notifyPath.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : nil
        }

        let socketPath = root + "/corral.sock"
        let daemon = try ProcessLauncher.launch(LaunchSpec(
            executable: "/usr/bin/env",
            arguments: ["NOTIFY_SOCKET=\(notifyPath)", Self.binary, "daemon", "--state-dir", root + "/state",
                        "--socket", socketPath, "--no-ksm", "--no-auto-balloon"],
            outputFile: root + "/daemon.log"))
        let ready = receive()
        #expect(ready?.split(separator: "\n").contains("READY=1") == true, "\(ready ?? "nothing")")
        #expect(ready?.contains("MAINPID=\(daemon.pid)") == true, "corral daemon execs corrald in place: \(ready ?? "")")
        let names = try await CorralClient.withClient(.unixSocket(socketPath)) { try await $0.list().map(\.name) }
        #expect(names.isEmpty, "the socket answers once READY=1 was sent")
        daemon.signal(SIGTERM)
        #expect(receive() == "STOPPING=1")
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == .exited(0))
    }
}
