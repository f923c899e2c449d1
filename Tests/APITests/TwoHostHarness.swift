import API
import CorralModel
import CorralWire
import Foundation
import JSON
import CorralControl
import LogTail
import QEMUCommand
import Supervisor
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The two-host harness: the hosts, their daemons, heartbeats and QEMU transcripts, bridges across the hosts.
extension TwoHostMigrationTests {
    /// Both daemons, the shared folder and the token, for one test.
    struct Hosts {
        var root: String
        /// The daemons' peer token (`--peer-token-file`): every migration in these tests runs with it, so each proves
        /// the narrower key is enough to migrate.
        var tokenFile: String
        /// B's TCP API as `--to` takes it: `192.0.2.2:7070`, or `[2001:db8::2]:7070` over IPv6.
        var destination: String
        var a: ProcessHandle
        var b: ProcessHandle

        var socketA: String { root + "/a.sock" }
        var socketB: String { root + "/b.sock" }
        var stateA: String { root + "/state-a" }
        var stateB: String { root + "/state-b" }
        var serialA: String { VMPaths(stateRoot: stateA, name: TwoHostMigrationTests.vm).serialLog }
        var serialB: String { VMPaths(stateRoot: stateB, name: TwoHostMigrationTests.vm).serialLog }

        /// `corral ARGS --socket SOCKET`, to completion.
        func corral(_ args: [String], socket: String) async throws -> CLIResult {
            let result = try await ProcessLauncher.run(BinaryTCPTests.binary, args + ["--socket", socket])
            return CLIResult(command: "corral " + args.joined(separator: " "), status: result.status,
                             output: result.output)
        }

        /// `corral migrate ARGS` in the background, output to a file (for cancel and fault tests).
        func migrateInBackground(_ args: [String], output: String) throws -> ProcessHandle {
            try ProcessLauncher.launch(LaunchSpec(
                executable: BinaryTCPTests.binary, arguments: ["migrate"] + args + ["--socket", socketA],
                outputFile: output))
        }

        func list(_ socket: String) async throws -> [VMStatus] {
            let result = try await corral(["ls", "--json"], socket: socket)
            try #require(result.status == .exited(0), "\(result)")
            return try JSONDecoder().decode([VMStatus].self, from: Data(result.output.utf8))
        }

        var transcriptA: String { VMPaths(stateRoot: stateA, name: TwoHostMigrationTests.vm).transcript }

