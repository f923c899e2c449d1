import CorralModel
import Foundation
import Supervisor
import Testing

/// virtio-net failover with real QEMU and the test guest's net_failover driver, an emulated virtio-net device standing
/// in for the VF (this host has no SR-IOV): QEMU keeps the primary hidden until the guest negotiates STANDBY, then
/// plugs it and the guest bonds both under one master; a live migration unplugs the primary (the guest carries on
/// over the standby), and the destination plugs its own; the master keeps the guest's address throughout.
@Suite(.serialized) struct FailoverTests {
    @Test func thePrimaryIsPluggedAfterNegotiationUnpluggedForAMigrationAndPluggedAgainThere() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("fo")
        defer { Guest.cleanUp(root) }
        let source = try await VMManager.open(stateRoot: root + "/a", options: DaemonOptions())
        let destination = try await VMManager.open(stateRoot: root + "/b", options: DaemonOptions())
        await source.setPeerConnector { _, _ in LocalMigrationPeer(destination) }
        let path = root + "/fo.yaml"
        try """
            name: fo
            accel: tcg
            cpu: { count: 1 }
            memory: 256M
            boot:
              kernel: \(Guest.kernel)
              initrd: \(Guest.initrd)
              cmdline: "console=ttyS0 panic=-1 quiet no_timer_check"
            nics: [ { id: lan0, mode: user, mac: "52:54:00:aa:bb:01" } ]
            hostdevs:
              - { id: vf0, emulated: virtio-net, failover: lan0 }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let up = try await source.up(UpRequest(profile: path))
        // Bonded: one master with the standby and the primary, the master holding the address.
        let bonded = try await HeartbeatWait.first(in: up.serialLog) { $0.lower.values.contains { $0.count == 2 } }
        let (master, slaves) = try #require(bonded.lower.first)
        #expect(bonded.nics.count == 3, "master, standby and primary: \(bonded.nics)")
        let address = try #require(try await HeartbeatWait.first(in: up.serialLog) { $0.ips[master] != nil }.ips[master])
        #expect(slaves.allSatisfy { bonded.ips[$0] == nil }, "the slaves carry no address of their own: \(bonded.ips)")
        let standby = try #require(slaves.first { $0.hasSuffix("nsby") } ?? slaves.first)
        let primary = try #require(slaves.first { $0 != standby })

        let result = try await source.migrateAndWait("fo", MigrateRequest(to: "127.0.0.1:7000"))
        #expect(result.name == "fo")
        let moved = try await destination.status("fo")
        #expect(moved.state == .running)
        // During the move the source unplugged the primary: the last source heartbeats show the master alone with
        // its standby.
        let sourceLines = (try? String(contentsOfFile: up.serialLog, encoding: .utf8)) ?? ""
        let sourceBeats = sourceLines.split(whereSeparator: \.isNewline)
            .compactMap { Heartbeat(line: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(sourceBeats.contains { $0.lower[master] == [standby] }, "the primary was unplugged before the switch-over")
        // On the destination QEMU plugs its own primary once the guest negotiates again: bonded again, same address.
        let again = try await HeartbeatWait.first(in: moved.serialLog) { $0.lower[master]?.count == 2 }
        #expect(again.ips[master] == address, "the master keeps \(address)")
        #expect(Set(again.lower[master] ?? []).contains(standby))
        _ = primary
        _ = try await destination.kill("fo")
        await source.shutdown()
        await destination.shutdown()
    }
}
