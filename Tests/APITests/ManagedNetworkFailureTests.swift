import CorralModel
import Foundation
import Supervisor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// dnsmasq going wrong under a managed network, with the real dnsmasq in the test's namespace: refused at start in
/// its own words with nothing left behind, and restarted when it exits (but not forever).
extension BridgeNetworkTests {
    func networkInfo(_ host: Host, _ name: String) async throws -> NetworkInfo {
        let show = try await host.corral(["network", "show", name, "--json"])
        try #require(show.status == .exited(0), "\(show)")
        return try JSONDecoder().decode(NetworkInfo.self, from: Data(show.output.utf8))
    }

    /// Polls `network show` until `predicate` holds, for up to `limit`.
    func waitForNetwork(_ host: Host, _ name: String, within limit: Duration = .seconds(20),
                        until predicate: (NetworkInfo) -> Bool) async throws -> NetworkInfo {
        let deadline = ContinuousClock.now + limit
        var info = try await networkInfo(host, name)
        while !predicate(info), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            info = try await networkInfo(host, name)
        }
        return info
    }

    @Test func aDnsmasqThatCannotStartIsRefusedInItsOwnWordsAndLeavesNothing() async throws {
        try await Self.withHost { host in
            // Port 53 on every address of the namespace, held without SO_REUSEADDR: dnsmasq cannot listen.
            let blocker = try ProcessLauncher.launch(LaunchSpec(
                executable: Self.ip,
                arguments: ["netns", "exec", Self.namespace, "python3", "-c",
                            "import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                + "s.bind(('0.0.0.0',53))\nprint('bound',flush=True)\ntime.sleep(600)"],
                outputFile: host.root + "/blocker.log"))
            let bound = await BinaryTCPTests.firstLine(in: host.root + "/blocker.log", within: .seconds(10)) { $0 == "bound" }
            try #require(bound != nil, "the port 53 blocker did not start")

            let create = try await host.corral(["network", "create", "busy", "--subnet", "203.0.113.0/24", "--nat"])
            #expect(create.status != .exited(0), "\(create)")
            #expect(create.output.contains("dnsmasq for network busy"), "\(create)")
            #expect(create.output.contains("Address already in use"), "dnsmasq's own words: \(create)")
            #expect(try await !host.exists("cn-busy"), "no bridge left")
            let table = try await ProcessLauncher.run(Self.ip, ["netns", "exec", Self.namespace, "nft", "list", "table", "ip", "corral-busy"])
            #expect(table.status != .exited(0), "no NAT table left")
            #expect(!FileManager.default.fileExists(atPath: host.state + "/networks/busy"), "no folder left")
            #expect(BinaryTCPTests.processes(mentioning: "--interface=cn-busy").isEmpty, "no dnsmasq left")
            let list = try await host.corral(["network", "ls"])
            #expect(!list.output.contains("busy"), "\(list)")

            // With port 53 free the same request works: the refusal was dnsmasq's, not corral's.
            blocker.signal(SIGKILL)
            _ = await blocker.waitForExit(timeout: .seconds(10))
            let again = try await host.corral(["network", "create", "busy", "--subnet", "203.0.113.0/24", "--nat"])
            #expect(again.status == .exited(0), "\(again)")
            _ = try await host.corral(["network", "rm", "busy"])
        }
    }

    @Test func aDnsmasqThatExitsIsStartedAgainButNotForever() async throws {
        try await Self.withHost { host in
            let create = try await host.corral(["network", "create", "flaky", "--subnet", "203.0.113.0/24"])
            try #require(create.status == .exited(0), "\(create)")
            var info = try await networkInfo(host, "flaky")
            var pids = [try #require(info.dnsmasqPid, "\(info)")]

            // Killed once: a new dnsmasq serves the network.
            kill(pids[0], SIGKILL)
            info = try await waitForNetwork(host, "flaky") { $0.dnsmasqPid != nil && $0.dnsmasqPid != pids[0] }
            let second = try #require(info.dnsmasqPid, "dnsmasq was not started again: \(info)")
            #expect(info.state == "up" && info.problem == nil, "\(info)")
            #expect(kill(second, 0) == 0, "the new dnsmasq runs")
            let arguments = String(decoding: (FileManager.default.contents(atPath: "/proc/\(second)/cmdline") ?? Data())
                .map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            #expect(arguments.contains("--interface=cn-flaky"), "\(arguments)")
            pids.append(second)

            // Killed again and again within a minute: after five restarts it stays down and the network says why.
            for _ in 0..<5 {
                let current = pids.last!
                kill(current, SIGKILL)
                info = try await waitForNetwork(host, "flaky") {
                    ($0.dnsmasqPid != nil && $0.dnsmasqPid != current) || $0.problem?.contains("keeps exiting") == true
                }
                if let pid = info.dnsmasqPid { pids.append(pid) }
            }
            #expect(info.dnsmasqPid == nil && info.state == "degraded", "\(info)")
            #expect(info.problem?.contains("dnsmasq keeps exiting") == true, "\(info)")
            #expect(Set(pids).count == pids.count, "each restart is a new process: \(pids)")
            _ = try await host.corral(["network", "rm", "flaky"])
        }
    }
}
