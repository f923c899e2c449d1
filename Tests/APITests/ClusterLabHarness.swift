import CorralModel
import Foundation
import Supervisor
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A cluster lab for the partition tests (`scripts/netns-cluster`): one network namespace per host and one for a
/// 3-member etcd, joined by a bridge in a "switch" namespace; one real `corral daemon` process per host namespace.
/// The CLI reaches each daemon over its Unix socket; the daemons reach etcd and each other only across the switch, so
/// cutting a host's port on the switch partitions that host for real.
enum ClusterLab {
    static let etcd = "/opt/corral-etcd/usr/bin/etcd"
    /// Root (namespaces), iproute2 and etcd.
    static var usable: Bool { TwoHostEnvironment.usable && FileManager.default.isExecutableFile(atPath: etcd) }

    /// One per test process, so two runs on one machine do not take down each other's lab.
    static let prefix = "cl\(getpid() % 100_000)"
    static var script: String { BinaryTCPTests.repoRoot + "/scripts/netns-cluster" }
    static var etcdScript: String { BinaryTCPTests.repoRoot + "/scripts/etcd-cluster" }
    static let port = 7070

    typealias CLIResult = TwoHostMigrationTests.CLIResult
    typealias Failed = TwoHostMigrationTests.Failed

    struct Lab {
        var root: String
        var hosts: Int
        /// etcd's client URLs, comma-separated.
        var urls: String

        var etcdFolder: String { root + "/lab/etcd" }
        func socket(_ k: Int) -> String { root + "/h\(k).sock" }
        func stateDir(_ k: Int) -> String { root + "/state-h\(k)" }
        func serialLog(_ k: Int, vm: String) -> String { VMPaths(stateRoot: stateDir(k), name: vm).serialLog }
        func address(_ k: Int) -> String { "192.0.2.\(10 + k):\(ClusterLab.port)" }

        /// `corral ARGS --socket` host K's socket, to completion.
        func corral(_ args: [String], on k: Int) async throws -> CLIResult {
            let result = try await ProcessLauncher.run(BinaryTCPTests.binary, args + ["--socket", socket(k)])
            return CLIResult(command: "corral " + args.joined(separator: " ") + " (host-\(k))", status: result.status,
                             output: result.output)
        }

        func list(on k: Int) async throws -> [VMStatus] {
            let result = try await corral(["ls", "--json"], on: k)
            try #require(result.status == .exited(0), "\(result)")
            return try JSONDecoder().decode([VMStatus].self, from: Data(result.output.utf8))
        }

        /// `corral status NAME --json` on host K; nil when the host does not have the VM (or does not answer).
        func status(_ name: String, on k: Int) async -> VMStatus? {
            guard let result = try? await corral(["status", name, "--json"], on: k), result.status == .exited(0)
            else { return nil }
            return try? JSONDecoder().decode(VMStatus.self, from: Data(result.output.utf8))
        }

        /// The state of host K's own copy of the VM (`ls` lists only the host's own VMs, where `status` of a VM
        /// another host owns is forwarded there); nil: host K has none (or does not answer).
        func ownState(_ name: String, on k: Int) async -> VMState? {
            guard let result = try? await corral(["ls", "--json"], on: k), result.status == .exited(0),
                  let vms = try? JSONDecoder().decode([VMStatus].self, from: Data(result.output.utf8)) else { return nil }
            return vms.first { $0.name == name }?.state
        }

        /// The state of each host's own copy of the VM, host 1 first, read at once (nil: not there).
        func states(_ name: String) async -> [VMState?] {
            await withTaskGroup(of: (Int, VMState?).self) { group in
                for k in 1...hosts { group.addTask { (k, await ownState(name, on: k)) } }
                var states = [VMState?](repeating: nil, count: hosts)
                for await (k, state) in group { states[k - 1] = state }
                return states
            }
        }

        func cluster(on k: Int) async throws -> ClusterReport {
            let result = try await corral(["cluster", "ls", "--json"], on: k)
            try #require(result.status == .exited(0), "\(result)")
            return try JSONDecoder().decode(ClusterReport.self, from: Data(result.output.utf8))
        }

