import CorralModel
import Foundation
import Supervisor
import Testing
import TestSupport

/// virtio-net failover with real QEMU and the test guest's net_failover driver (the generic-kernel guest), an emulated
/// e1000e standing in for the VF (this host has no SR-IOV; Linux takes only a PCI device's netdev as a primary, so a
/// second virtio-net cannot stand in): QEMU keeps the primary hidden until the guest negotiates STANDBY, then
/// plugs it and the guest bonds both under one master; a live migration unplugs the primary (the guest carries on
/// over the standby), and the destination plugs its own; the master keeps the guest's address throughout.
@Suite(.serialized, .bootsGuests) struct FailoverTests {
    /// The VM's events so far (follow off).
    static func events(_ manager: VMManager, history: Int) async -> [CorralEvent] {
        var events: [CorralEvent] = []
        for await event in await manager.events(vm: "fo", history: history, follow: false) { events.append(event) }
        return events
    }

    /// What `task` collected, or what it had when `limit` passed.
    static func collect(_ task: Task<[CorralEvent], Never>, within limit: Duration) async -> [CorralEvent] {
        let timer = Task { try? await Task.sleep(for: limit); task.cancel() }
        defer { timer.cancel() }
        return await task.value
    }

    @Test func thePrimaryIsPluggedAfterNegotiationUnpluggedForAMigrationAndPluggedAgainThere() async throws {
        try Guest.requireGenericBuilt()
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
              kernel: \(Guest.genericFolder)/vmlinuz
              initrd: \(Guest.genericFolder)/initrd.img
              cmdline: "console=ttyS0 panic=-1 quiet no_timer_check"
            nics: [ { id: lan0, mode: user, mac: "52:54:00:aa:bb:01" } ]
            hostdevs:
              - { id: vf0, emulated: e1000e, failover: lan0 }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let up = try await source.up(UpRequest(profile: path))
        // Bonded: one master with the standby and the primary, the master holding the address.
        let bonded = try await HeartbeatWait.first(in: up.serialLog) { $0.lower.values.contains { $0.count == 2 } }
        let (master, slaves) = try #require(bonded.lower.first)
        #expect(bonded.nics.count == 3, "master, standby and primary: \(bonded.nics)")
        let address = try #require(try await HeartbeatWait.first(in: up.serialLog) { $0.ips[master] != nil }.ips[master])
        #expect(slaves.allSatisfy { bonded.ips[$0] == nil }, "the slaves carry no address of their own: \(bonded.ips)")

        // QEMU said the guest negotiated STANDBY, which is when it plugs the hidden primary.
        let boot = await Self.events(source, history: 200)
        #expect(boot.contains { $0.name == .qmp("FAILOVER_NEGOTIATED") && $0.data?["device-id"]?.stringValue == "nic-lan0" },
                "FAILOVER_NEGOTIATED for nic-lan0: \(boot.map(\.name))")

        let watched = await source.events(vm: "fo", history: 0, follow: true)
        let seen = Task { () -> [CorralEvent] in
            var events: [CorralEvent] = []
            for await event in watched {
                events.append(event)
                if event.name == .migrated || event.name == .migrationFailed { break }
            }
            return events
        }
        let result = try await source.migrateAndWait("fo", MigrateRequest(to: "127.0.0.1:7000"))
        #expect(result.name == "fo")
        let moved = try await destination.status("fo")
        #expect(moved.state == .running)
        // For the move QEMU asked the guest to let go of the primary (UNPLUG_PRIMARY), waited for it (wait-unplug),
        // and only then sent the state. (A failover primary is not deleted, only hidden: it comes back if the
        // migration fails, so there is no DEVICE_DELETED.)
        let during = await Self.collect(seen, within: .seconds(10))
        func index(_ name: String, _ status: String? = nil) -> Int? {
            during.firstIndex { $0.name == .qmp(name) && (status == nil || $0.data?["status"]?.stringValue == status) }
        }
        let unplug = during.firstIndex { $0.name == .qmp("UNPLUG_PRIMARY") && $0.data?["device-id"]?.stringValue == "hostdev-vf0" }
        let order = [unplug, index("MIGRATION", "wait-unplug"), index("MIGRATION", "active"), index("MIGRATION", "completed")]
        #expect(order.allSatisfy { $0 != nil } && order.compactMap { $0 } == order.compactMap { $0 }.sorted(),
                "UNPLUG_PRIMARY, wait-unplug, active, completed in that order: \(during.map(\.name))")
        // On the destination QEMU plugs its own primary once the guest negotiates again: bonded again, same address.
        let again = try await HeartbeatWait.first(in: moved.serialLog) { $0.lower[master]?.count == 2 }
        #expect(again.ips[master] == address, "the master keeps \(address)")
        #expect(Set(again.lower[master] ?? []) == Set(slaves), "the same pair of slaves: \(again.lower)")
        _ = try await destination.kill("fo")
        await source.shutdown()
        await destination.shutdown()
    }
}
