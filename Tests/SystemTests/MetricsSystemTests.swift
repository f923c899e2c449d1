import Foundation
import CorralModel
import QEMUCommand
import Supervisor
import Testing
import TestSupport
import UnixSockets

/// `GET /metrics` of a live `corral daemon` with the test guest running under TCG: the figures are the guest's own
/// (its vCPUs, what it read from its disk, the DHCP requests it sent on a tap), promtool accepts the text, and a
/// removed VM leaves no series behind.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10))) struct MetricsSystemTests {
    static let promtool = ["/opt/corral-prometheus/usr/bin/promtool", "/usr/bin/promtool"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Three DHCPDISCOVER frames (a BOOTP message is at least 300 bytes, in UDP, IPv4 and Ethernet headers).
    static let threeDHCPDiscovers = Double(3 * 342)

    @Test func aLiveDaemonReportsTheGuestsRealFiguresInATextPromtoolAccepts() async throws {
        try Guest.requireBuilt()
        let promtool = try #require(Self.promtool, "promtool is missing: run scripts/install-deps")
        let root = Guest.tempFolder("met")
        defer { DaemonCLITests.cleanUp(root) }
        let daemon = try await DaemonCLITests.Daemon.start(root: root)
        // Two vCPUs of three, a balloon, a data disk, a user-mode NIC and a tap corral makes (attached to nothing:
        // the guest's DHCP requests on it are all the traffic it has).
        let profile = root + "/metered.yaml"
        try """
            name: metered
            accel: tcg
            cpu: { count: 2, max: 3 }
            memory: { size: 256M, balloon: { min: 128M } }
            boot:
              kernel: \(Guest.kernel)
              initrd: \(Guest.initrd)
              cmdline: "console=ttyS0 panic=-1 quiet no_timer_check"
            disks: [ { id: data, file: \(root)/data.qcow2, size: 16M } ]
            nics: [ { id: net0 }, { id: net1, mode: tap } ]

            """.write(toFile: profile, atomically: true, encoding: .utf8)
        let up = try await daemon.run("up", profile)
        try #require(up.status == .exited(0), "\(up)")
        let status = try await daemon.json(VMStatus.self, "status", "metered")
        let beat = try await HeartbeatWait.first(in: status.serialLog) { $0.cpus == 2 }

        // The live figures come as the guest boots: its reads, its memory report (every 2 s), its DHCP requests.
        let tap = TapPlan.tapName(vmName: "metered", nicID: "net1")
        let vm = #"vm="metered""#
        let disk = #"{disk="data",vm="metered"}"#
        let nic = #"{device="\#(tap)",nic="net1",vm="metered"}"#
        var text = ""
        var metrics = Metrics("")
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        repeat {
            text = try Self.scrape(daemon.socket)
            metrics = Metrics(text)
            if metrics["corral_vm_disk_read_bytes_total" + disk] ?? 0 > 0,
               metrics["corral_vm_guest_memory_total_bytes{\(vm)}"] != nil,
               let sent = metrics["corral_vm_nic_transmit_bytes_total" + nic], sent >= Self.threeDHCPDiscovers,
               sent > 2 * (metrics["corral_vm_nic_receive_bytes_total" + nic] ?? 0) { break }
            try await Task.sleep(for: .seconds(1))
        } while ContinuousClock.now < deadline

        #expect(metrics[#"corral_vm_state{state="running",vm="metered"}"#] == 1, "\(text)")
        #expect(metrics[#"corral_vm_state{state="stopped",vm="metered"}"#] == 0)
        #expect(metrics["corral_vm_scrape_success{\(vm)}"] == 1)
        #expect(metrics["corral_vm_vcpus{\(vm)}"] == Double(beat.cpus))
        #expect(metrics["corral_vm_vcpus_max{\(vm)}"] == 3)
        #expect(metrics["corral_vm_memory_bytes{\(vm)}"] == Double(256 << 20))
        let balloon = try #require(metrics["corral_vm_balloon_actual_bytes{\(vm)}"])
        #expect(balloon >= Double(128 << 20) && balloon <= Double(256 << 20))
        let guestTotal = try #require(metrics["corral_vm_guest_memory_total_bytes{\(vm)}"], "\(text)")
        #expect(guestTotal > Double(64 << 20) && guestTotal <= Double(256 << 20))
        #expect(metrics["corral_vm_disk_read_bytes_total" + disk] ?? 0 > 0, "the guest read its disk: \(text)")
        #expect(metrics["corral_vm_disk_read_operations_total" + disk] ?? 0 > 0)
        // udhcpc retries on the tap as long as the NIC exists; the host sends a few neighbour discovery packets the
        // other way: swapped counters would show the host's few hundred bytes as the guest's.
        let sent = metrics["corral_vm_nic_transmit_bytes_total" + nic] ?? 0
        let received = try #require(metrics["corral_vm_nic_receive_bytes_total" + nic])
        #expect(sent >= Self.threeDHCPDiscovers && sent > 2 * received,
                "the guest sent its DHCP requests on the tap, and got far less: \(text)")
        #expect(metrics["corral_vm_nic_transmit_packets_total" + nic] ?? 0 >= 3)
        #expect(metrics.samples.keys.filter { $0.contains(#"nic="net0""#) } == [], "a user-mode NIC has no counters")
        #expect(metrics["corral_vm_uptime_seconds{\(vm)}"] ?? 0 > 0)
        #expect(metrics["corral_host_vcpus_committed"] == 2)
        #expect(metrics["corral_host_memory_committed_bytes"] == Double(256 << 20))
        #expect(metrics["corral_host_cpus"] ?? 0 >= 1)
        #expect(metrics["corral_scrape_errors_total"] == 0)
        #expect(metrics[#"corral_build_info{version="0.1.0"}"#] == 1)
        #expect(try await Self.promtoolProblems(text, promtool: promtool, folder: root) == nil)

        // Stopped: the state says so and the live figures are gone; removed: no series at all.
        let stop = try await daemon.run("stop", "metered", "--timeout", "60")
        #expect(stop.status == .exited(0), "\(stop)")
        let stopped = Metrics(try Self.scrape(daemon.socket))
        #expect(stopped[#"corral_vm_state{state="stopped",vm="metered"}"#] == 1)
        #expect(stopped.samples.keys.filter { $0.contains("_disk_") || $0.contains("_nic_") } == [])
        #expect(stopped["corral_host_vcpus_committed"] == 0)
        let rm = try await daemon.run("rm", "metered")
        #expect(rm.status == .exited(0), "\(rm)")
        let removed = try Self.scrape(daemon.socket)
        #expect(!removed.contains(vm), "\(removed)")
        #expect(try await Self.promtoolProblems(removed, promtool: promtool, folder: root) == nil)
        #expect(await daemon.terminate() == .exited(0))
    }

    /// The exposition text read back: each sample by its series as written.
    struct Metrics {
        var samples: [String: Double] = [:]

        init(_ text: String) {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                    continue
                }
                samples[String(line[..<space])] = value
            }
        }

        subscript(_ series: String) -> Double? { samples[series] }
    }

    /// `GET /metrics` on the daemon's Unix socket (HTTP/1.1, the connection closed after the reply).
    static func scrape(_ socket: String) throws -> String {
        let connection = try StreamSocket.connect(path: socket)
        defer { connection.close() }
        try connection.write(Array("GET /metrics HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n\r\n".utf8))
        var reply: [UInt8] = []
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while true {
            let bytes = try connection.read(deadline: deadline)
            if bytes.isEmpty { break }
            reply += bytes
        }
        let text = String(decoding: reply, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0]
        try #require(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        try #require(head.lowercased().contains("content-type: text/plain; version=0.0.4"), "\(head)")
        try #require(head.lowercased().contains("content-length:"), "a body of known length: \(head)")
        return parts.dropFirst().joined(separator: "\r\n\r\n")
    }

    /// `promtool check metrics` on `text`: nil when it finds nothing wrong, else what it said.
    static func promtoolProblems(_ text: String, promtool: String, folder: String) async throws -> String? {
        let file = folder + "/scrape-\(UUID().uuidString.prefix(8)).prom"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await ProcessLauncher.run("/bin/sh", ["-c", #"exec "$0" check metrics < "$1""#, promtool, file])
        return result.status == .exited(0) ? nil : "\(result.status): \(result.output)"
    }
}
