import CorralModel
import Foundation
import QEMUCommand
import Supervisor
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Taps corral makes, with real QEMU and the test guest: one network namespace as the host, a bridge in it
/// (198.51.100.1/24), a real `corral daemon` inside, driven through the `corral` binary. Checks what the host's
/// kernel sees (which taps exist, on which bridge, with which MTU) and what the guests see.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10)), .enabled(if: TwoHostEnvironment.usable))
struct BridgeNetworkTests {
    static let namespace = "cb\(getpid() % 100_000)"
    static var ip: String { TwoHostEnvironment.ip }

    struct Host {
        var root: String
        var socket: String { root + "/corral.sock" }
        var state: String { root + "/state" }
        var daemon: ProcessHandle

        func corral(_ args: [String]) async throws -> TwoHostMigrationTests.CLIResult {
            let result = try await ProcessLauncher.run(BinaryTCPTests.binary, args + ["--socket", socket])
            return .init(command: "corral " + args.joined(separator: " "), status: result.status, output: result.output)
        }

        /// `ip -n NS ARGS`, to completion; its output.
        func ipn(_ args: [String]) async throws -> String {
            try await ProcessLauncher.run(BridgeNetworkTests.ip, ["-n", BridgeNetworkTests.namespace] + args).output
        }

        /// The interfaces enslaved to `bridge`, by name.
        func ports(of bridge: String) async throws -> [String] {
            let text = try await ipn(["-o", "link", "show", "master", bridge])
            return text.split(separator: "\n").compactMap { line in
                line.split(separator: ":").dropFirst().first.map {
                    String($0.trimmingCharacters(in: .whitespaces).split(separator: "@").first ?? "")
                }
            }
        }

        func exists(_ interface: String) async throws -> Bool {
            let result = try await ProcessLauncher.run(BridgeNetworkTests.ip,
                                                       ["-n", BridgeNetworkTests.namespace, "link", "show", interface])
            return result.status == .exited(0)
        }

        func mtu(_ interface: String) async throws -> Int? {
            let text = try await ipn(["-o", "link", "show", interface])
            guard let range = text.range(of: " mtu ") else { return nil }
            return Int(text[range.upperBound...].prefix { $0.isNumber })
        }

