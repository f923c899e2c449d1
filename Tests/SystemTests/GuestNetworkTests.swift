import Foundation
import CorralModel
import Profiles
import QEMUCommand
import CorralControl
import CorralCore
import Supervisor
import Testing
import TestSupport

/// The test guest's own networking (docs/test-guest.md), on real QEMU (TCG) with user-mode NICs: QEMU's slirp
/// serves DHCP (the guest gets 10.0.2.15 on every such NIC, each NIC being its own slirp network) and answers
/// pings to its gateway 10.0.2.2, and nothing else on 10.0.2.0/24 or outside it answers ARP for the guest.
@Suite(.serialized, .bootsGuests) struct GuestNetworkTests {
    /// Boots the test guest with VMLauncher (no daemon), `cmdline` added to the kernel command line, and waits for
    /// its first heartbeat.
    func boot(_ folder: String, nics: [String], cmdline: String) async throws -> (RunningVM, String) {
        var profile = Guest.profile(name: "net-test", nics: nics.map { NIC(id: $0) })
        profile.boot.cmdline = (profile.boot.cmdline ?? "") + " " + cmdline
        let paths = VMPaths(folder: folder + "/vm")
        let vm = try await VMLauncher().start(StartRequest(config: LiveConfig(profile: profile), accel: .tcg, paths: paths))
        try await Self.requireNetworkingGuest(paths.serialLog)
        return (vm, paths.serialLog)
    }

    /// A guest built before the network fields existed prints no `ping=`: the waits below would only time out.
    static func requireNetworkingGuest(_ serialLog: String) async throws {
        let first = try await HeartbeatWait.first(in: serialLog)
        if first.ping == nil {
            Issue.record("the test guest reports no ips=/ping= in its heartbeat: rebuild it with scripts/build-test-guest")
            throw Guest.GuestMissing()
        }
    }

    /// The serial log's lines, without their "\r\n" (one Character in Swift, so `split(separator: "\n")` would not
    /// split there).
    static func serial(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isNewline).map(String.init)
    }

    @Test func dhcpLeaseOnAUserNICAndPingToTheGateway() async throws {
        try Guest.requireBuilt()
        let folder = Guest.tempFolder("net1")
        defer { Guest.cleanUp(folder) }
        let (vm, log) = try await boot(folder, nics: ["net0"], cmdline: "corral.ping=10.0.2.2")

        let leased = try await HeartbeatWait.first(in: log, within: .seconds(90)) { $0.ips["eth0"] != nil }
        #expect(leased.ips == ["eth0": "10.0.2.15"], "slirp's DHCP server hands out 10.0.2.15")
        let lines = Self.serial(log)
        #expect(lines.contains("corral-dhcp: eth0: bound 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3"),
                "the address came from udhcpc's lease, applied by the guest's udhcpc script")
        #expect(!lines.contains { $0.contains("eth0: static address") })

        // slirp answers ICMP echo to its own address; the first ping may have run before the lease ("fail").
        let pinged = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.ping == "ok" }
        #expect(pinged.ips == ["eth0": "10.0.2.15"])

        _ = await VMShutdown.forceStop(vm)
        await vm.qmp.close()
    }

    @Test func staticAddressesFromTheKernelCommandLineAndAFailingPing() async throws {
        try Guest.requireBuilt()
        let folder = Guest.tempFolder("net2")
        defer { Guest.cleanUp(folder) }
        // eth0 by corral.ip=, eth2 by corral.ip.eth2=, eth1 (no static address) by DHCP. Nobody answers
        // 198.51.100.1: slirp answers ARP only for its own 10.0.2.0/24 addresses.
        let (vm, log) = try await boot(
            folder, nics: ["net0", "net1", "net2"],
            cmdline: "corral.ip=198.51.100.10/24 corral.ip.eth2=192.0.2.7/24 corral.ping=198.51.100.1")

        let all = try await HeartbeatWait.first(in: log, within: .seconds(90)) { $0.ips.count == 3 && $0.ping == "fail" }
        #expect(all.nics == ["eth0", "eth1", "eth2"])
        #expect(all.ips == ["eth0": "198.51.100.10", "eth1": "10.0.2.15", "eth2": "192.0.2.7"])
        let lines = Self.serial(log)
        #expect(lines.contains("corral-init: eth0: static address 198.51.100.10/24"))
        #expect(lines.contains("corral-init: eth2: static address 192.0.2.7/24"))
        #expect(lines.contains { $0.hasPrefix("corral-dhcp: eth1: bound 10.0.2.15/24") })
        #expect(!lines.contains { $0.hasPrefix("corral-dhcp: eth0") || $0.hasPrefix("corral-dhcp: eth2") },
                "no DHCP client runs on a NIC with a static address")

        // A few heartbeats later nothing has changed: the ping keeps failing, the addresses stay.
        let later = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.n >= all.n + 4 }
        #expect(later.ips == all.ips)
        #expect(later.ping == "fail")

        _ = await VMShutdown.forceStop(vm)
        await vm.qmp.close()
    }

    @Test func aHotpluggedNICGetsALeaseAndAnUnpluggedOneIsForgotten() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("net3")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        let profile = try Guest.writeProfile(in: root, name: "netplug", extra: "hotplug: { slots: 2 }\n")
        let up = try await manager.up(UpRequest(profile: profile))
        let log = up.serialLog
        try await Self.requireNetworkingGuest(log)

        let booted = try await HeartbeatWait.first(in: log, within: .seconds(90)) { $0.ips["eth0"] != nil }
        #expect(booted.ips == ["eth0": "10.0.2.15"])
        #expect(booted.ping == "-", "no corral.ping= on the command line")

        _ = try await manager.addNIC("netplug", NICAddRequest(id: "net1"))
        // HeartbeatWait reads the log from its start: each wait names a heartbeat after the last one seen.
        let plugged = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.n > booted.n && $0.ips["eth1"] != nil }
        #expect(plugged.nics == ["eth0", "eth1"])
        #expect(plugged.ips == ["eth0": "10.0.2.15", "eth1": "10.0.2.15"], "eth1 is on its own slirp network")

        _ = try await manager.removeNIC("netplug", id: "net1")
        let unplugged = try await HeartbeatWait.first(in: log) { $0.n > plugged.n && $0.nics == ["eth0"] }
        #expect(unplugged.ips == ["eth0": "10.0.2.15"])

        // The next NIC is eth1 again: the guest must configure it afresh, not think it done.
        _ = try await manager.addNIC("netplug", NICAddRequest(id: "net2"))
        let again = try await HeartbeatWait.first(in: log, within: .seconds(60)) { $0.n > unplugged.n && $0.ips["eth1"] != nil }
        #expect(again.ips == ["eth0": "10.0.2.15", "eth1": "10.0.2.15"])
        let lines = Self.serial(log)
        #expect(lines.filter { $0 == "corral-init: eth1: DHCP (udhcpc)" }.count == 2)
        #expect(lines.contains("corral-init: eth1: gone"))

        _ = try await manager.kill("netplug")
        await manager.shutdown()
    }
}

