import CorralModel
import Foundation
import QEMUCommand
import Supervisor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Taps corral makes, with real QEMU and the test guest: one network namespace as the host, a bridge in it
/// (198.51.100.1/24), a real `corral daemon` inside, driven through the `corral` binary. Checks what the host's
/// kernel sees (which taps exist, on which bridge, with which MTU) and what the guests see.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TwoHostEnvironment.usable))
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
                  cmdline: "console=ttyS0 panic=-1 quiet\(cmdline.isEmpty ? "" : " " + cmdline)"
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
}