        /// Writes the guest's profile (TCG, 256M) with one disk image at `disk` and `cmdline` added to the kernel
        /// command line, and starts it on A.
        func upOnA(disk: String, cmdline: String = "", cpu: String = "{ count: 1, max: 1 }", hotplugSlots: Int = 0,
                   nics: String = "[]")
            async throws -> VMStatus
        {
            let profile = root + "/vm.yaml"
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: disk).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try """
                name: \(TwoHostMigrationTests.vm)
                accel: tcg
                cpu: \(cpu)
                memory: { size: 256M }
                hotplug: { slots: \(hotplugSlots) }
                boot:
                  kernel: \(BinaryTCPTests.kernel)
                  initrd: \(BinaryTCPTests.initrd)
                  cmdline: "console=ttyS0 panic=-1 quiet no_timer_check\(cmdline.isEmpty ? "" : " " + cmdline)"
                disks: [ { id: data, file: \(disk), size: 64M, cache: writeback } ]
                nics: \(nics)

                """.write(toFile: profile, atomically: true, encoding: .utf8)
            let result = try await corral(["up", profile, "--json"], socket: socketA)
            try #require(result.status == .exited(0), "\(result)")
            let status = try JSONDecoder().decode(VMStatus.self, from: Data(result.output.utf8))
            // Booted: the guest prints heartbeats.
            _ = try await TwoHostMigrationTests.heartbeat(in: serialA) { _ in true }
            return status
        }
    }

    struct CLIResult: CustomStringConvertible {
        var command: String
        var status: Supervisor.ExitStatus
        var output: String
        var description: String { "\(command) → \(status)\n\(output)" }
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    // MARK: Setup and teardown

    /// Namespaces up, one daemon in each (listening on the hosts' IPv6 addresses with `ipv6`), `body`, then every
    /// process of the test killed and everything removed.
    /// `daemonFlags`: extra `corral daemon` flags for both hosts.
    /// `apiTLS`: both daemons get throw-away certificates (scripts/make-test-certs) in STATE/tls and `--api-tls`.
    static func withHosts(ipv6: Bool = false, daemonFlags: [String] = [], apiTLS: Bool = false,
                          _ body: (Hosts) async throws -> Void) async throws {
        guard FileManager.default.fileExists(atPath: BinaryTCPTests.kernel),
            FileManager.default.fileExists(atPath: BinaryTCPTests.initrd)
        else {
            Issue.record("test guest missing: run scripts/build-test-guest (scripts/test does)")
            return
        }
        var template = Array("/tmp/corral-mig-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        _ = try await ProcessLauncher.run(netnsScript, ["down", prefix])  // leftovers of an interrupted run
        let up = try await ProcessLauncher.run(netnsScript, ["up", prefix])
        defer {
            for pid in BinaryTCPTests.processes(mentioning: root) { kill(pid, SIGKILL) }
            let down = Process()
            down.executableURL = URL(fileURLWithPath: netnsScript)
            down.arguments = ["down", prefix]
            try? down.run()
            down.waitUntilExit()
            FileOps.removeTree(root)
        }
        try #require(up.status == .exited(0), "netns-hosts up: \(up.output)")
        let adminTokenFile = root + "/admin-token"
        try "two-hosts-admin\n".write(toFile: adminTokenFile, atomically: true, encoding: .utf8)
        let tokenFile = root + "/peer-token"
        try "two-hosts-peer\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)

        var daemonFlags = daemonFlags
        if apiTLS {
            let certs = root + "/certs"
            let made = try await ProcessLauncher.run(BinaryTCPTests.repoRoot + "/scripts/make-test-certs", [certs])
            try #require(made.status == .exited(0), "make-test-certs: \(made.output)")
            for side in ["a", "b"] {
                try FileManager.default.createDirectory(atPath: root + "/state-\(side)", withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(atPath: root + "/state-\(side)/tls", withDestinationPath: certs)
            }
            daemonFlags.append("--api-tls")
        }

        func startDaemon(_ side: String, address: HostPort) async throws -> ProcessHandle {
            let log = root + "/daemon-\(side).log"
            let handle = try ProcessLauncher.launch(LaunchSpec(
                executable: ip,
                arguments: ["netns", "exec", "\(prefix)-\(side)", BinaryTCPTests.binary, "daemon",
                            "--state-dir", root + "/state-\(side)", "--socket", root + "/\(side).sock",
                            "--listen", "\(address)", "--token-file", adminTokenFile, "--peer-token-file", tokenFile,
                            "--no-ksm", "--no-auto-balloon"] + daemonFlags,
                outputFile: log))
            let listening = await BinaryTCPTests.firstLine(in: log, within: .seconds(60)) {
                $0.split(separator: " ").contains("tcp=\(address)") && $0.contains("listening")
            }
            if listening == nil {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw Failed(description: "daemon \(side) did not listen on \(address):\n\(text)")
            }
            return handle
        }
        let addressA = try HostPort(host: ipv6 ? hostA6 : hostA, port: port)
        let addressB = try HostPort(host: ipv6 ? hostB6 : hostB, port: port)
        let a = try await startDaemon("a", address: addressA)
        let b = try await startDaemon("b", address: addressB)
        // The Unix socket is published after TCP may already listen: wait for both.
        for side in ["a", "b"] {
            let socket = root + "/\(side).sock"
            let log = root + "/daemon-\(side).log"
            let ready = await BinaryTCPTests.firstLine(in: log, within: .seconds(60)) {
                $0.contains("socket=\(socket)") && $0.contains("listening")
            }
            if ready == nil { throw Failed(description: "daemon \(side) did not publish \(socket)") }
        }
        try await body(Hosts(root: root, tokenFile: tokenFile, destination: addressB.description, a: a, b: b))
    }

    // MARK: Heartbeats

    /// `n` of a complete `CORRAL-HB n=… cpus=… … memkb=…` line.
    static func heartbeatNumber(_ line: String) -> Int? {
        guard let start = line.range(of: "CORRAL-HB n="), line.contains(" memkb=") else { return nil }
        return Int(line[start.upperBound...].prefix { $0.isNumber })
    }

    /// The first heartbeat in `log` whose number satisfies `predicate`.
    static func heartbeat(in log: String, within limit: Duration = .seconds(180),
                          where predicate: @escaping @Sendable (Int) -> Bool) async throws -> Int {
        let line = await BinaryTCPTests.firstLine(in: log, within: limit) { line in
            heartbeatNumber(line).map(predicate) ?? false
        }
        guard let line, let n = heartbeatNumber(line) else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log)"
            throw Failed(description: "no matching heartbeat in \(log); tail:\n\(text.suffix(1200))")
        }
        return n
    }

    /// Every heartbeat number in a file read now (the source's log is read before it is removed).
    static func heartbeats(in log: String) -> [Int] {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isNewline).compactMap { heartbeatNumber(String($0)) }
    }

    /// Follows A's serial log while a migration runs and remembers the highest heartbeat seen.
    /// The follower keeps its descriptor, so lines written just before the folder is removed still count.
    final class HighestHeartbeat: @unchecked Sendable {
        private let lock = NSLock()
        private var value = -1
        var highest: Int { lock.withLock { value } }
        func see(_ n: Int) { lock.withLock { value = max(value, n) } }
    }

    static func follow(_ log: String, into highest: HighestHeartbeat) -> (LogFollower, Task<Void, Never>) {
        let follower = LogFollower(path: log)
        let task = Task {
            for await line in follower.lines() {
                if let n = heartbeatNumber(line) { highest.see(n) }
            }
        }
        return (follower, task)
    }

    // MARK: Transcripts and bridges

    /// Arguments of every `command` corral sent to A's QEMU, in order.
    static func sent(_ command: String, in lines: [TranscriptLine]) -> [JSONValue] {
        lines.filter { $0.command == command }.map { $0.message["arguments"] ?? .object([:]) }
    }

    /// `data.status` of every MIGRATION event of A's QEMU, in order.
    static func migrationStatuses(in lines: [TranscriptLine]) -> [String] {
        lines.compactMap { $0.event == "MIGRATION" ? $0.message["data"]?["status"]?.stringValue : nil }
    }

    /// The state of capability `name` in the last `migrate-set-capabilities` corral sent.
    static func capability(_ name: String, in lines: [TranscriptLine]) -> Bool? {
        sent("migrate-set-capabilities", in: lines).last?["capabilities"]?.arrayValue?
            .first { $0["capability"]?.stringValue == name }?["state"]?.boolValue
    }

    /// A bridge `br0` on each host, joined by a veth trunk: one L2 segment across both, A's side at
    /// 198.51.100.1, B's at 198.51.100.2.
    static func joinBridges() async throws {
        let a = "\(prefix)-a", b = "\(prefix)-b"
        let steps: [[String]] = [
            ["-n", a, "link", "add", "br0", "type", "bridge"], ["-n", b, "link", "add", "br0", "type", "bridge"],
            ["link", "add", "\(prefix)-ta", "type", "veth", "peer", "name", "\(prefix)-tb"],
            ["link", "set", "\(prefix)-ta", "netns", a], ["link", "set", "\(prefix)-tb", "netns", b],
            ["-n", a, "link", "set", "\(prefix)-ta", "master", "br0", "up"],
            ["-n", b, "link", "set", "\(prefix)-tb", "master", "br0", "up"],
            ["-n", a, "addr", "add", "198.51.100.1/24", "dev", "br0"], ["-n", b, "addr", "add", "198.51.100.2/24", "dev", "br0"],
            ["-n", a, "link", "set", "br0", "up"], ["-n", b, "link", "set", "br0", "up"],
        ]
        for step in steps {
            let result = try await ProcessLauncher.run(ip, step)
            try #require(result.status == .exited(0), "ip \(step.joined(separator: " ")): \(result.output)")
        }
    }

    /// The interfaces on `br0` of host `side`.
    static func bridgePorts(_ side: String) async throws -> [String] {
        let text = try await ProcessLauncher.run(ip, ["-n", "\(prefix)-\(side)", "-o", "link", "show", "master", "br0"]).output
        return text.split(separator: "\n").compactMap {
            $0.split(separator: ":").dropFirst().first.map { String($0.trimmingCharacters(in: .whitespaces).split(separator: "@")[0]) }
        }
    }
}