        /// Writes a TCG guest's profile (256M, the test kernel and initrd, no disk, no NIC) and `up`s it on host K;
        /// returns once the guest prints heartbeats there.
        func up(_ name: String, on k: Int, extra: String = "") async throws -> VMStatus {
            let profile = root + "/\(name).yaml"
            try """
                name: \(name)
                accel: tcg
                cpu: { count: 1, max: 1 }
                memory: { size: 256M }
                boot:
                  kernel: \(BinaryTCPTests.kernel)
                  initrd: \(BinaryTCPTests.initrd)
                  cmdline: "console=ttyS0 panic=-1 quiet no_timer_check"
                nics: []

                """.appending(extra).write(toFile: profile, atomically: true, encoding: .utf8)
            let result = try await corral(["up", profile, "--json"], on: k)
            try #require(result.status == .exited(0), "\(result)")
            let status = try JSONDecoder().decode(VMStatus.self, from: Data(result.output.utf8))
            _ = try await TwoHostMigrationTests.heartbeat(in: status.serialLog) { _ in true }
            return status
        }

        /// Host K's port on the switch down (`cut`) or up (`mend`).
        func link(_ action: String, _ k: Int) async throws {
            let result = try await ProcessLauncher.run(ClusterLab.script, [action, ClusterLab.prefix, "\(k)"])
            try #require(result.status == .exited(0), "netns-cluster \(action) \(k): \(result.output)")
        }

        /// SIGKILLs etcd member K (1-based).
        func killEtcdMember(_ k: Int) async throws {
            let result = try await ProcessLauncher.run(ClusterLab.etcdScript, ["kill", etcdFolder, "\(k)"])
            try #require(result.status == .exited(0), "etcd-cluster kill \(k): \(result.output)")
        }
    }

    /// Polls `body` every 250 ms until it is true or `limit` passes.
    static func eventually(within limit: Duration, _ body: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await body() { return true }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return await body()
    }

    /// The lab up with `hosts` hosts, a daemon in each (`host-K` listening on 192.0.2.(10+K):7070, the same admin
    /// and peer tokens), `body`, then, passed or failed, every process mentioning the temp root killed and the lab
    /// taken down.
    static func withLab(hosts: Int = 3, _ body: (Lab) async throws -> Void) async throws {
        guard FileManager.default.fileExists(atPath: BinaryTCPTests.kernel),
            FileManager.default.fileExists(atPath: BinaryTCPTests.initrd)
        else {
            Issue.record("test guest missing: run scripts/build-test-guest (scripts/test does)")
            return
        }
        var template = Array("/tmp/corral-lab-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        let labFolder = root + "/lab"
        _ = try await ProcessLauncher.run(script, ["down", prefix, labFolder])  // leftovers of an interrupted run
        defer {
            for pid in BinaryTCPTests.processes(mentioning: root) { kill(pid, SIGKILL) }
            let down = Process()
            down.executableURL = URL(fileURLWithPath: script)
            down.arguments = ["down", prefix, labFolder]
            try? down.run()
            down.waitUntilExit()
            FileOps.removeTree(root)
        }
        let up = try await ProcessLauncher.run(script, ["up", prefix, labFolder, "--hosts", "\(hosts)"])
        try #require(up.status == .exited(0), "netns-cluster up: \(up.output)")
        let urls = String(up.output.split(separator: "\n").last ?? "")
        let adminToken = root + "/admin-token", peerToken = root + "/peer-token"
        try "lab-admin\n".write(toFile: adminToken, atomically: true, encoding: .utf8)
        try "lab-peer\n".write(toFile: peerToken, atomically: true, encoding: .utf8)

        let lab = Lab(root: root, hosts: hosts, urls: urls)
        for k in 1...hosts {
            let log = root + "/daemon-h\(k).log"
            _ = try ProcessLauncher.launch(LaunchSpec(
                executable: TwoHostEnvironment.ip,
                arguments: ["netns", "exec", "\(prefix)-h\(k)", BinaryTCPTests.binary, "daemon",
                            "--cluster", urls, "--host", "host-\(k)", "--listen", lab.address(k),
                            "--token-file", adminToken, "--peer-token-file", peerToken,
                            "--state-dir", lab.stateDir(k), "--socket", lab.socket(k), "--no-ksm", "--no-auto-balloon"],
                outputFile: log))
        }
        // Both listeners of every daemon (the Unix socket may come after TCP).
        for k in 1...hosts {
            let log = root + "/daemon-h\(k).log"
            for needle in ["tcp=\(lab.address(k))", "socket=\(lab.socket(k))"] {
                let line = await BinaryTCPTests.firstLine(in: log, within: .seconds(60)) {
                    $0.contains(needle) && $0.contains("listening")
                }
                if line == nil {
                    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                    throw Failed(description: "daemon host-\(k) did not listen (\(needle)):\n\(text)")
                }
            }
        }
        try await body(lab)
    }
}