/// `Heartbeat` parsing, no QEMU.
@Suite struct HeartbeatParsingTests {
    /// A wait that ends without a heartbeat says how loaded the host was, and what the guest did write.
    @Test func aTimeoutNamesTheHostLoadAndTheLogTail() async throws {
        let folder = Guest.tempFolder("hbwait")
        defer { Guest.cleanUp(folder) }
        try "Linux version 6.1\r\nno heartbeat yet\r\n".write(toFile: folder + "/serial.log", atomically: true, encoding: .utf8)
        do {
            _ = try await HeartbeatWait.first(in: folder + "/serial.log", within: .milliseconds(300))
            Issue.record("a log without heartbeats satisfied the wait")
        } catch let error as HeartbeatWait.TimedOut {
            #expect(error.description.contains("host load ") && error.description.contains("cpu pressure "), "\(error)")
            #expect(error.description.hasSuffix("no heartbeat yet\r\n"), "\(error)")
        }
    }

    @Test func aLineWithNetworkFields() throws {
        let line = "CORRAL-HB n=7 cpus=2 disks=vda,vdb nics=eth0,eth1,eth2 memkb=221840 "
            + "ips=eth0:198.51.100.10,eth1:-,eth2:10.0.2.15 ping=ok\r"
        let beat = try #require(Heartbeat(line: line))
        #expect(beat.n == 7 && beat.cpus == 2 && beat.memKB == 221840)
        #expect(beat.disks == ["vda", "vdb"])
        #expect(beat.nics == ["eth0", "eth1", "eth2"])
        #expect(beat.ips == ["eth0": "198.51.100.10", "eth2": "10.0.2.15"], "eth1:- has no address")
        #expect(beat.ping == "ok", "the trailing \\r of the serial log is not part of the value")
    }

    @Test func emptyListsAndNoPing() throws {
        let beat = try #require(Heartbeat(line: "[   3.1] x CORRAL-HB n=1 cpus=1 disks= nics= memkb=5 ips= ping=-"))
        #expect(beat.disks.isEmpty && beat.nics.isEmpty && beat.ips.isEmpty)
        #expect(beat.ping == "-")
    }

    @Test func aLineFromAGuestWithoutNetworkFields() throws {
        let beat = try #require(Heartbeat(line: "CORRAL-HB n=3 cpus=1 disks=vda nics=eth0 memkb=221840\r"))
        #expect(beat.memKB == 221840, "memkb was the last field; its \\r is dropped")
        #expect(beat.ips.isEmpty)
        #expect(beat.ping == nil)
    }

    @Test func incompleteLinesAreNotHeartbeats() {
        #expect(Heartbeat(line: "CORRAL-HB n=3 cpus=1 disks=vda nics=eth0 mem") == nil)
        #expect(Heartbeat(line: "corral-init: ready") == nil)
    }
}