        /// A guest profile: TCG, 256M, NICs as given (YAML flow list), extra kernel arguments.
        func profile(_ name: String, nics: String, cmdline: String = "", slots: Int = 0) throws -> String {
            let path = root + "/\(name).yaml"
            try """
                name: \(name)
                accel: tcg
                cpu: { count: 1, max: 1 }
                memory: { size: 256M }
                hotplug: { slots: \(slots) }
                boot:
                  kernel: \(BinaryTCPTests.kernel)
                  initrd: \(BinaryTCPTests.initrd)
                  cmdline: "console=ttyS0 panic=-1 quiet no_timer_check\(cmdline.isEmpty ? "" : " " + cmdline)"
                nics: \(nics)

                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func serial(_ vm: String) -> String { VMPaths(stateRoot: state, name: vm).serialLog }

        func status(_ vm: String) async throws -> VMStatus {
            let result = try await corral(["status", vm, "--json"])
            try #require(result.status == .exited(0), "\(result)")
            return try JSONDecoder().decode(VMStatus.self, from: Data(result.output.utf8))
        }

        /// Starts the daemon inside the namespace and waits until it answers.
        static func startDaemon(root: String, log: String) async throws -> ProcessHandle {
            let handle = try ProcessLauncher.launch(LaunchSpec(
                executable: BridgeNetworkTests.ip,
                arguments: ["netns", "exec", BridgeNetworkTests.namespace, BinaryTCPTests.binary, "daemon",
                            "--state-dir", root + "/state", "--socket", root + "/corral.sock",
                            "--no-ksm", "--no-auto-balloon"],
                outputFile: log))
            let socket = root + "/corral.sock"
            let ready = await BinaryTCPTests.firstLine(in: log, within: .seconds(60)) {
                $0.contains("socket=\(socket)") && $0.contains("listening")
            }
            try #require(ready != nil, "the daemon did not listen: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            return handle
        }
    }

    /// A namespace with bridge `br0` (198.51.100.1/24, MTU 1400, so a tap that copies it is seen to), a daemon in
    /// it, `body`, then every process of the test killed and the namespace removed.
    static func withHost(_ body: (inout Host) async throws -> Void) async throws {
        guard FileManager.default.fileExists(atPath: BinaryTCPTests.kernel) else {
            Issue.record("test guest missing: run scripts/build-test-guest (scripts/test does)")
            return
        }
        var template = Array("/tmp/corral-br-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        _ = try await ProcessLauncher.run(ip, ["netns", "del", namespace])
        defer {
            for pid in BinaryTCPTests.processes(mentioning: root) { kill(pid, SIGKILL) }
            let down = Process()
            down.executableURL = URL(fileURLWithPath: ip)
            down.arguments = ["netns", "del", namespace]
            try? down.run()
            down.waitUntilExit()
            FileOps.removeTree(root)
        }
        for args in [["netns", "add", namespace],
                     ["-n", namespace, "link", "set", "lo", "up"],
                     ["-n", namespace, "link", "add", "br0", "mtu", "1400", "type", "bridge"],
                     ["-n", namespace, "addr", "add", "198.51.100.1/24", "dev", "br0"],
                     ["-n", namespace, "link", "set", "br0", "up"],
                     // A veth pair as the host interface macvtaps sit on.
                     ["-n", namespace, "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p"],
                     ["-n", namespace, "link", "set", "uplink0", "up"],
                     ["-n", namespace, "link", "set", "uplink0p", "up"]] {
            let result = try await ProcessLauncher.run(ip, args)
            try #require(result.status == .exited(0), "ip \(args.joined(separator: " ")): \(result.output)")
        }
        var host = Host(root: root, daemon: try await Host.startDaemon(root: root, log: root + "/daemon.log"))
        try await body(&host)
    }

    static func guestBooted(_ serial: String) async -> Bool {
        await BinaryTCPTests.firstLine(in: serial, within: .seconds(180)) { $0.hasPrefix("CORRAL-HB") } != nil
    }

    @Test func aBridgeNICGetsATapOnItsBridgeThatGoesWithItsQEMU() async throws {
        try await Self.withHost { host in
            let tap = TapPlan.tapName(vmName: "web", nicID: "lan")
            let up = try await host.corral(["up", try host.profile("web", nics: "[ { id: lan, mode: bridge, bridge: br0 } ]")])
            try #require(up.status == .exited(0), "\(up)")
            #expect(try await host.ports(of: "br0") == [tap], "corral's tap, attached to br0")
            #expect(try await host.mtu(tap) == 1400, "the tap takes the bridge's MTU")

            // The daemon dies: the tap stays (QEMU holds it), and a new daemon takes the VM over.
            host.daemon.signal(SIGKILL)
            _ = await host.daemon.waitForExit(timeout: .seconds(10))
            #expect(try await host.exists(tap), "the tap outlives the daemon")
            host.daemon = try await Host.startDaemon(root: host.root, log: host.root + "/daemon2.log")
            #expect(try await host.status("web").state == .running)
            #expect(try await host.ports(of: "br0") == [tap])

            // QEMU killed from outside: its tap is gone with it.
            let pid = try #require(try await host.status("web").pid)
            kill(pid, SIGKILL)
            for _ in 0..<100 where try await host.exists(tap) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await !host.exists(tap), "no tap left after QEMU died")
            let rm = try await host.corral(["rm", "--force", "web"])
            #expect(rm.status == .exited(0), "\(rm)")
        }
    }

    @Test func aMissingBridgeIsRefusedNamingItAndLeavesNothing() async throws {
        try await Self.withHost { host in
            let up = try await host.corral(["up", try host.profile("lost", nics: "[ { id: lan, mode: bridge, bridge: nope0 } ]")])
            #expect(up.status != .exited(0))
            #expect(up.output.contains("bridge 'nope0' does not exist on this host"), "\(up)")
            let list = try await host.corral(["ls", "--json"])
            #expect(list.output.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(list)")
            #expect(try await !host.exists(TapPlan.tapName(vmName: "lost", nicID: "lan")))
            #expect(BinaryTCPTests.processes(mentioning: host.state + "/vms/lost").isEmpty, "no QEMU left")
        }
    }

    @Test func aHotpluggedBridgeNICGetsItsTapAndLosesItOnUnplug() async throws {
        try await Self.withHost { host in
            let up = try await host.corral(["up", try host.profile("plug", nics: "[]", slots: 2)])
            try #require(up.status == .exited(0), "\(up)")
            #expect(await Self.guestBooted(host.serial("plug")))
            let add = try await host.corral(["nic", "add", "plug", "--id", "lan", "--mode", "bridge", "--bridge", "br0"])
            #expect(add.status == .exited(0), "\(add)")
            let tap = TapPlan.tapName(vmName: "plug", nicID: "lan")
            #expect(try await host.ports(of: "br0") == [tap])
            let seen = await BinaryTCPTests.firstLine(in: host.serial("plug"), within: .seconds(60)) {
                $0.hasPrefix("CORRAL-HB") && $0.contains("nics=eth0")
            }
            #expect(seen != nil, "the guest sees the NIC")

            // A second one on a bridge that is not there: refused, nothing plugged, no tap.
            let bad = try await host.corral(["nic", "add", "plug", "--id", "bad", "--mode", "bridge", "--bridge", "nope0"])
            #expect(bad.status != .exited(0) && bad.output.contains("bridge 'nope0' does not exist"), "\(bad)")
            #expect(try await !host.exists(TapPlan.tapName(vmName: "plug", nicID: "bad")))
            #expect(try await host.status("plug").nics.map(\.id) == ["lan"])

            let rm = try await host.corral(["nic", "rm", "plug", "lan"])
            #expect(rm.status == .exited(0), "\(rm)")
            #expect(try await !host.exists(tap), "unplugged: the tap is gone")
            _ = try await host.corral(["rm", "--force", "plug"])
        }
    }

    @Test func aMacvtapNICSitsOnItsParentWithTheGuestsMACAndGoesWithItsQEMU() async throws {
        try await Self.withHost { host in
            let name = TapPlan.tapName(vmName: "direct", nicID: "wan")
            let up = try await host.corral(["up", try host.profile(
                "direct", nics: "[ { id: wan, mode: macvtap, parent: uplink0, macvtapMode: vepa } ]", slots: 1)])
            try #require(up.status == .exited(0), "\(up)")
            let details = try await host.ipn(["-d", "link", "show", name])
            #expect(details.contains("\(name)@uplink0"), "on its parent: \(details)")
            #expect(details.contains("macvtap mode vepa"), "\(details)")
            let mac = try await host.status("direct").nics.first?.mac
            #expect(mac != nil && details.contains("link/ether \(mac!)"), "the guest's MAC: \(details)")
            #expect(await Self.guestBooted(host.serial("direct")))
            let seen = await BinaryTCPTests.firstLine(in: host.serial("direct"), within: .seconds(60)) {
                $0.hasPrefix("CORRAL-HB") && $0.contains("nics=eth0")
            }
            #expect(seen != nil, "the guest sees the NIC")

            // A hotplugged one, then unplugged: made and deleted with it.
            let add = try await host.corral(["nic", "add", "direct", "--id", "wan2", "--mode", "macvtap",
                                             "--parent", "uplink0"])
            #expect(add.status == .exited(0), "\(add)")
            let plugged = TapPlan.tapName(vmName: "direct", nicID: "wan2")
            #expect(try await host.ipn(["-d", "link", "show", plugged]).contains("macvtap mode bridge"))
            let rm = try await host.corral(["nic", "rm", "direct", "wan2"])
            #expect(rm.status == .exited(0), "\(rm)")
            #expect(try await !host.exists(plugged), "unplugged: the macvtap is deleted")

            // Unlike a tap a macvtap outlives its descriptors: the daemon deletes it when QEMU is gone.
            let kill = try await host.corral(["kill", "direct"])
            #expect(kill.status == .exited(0), "\(kill)")
            #expect(try await !host.exists(name), "no macvtap left after kill")

            let lost = try await host.corral(["up", try host.profile("lost", nics: "[ { id: wan, mode: macvtap, parent: nope0 } ]")])
            #expect(lost.status != .exited(0) && lost.output.contains("parent 'nope0' does not exist"), "\(lost)")
            #expect(try await !host.exists(TapPlan.tapName(vmName: "lost", nicID: "wan")))
            _ = try await host.corral(["rm", "direct"])
        }
    }

    /// The last heartbeat line of `vm` that satisfies `predicate`, waiting for it.
    static func heartbeat(_ host: Host, _ vm: String, within limit: Duration = .seconds(120),
                          where predicate: @escaping @Sendable (String) -> Bool) async -> String? {
        await BinaryTCPTests.firstLine(in: host.serial(vm), within: limit) { $0.hasPrefix("CORRAL-HB") && predicate($0) }
    }

    @Test func twoVMsOnOneBridgeReachEachOtherAndTheHost() async throws {
        try await Self.withHost { host in
            for (name, address, peer) in [("left", "198.51.100.11", "198.51.100.12"),
                                          ("right", "198.51.100.12", "198.51.100.11")] {
                let up = try await host.corral(["up", try host.profile(
                    name, nics: "[ { id: lan, mode: bridge, bridge: br0 } ]",
                    cmdline: "corral.ip=\(address)/24 corral.ping=\(peer)")])
                try #require(up.status == .exited(0), "\(up)")
            }
            // Each guest pings the other across the bridge, and the host (on br0) reaches both.
            for name in ["left", "right"] {
                let line = await Self.heartbeat(host, name) { $0.contains("ping=ok") }
                #expect(line != nil, "\(name) never reached its peer: \((try? String(contentsOfFile: host.serial(name), encoding: .utf8).suffix(600)) ?? "")")
            }
            for address in ["198.51.100.11", "198.51.100.12"] {
                let ping = try await ProcessLauncher.run(Self.ip, ["netns", "exec", Self.namespace, "ping", "-c", "2",
                                                                   "-W", "2", address])
                #expect(ping.status == .exited(0), "the host reaches \(address): \(ping.output)")
            }
            for name in ["left", "right"] { _ = try await host.corral(["rm", "--force", name]) }
            #expect(try await host.ports(of: "br0").isEmpty, "no tap left")
        }
    }

    @Test func aVMOnAManagedNATNetworkGetsADHCPAddressThatStatusShowsAndReachesItsGateway() async throws {
        try await Self.withHost { host in
            let create = try await host.corral(["network", "create", "lab", "--subnet", "203.0.113.0/24", "--nat",
                                                "--dhcp-range", "203.0.113.50-203.0.113.60"])
            try #require(create.status == .exited(0), "\(create)")
            // The same subnet again is refused, naming the network it overlaps.
            let clash = try await host.corral(["network", "create", "lab2", "--subnet", "203.0.113.128/25"])
            #expect(clash.status != .exited(0) && clash.output.contains("overlaps network lab (203.0.113.0/24)"), "\(clash)")

            let up = try await host.corral(["up", try host.profile(
                "natty", nics: "[ { id: net0, network: lab } ]", cmdline: "corral.ping=203.0.113.1", slots: 1)])
            try #require(up.status == .exited(0), "\(up)")
            let leased = await Self.heartbeat(host, "natty") { $0.contains("ips=eth0:203.0.113.") && $0.contains("ping=ok") }
            try #require(leased != nil, "no lease or no gateway: \((try? String(contentsOfFile: host.serial("natty"), encoding: .utf8).suffix(800)) ?? "")")
            let guestAddress = try #require(leased?.split(separator: " ").first { $0.hasPrefix("ips=") }?
                .dropFirst("ips=eth0:".count).split(separator: ",").first.map(String.init))
            let inRange = (50...60).contains(Int(guestAddress.split(separator: ".").last ?? "") ?? 0)
            #expect(inRange, "\(guestAddress) is from the DHCP range")

            // status and ls show the address dnsmasq gave.
            var shown: [String] = []
            for _ in 0..<100 {
                shown = try await host.status("natty").nics.first?.addresses ?? []
                if !shown.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(shown == [guestAddress], "status shows the lease")
            let ls = try await host.corral(["ls"])
            #expect(ls.output.contains(guestAddress), "\(ls)")
            let show = try await host.corral(["network", "show", "lab", "--json"])
            let info = try JSONDecoder().decode(NetworkInfo.self, from: Data(show.output.utf8))
            #expect(info.state == "up" && info.vms == ["natty"] && info.leases.values.contains(guestAddress), "\(show)")
            #expect(try await host.ipn(["-o", "link", "show", "master", "cn-lab"]).contains(TapPlan.tapName(vmName: "natty", nicID: "net0")))
            let ruleset = try await ProcessLauncher.run(Self.ip, ["netns", "exec", Self.namespace, "nft", "list", "table", "ip", "corral-lab"])
            #expect(ruleset.output.contains("masquerade"), "\(ruleset.output)")

            // Removing the network is refused while the VM uses it; afterwards nothing of it is left.
            let busy = try await host.corral(["network", "rm", "lab"])
            #expect(busy.status != .exited(0) && busy.output.contains("network lab is used by natty"), "\(busy)")
            _ = try await host.corral(["rm", "--force", "natty"])
            let rm = try await host.corral(["network", "rm", "lab"])
            #expect(rm.status == .exited(0), "\(rm)")
            #expect(try await !host.exists("cn-lab"), "the bridge is gone")
            let gone = try await ProcessLauncher.run(Self.ip, ["netns", "exec", Self.namespace, "nft", "list", "table", "ip", "corral-lab"])
            #expect(gone.status != .exited(0), "the NAT table is gone")
            #expect(BinaryTCPTests.processes(mentioning: host.state + "/networks/lab").isEmpty, "dnsmasq is gone")
        }
    }

    @Test func aHotpluggedNICOnABridgeGetsAnAddressFromTheNetwork() async throws {
        try await Self.withHost { host in
            // Not 198.51.100.0/24: br0 has that route, and an overlapping subnet is refused.
            let clash = try await host.corral(["network", "create", "plug", "--subnet", "198.51.100.0/24"])
            #expect(clash.output.contains("overlaps a route of this host (198.51.100.0/24)"), "\(clash)")
            let create = try await host.corral(["network", "create", "plug", "--subnet", "203.0.113.0/24"])
            try #require(create.status == .exited(0), "\(create)")
            let up = try await host.corral(["up", try host.profile("late", nics: "[]", slots: 2)])
            try #require(up.status == .exited(0), "\(up)")
            #expect(await Self.guestBooted(host.serial("late")))
            let add = try await host.corral(["nic", "add", "late", "--id", "net1", "--mode", "network", "--network", "plug"])
            #expect(add.status == .exited(0), "\(add)")
            let leased = await Self.heartbeat(host, "late") { $0.contains("ips=eth0:203.0.113.") }
            #expect(leased != nil, "the hotplugged NIC got a lease")
            _ = try await host.corral(["rm", "--force", "late"])
            _ = try await host.corral(["network", "rm", "plug"])
        }
    }

    @Test func aDaemonRestartKeepsDnsmasqAndTheGuestReachable() async throws {
        try await Self.withHost { host in
            let create = try await host.corral(["network", "create", "keep", "--subnet", "203.0.113.0/24"])
            try #require(create.status == .exited(0), "\(create)")
            let before = try JSONDecoder().decode(NetworkInfo.self, from: Data(
                try await host.corral(["network", "show", "keep", "--json"]).output.utf8))
            let up = try await host.corral(["up", try host.profile("stay", nics: "[ { id: net0, network: keep } ]")])
            try #require(up.status == .exited(0), "\(up)")
            let leased = await Self.heartbeat(host, "stay") { $0.contains("ips=eth0:203.0.113.") }
            let address = try #require(leased?.split(separator: " ").first { $0.hasPrefix("ips=") }?
                .dropFirst("ips=eth0:".count).split(separator: ",").first.map(String.init))

            host.daemon.signal(SIGKILL)
            _ = await host.daemon.waitForExit(timeout: .seconds(10))
            host.daemon = try await Host.startDaemon(root: host.root, log: host.root + "/daemon2.log")
            let after = try JSONDecoder().decode(NetworkInfo.self, from: Data(
                try await host.corral(["network", "show", "keep", "--json"]).output.utf8))
            #expect(after.dnsmasqPid == before.dnsmasqPid && after.dnsmasqPid != nil, "the same dnsmasq, found again")
            #expect(after.state == "up")
            let ping = try await ProcessLauncher.run(Self.ip, ["netns", "exec", Self.namespace, "ping", "-c", "2", "-W", "2", address])
            #expect(ping.status == .exited(0), "the guest is still reachable: \(ping.output)")
            _ = try await host.corral(["rm", "--force", "stay"])
            _ = try await host.corral(["network", "rm", "keep"])
        }
    }
}
