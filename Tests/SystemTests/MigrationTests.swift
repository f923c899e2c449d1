import Foundation
import CorralModel
import JSON
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport

/// Migration between two daemons' cores in one process (two state roots, loopback TCP for the
/// stream): the choreography, rollback and what the guest sees. Two-host tests through real
/// daemons in network namespaces live in APITests.
@Suite(.serialized, .bootsGuests) struct MigrationTests {
    struct Pair {
        var source: VMManager
        var destination: VMManager
        var root: String
    }

    func pair(_ tag: String, identity: QEMUIdentity = .perVM()) async throws -> Pair {
        let root = Guest.tempFolder(tag)
        let source = try await VMManager.open(stateRoot: root + "/a", options: DaemonOptions(qemuIdentity: identity))
        let destination = try await VMManager.open(stateRoot: root + "/b", options: DaemonOptions(qemuIdentity: identity))
        await source.setPeerConnector { _, _ in LocalMigrationPeer(destination) }
        return Pair(source: source, destination: destination, root: root)
    }

    @Test func precopyMovesTheRunningGuestWithoutASecondBoot() async throws {
        try Guest.requireBuilt()
        let p = try await pair("mig1")
        defer { Guest.cleanUp(p.root) }
        let profile = try Guest.writeProfile(in: p.root, name: "mover", extra: "disks: [ { id: data, file: \(p.root)/shared.qcow2, size: 16M } ]\nhotplug: { slots: 2 }\n")
        let up = try await p.source.up(UpRequest(profile: profile))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 3 }
        // Hotplugged devices travel too.
        _ = try await p.source.addDisk("mover", DiskAddRequest(id: "extra", file: p.root + "/extra.qcow2", size: "8M"))
        _ = try await p.source.setCPUs("mover", count: 2)
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks == ["vda", "vdb"] && $0.cpus == 2 }
        let beforeN = HeartbeatWait.last(in: up.serialLog)?.n ?? 0

        let result = try await p.source.migrateAndWait("mover", MigrateRequest(to: "127.0.0.1:7000"))
        #expect(result.destination == "127.0.0.1:7000")
        #expect((result.totalMilliseconds ?? 0) > 0)
        #expect(await p.source.list().isEmpty, "the source no longer lists the VM")
        #expect(!ProcessHandle.isAlive(up.pid!), "the source QEMU is gone")
        let moved = try await p.destination.status("mover")
        #expect(moved.state == .running)
        #expect(moved.disks.map(\.id) == ["data", "extra"] && moved.cpus.online == 2)

        let after = try await HeartbeatWait.first(in: moved.serialLog) { $0.n > beforeN }
        #expect(after.disks == ["vda", "vdb"] && after.cpus == 2, "the guest still sees the hotplugged disk and vCPU")
        let destinationLog = try String(contentsOfFile: moved.serialLog, encoding: .utf8)
        #expect(!destinationLog.contains("corral-init: ready"), "no second boot on the destination")
        let firstThere = destinationLog.split(whereSeparator: \.isNewline).lazy
            .compactMap { Heartbeat(line: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }.first
        #expect((firstThere?.n ?? 0) > beforeN, "the heartbeat counter continues")
        _ = try await p.destination.kill("mover")
        await p.source.shutdown()
        await p.destination.shutdown()
    }

    @Test func cancelKeepsTheSourceAndLeavesTheDestinationClean() async throws {
        try Guest.requireBuilt()
        let p = try await pair("mig2")
        defer { Guest.cleanUp(p.root) }
        let up = try await p.source.up(UpRequest(profile: try Guest.writeProfile(in: p.root, name: "stay")))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        let slow = MigrateRequest(to: "127.0.0.1:7000", options: MigrationOptions(bandwidthBytesPerSecond: 1 << 20))
        let events = await p.source.events(vm: "stay", history: 0)
        let migration = Task { () -> String in
            let failure = await controlError { () async throws(ControlError) in _ = try await p.source.migrateAndWait("stay", slow) }
            return failure?.message ?? "completed"
        }
        // QEMU streams the guest's RAM (at 1 MiB/s, for a good while yet).
        let streaming = await EventWait.first(in: events) {
            $0.name == "migration-progress" && $0.data?["status"]?.stringValue == "active"
        }
        #expect(streaming != nil, "a progress report says QEMU is migrating")
        let during = try await p.source.status("stay")
        #expect(during.state == .migrating)
        #expect(during.migration?.to == "127.0.0.1:7000", "status shows the migration")
        #expect(during.migration?.progress?.status != nil)
        try await p.source.cancelMigration("stay")
        let outcome = await migration.value
        #expect(outcome.contains("cancelled"), "\(outcome)")
        let status = try await p.source.status("stay")
        #expect(status.state == .running && status.pid == up.pid)
        let n = HeartbeatWait.last(in: up.serialLog)?.n ?? 0
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n > n + 1 }
        #expect(await p.destination.list().isEmpty, "the destination leaves nothing behind")
        #expect(try FileManager.default.contentsOfDirectory(atPath: p.root + "/b/vms").isEmpty)
        _ = try await p.source.kill("stay")
        await p.source.shutdown()
        await p.destination.shutdown()
    }

    @Test func withStorageCopiesTheDiskContents() async throws {
        try Guest.requireBuilt()
        let p = try await pair("mig3")
        defer { Guest.cleanUp(p.root) }
        try FileManager.default.createDirectory(atPath: p.root + "/only-a", withIntermediateDirectories: true)
        // Data on the disk before the migration: a pattern written with qemu-io.
        let image = p.root + "/only-a/data.qcow2"
        _ = try await ProcessLauncher.run("qemu-img", ["create", "-q", "-f", "qcow2", image, "16M"])
        let write = try await ProcessLauncher.run("qemu-io", ["-c", "write -P 0xa5 1M 256k", image])
        #expect(write.output.contains("wrote 262144/262144 bytes"), "\(write.output)")
        let profile = try Guest.writeProfile(in: p.root, name: "copier", extra: "disks: [ { id: data, file: \(image) } ]\n")
        let up = try await p.source.up(UpRequest(profile: profile))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        _ = try await p.source.migrateAndWait("copier", MigrateRequest(to: "127.0.0.1:7000", options: MigrationOptions(withStorage: true)))
        let moved = try await p.destination.status("copier")
        #expect(moved.state == .running)
        let file = try #require(moved.disks.first?.file)
        #expect(file.hasPrefix(p.root + "/b/"), "the destination has its own copy: \(file)")
        _ = try await HeartbeatWait.first(in: moved.serialLog) { $0.disks == ["vda"] }
        _ = try await p.destination.kill("copier")
        let read = try await ProcessLauncher.run("qemu-io", ["-r", "-c", "read -P 0xa5 1M 256k", file])
        #expect(read.output.contains("read 262144/262144 bytes"), "the destination's copy holds the data: \(read.output)")
        #expect(!read.output.contains("Pattern verification failed"))
        await p.source.shutdown()
        await p.destination.shutdown()
    }

    /// Postcopy on a guest precopy cannot move: it rewrites 64 MiB over and over (`corral.dirty`), the stream is
    /// held to 16 MiB/s, so every precopy pass leaves tens of MiB dirty, far more than fits in the downtime limit.
    /// The source's QMP transcript shows that corral started postcopy after the first pass and QEMU switched
    /// over; the guest then goes on counting on the destination without a second boot.
    @Test func postcopyToAnUnprivilegedDestinationIsRefusedClearlyWhenTheKernelForbidsIt() async throws {
        try Guest.requireBuilt()
        let p = try await pair("mig4u")
        defer { Guest.cleanUp(p.root) }
        let up = try await p.source.up(UpRequest(profile: try Guest.writeProfile(in: p.root, name: "strict")))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 1 }
        let allowed = (try? String(contentsOfFile: PostcopySupport.sysctlPath, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) != "0"
        let failure = await controlError { () async throws(ControlError) in
            _ = try await p.source.migrateAndWait("strict", MigrateRequest(
                to: "127.0.0.1:7000", options: MigrationOptions(postcopy: true)))
        }
        if allowed {
            #expect(failure == nil, "this kernel lets unprivileged QEMU use userfaultfd: \(String(describing: failure))")
        } else {
            #expect(failure?.message.contains("vm.unprivileged_userfaultfd") == true, "\(String(describing: failure))")
            let sourceState = try await p.source.status("strict").state
            let left = await p.destination.list()
            #expect(sourceState == .running && left.isEmpty, "the source keeps its guest; nothing on the destination")
        }
        _ = try? await p.source.kill("strict")
        _ = try? await p.destination.kill("strict")
        await p.source.shutdown()
        await p.destination.shutdown()
    }

    @Test func postcopySwitchesOverAGuestPrecopyCannotMove() async throws {
        try Guest.requireBuilt()
        // QEMU as root: postcopy's userfaultfd (see the test above for the unprivileged case).
        let p = try await pair("mig4", identity: .root)
        defer { Guest.cleanUp(p.root) }
        let profile = try Guest.writeProfile(in: p.root, name: "busy", cmdline: Guest.dirtyingCmdline)
        let up = try await p.source.up(UpRequest(profile: profile))
        try await Guest.requireDirtying(up.serialLog)
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        let transcript = LineRecorder(path: VMPaths(stateRoot: p.root + "/a", name: "busy").transcript)
        let serial = LineRecorder(path: up.serialLog)
        let bandwidth: Int64 = 16 << 20

        _ = try await p.source.migrateAndWait("busy", MigrateRequest(
            to: "127.0.0.1:7000", options: MigrationOptions(bandwidthBytesPerSecond: bandwidth, postcopy: true)))
        let lines = await transcript.finish().compactMap(TranscriptLine.init)
        let lastOnSource = try #require(await serial.finish().compactMap { Heartbeat(line: $0) }.last).n

        #expect(lines.sent("migrate-set-capabilities").last?.capability("postcopy-ram") == true)
        #expect(lines.sent("migrate-set-parameters").last?["max-bandwidth"]?.intValue == bandwidth)
        #expect(lines.sent("migrate-start-postcopy").count == 1, "corral started postcopy once")
        // corral waits for the end of the first pass: a reply with dirty-sync-count >= 2 came before the command.
        let start = try #require(lines.firstIndex { $0.command == "migrate-start-postcopy" })
        #expect(Array(lines[..<start]).replies.contains { ($0["ram"]?["dirty-sync-count"]?.intValue ?? 0) >= 2 })
        let statuses = lines.migrationStatuses
        let switched = try #require(statuses.firstIndex(of: "postcopy-active"), "QEMU never switched: \(statuses)")
        #expect(!statuses[..<switched].contains("completed"), "precopy did not finish first: \(statuses)")
        #expect(statuses.last == "completed", "\(statuses)")

        #expect(await p.source.list().isEmpty, "the source no longer lists the VM")
        let moved = try await p.destination.status("busy")
        #expect(moved.state == .running)
        let firstThere = try await HeartbeatWait.first(in: moved.serialLog)
        #expect(firstThere.n > lastOnSource, "the counter continues: \(firstThere.n) after \(lastOnSource)")
        _ = try await HeartbeatWait.first(in: moved.serialLog) { $0.n > firstThere.n + 1 }
        let destinationLog = try String(contentsOfFile: moved.serialLog, encoding: .utf8)
        #expect(!destinationLog.contains("corral-init: ready"), "no second boot on the destination")
        _ = try await p.destination.kill("busy")
        await p.source.shutdown()
        await p.destination.shutdown()
    }

    /// `--multifd 2`: the capability and the channel count reach both QEMUs, and the RAM goes through the
    /// multifd channels (`ram.multifd-bytes` in the source's `query-migrate` replies), not the main stream.
    @Test func multifdCarriesTheStream() async throws {
        try Guest.requireBuilt()
        let p = try await pair("mig6")
        defer { Guest.cleanUp(p.root) }
        let up = try await p.source.up(UpRequest(profile: try Guest.writeProfile(in: p.root, name: "fast")))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        let transcript = LineRecorder(path: VMPaths(stateRoot: p.root + "/a", name: "fast").transcript)
        let serial = LineRecorder(path: up.serialLog)

        _ = try await p.source.migrateAndWait("fast", MigrateRequest(to: "127.0.0.1:7000", options: MigrationOptions(multifdChannels: 2)))
        let lines = await transcript.finish().compactMap(TranscriptLine.init)
        let lastOnSource = try #require(await serial.finish().compactMap { Heartbeat(line: $0) }.last).n
        let destinationLines = LineRecorder.transcript(at: VMPaths(stateRoot: p.root + "/b", name: "fast").transcript)

        #expect(lines.sent("migrate-set-capabilities").last?.capability("multifd") == true)
        #expect(lines.sent("migrate-set-parameters").last?["multifd-channels"]?.intValue == 2)
        #expect(destinationLines.sent("migrate-set-capabilities").last?.capability("multifd") == true)
        #expect(destinationLines.sent("migrate-set-parameters").last?["multifd-channels"]?.intValue == 2)
        let multifdBytes = lines.replies.compactMap { $0["ram"]?["multifd-bytes"]?.intValue }.max() ?? 0
        #expect(multifdBytes > 1 << 20, "RAM went through the multifd channels: \(multifdBytes) bytes")
        #expect(lines.migrationStatuses.last == "completed")
        #expect(!lines.contains { $0.command == "migrate-start-postcopy" })

        let moved = try await p.destination.status("fast")
        #expect(moved.state == .running)
        let firstThere = try await HeartbeatWait.first(in: moved.serialLog)
        #expect(firstThere.n > lastOnSource, "the counter continues: \(firstThere.n) after \(lastOnSource)")
        _ = try await p.destination.kill("fast")
        await p.source.shutdown()
        await p.destination.shutdown()
    }

    @Test func refusedDestinationKeepsTheSource() async throws {
        try Guest.requireBuilt()
        let p = try await pair("mig5")
        defer { Guest.cleanUp(p.root) }
        // The destination already has a VM of that name.
        let profile = try Guest.writeProfile(in: p.root, name: "twin")
        let up = try await p.source.up(UpRequest(profile: profile))
        _ = try await p.destination.up(UpRequest(profile: profile))
        do {
            _ = try await p.source.migrateAndWait("twin", MigrateRequest(to: "127.0.0.1:7000"))
            Issue.record("migrated onto a name in use")
        } catch {
            #expect(error.message.hasPrefix("a VM named twin already exists here"), "\(error.message)")
        }
        #expect(try await p.source.status("twin").state == .running)
        #expect(try await p.source.status("twin").pid == up.pid)
        let bad = MigrationOptions(postcopy: true, multifdChannels: 2)
        do {
            _ = try await p.source.migrateAndWait("twin", MigrateRequest(to: "127.0.0.1:7000", options: bad))
            Issue.record("an impossible combination was accepted")
        } catch {
            #expect(error.message.contains("--postcopy"), "\(error.message)")
        }
        _ = try await p.source.kill("twin")
        _ = try await p.destination.kill("twin")
        await p.source.shutdown()
        await p.destination.shutdown()
    }
}

/// `--tls`: x509 credentials from each daemon's TLS folder (throw-away ones from scripts/make-test-certs).
@Suite(.serialized, .bootsGuests) struct MigrationTLSTests {
    func certificates(_ root: String) async throws -> String {
        let dir = root + "/certs"
        let made = try await ProcessLauncher.run(Guest.repoRoot + "/scripts/make-test-certs", [dir, "127.0.0.1"])
        #expect(made.status == .exited(0), "\(made.output)")
        return dir
    }

    func pair(_ root: String, sourceTLS: String, destinationTLS: String) async throws -> (VMManager, VMManager) {
        let source = try await VMManager.open(stateRoot: root + "/a", options: DaemonOptions(tlsDirectory: sourceTLS))
        let destination = try await VMManager.open(stateRoot: root + "/b", options: DaemonOptions(tlsDirectory: destinationTLS))
        await source.setPeerConnector { _, _ in LocalMigrationPeer(destination) }
        return (source, destination)
    }

    @Test func tlsCompletesWithTheRightCAAndIsRefusedWithAWrongOne() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("tls")
        defer { Guest.cleanUp(root) }
        let certs = try await certificates(root)

        // A destination whose certificates come from another CA: the handshake fails, the source keeps the guest.
        let (source, wrong) = try await pair(root, sourceTLS: certs, destinationTLS: certs + "/wrong-ca")
        let up = try await source.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "secret")))
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        let refused = await controlError { () async throws(ControlError) in
            _ = try await source.migrateAndWait("secret", MigrateRequest(to: "127.0.0.1:7000", options: MigrationOptions(tls: true, timeoutSeconds: 60)))
        }
        #expect(refused != nil, "a destination with the wrong CA must not get the guest")
        let kept = try await source.status("secret")
        #expect(kept.state == .running && kept.pid == up.pid)
        #expect(await wrong.list().isEmpty, "the refusing destination leaves nothing behind")
        await wrong.shutdown()

        // The right CA on both sides: the stream is encrypted and the migration completes.
        let right = try await VMManager.open(stateRoot: root + "/c", options: DaemonOptions(tlsDirectory: certs))
        await source.setPeerConnector { _, _ in LocalMigrationPeer(right) }
        let before = try await HeartbeatWait.first(in: up.serialLog) { _ in true }
        _ = try await source.migrateAndWait("secret", MigrateRequest(to: "127.0.0.1:7000", options: MigrationOptions(tls: true)))
        let moved = try await right.status("secret")
        #expect(moved.state == .running)
        _ = try await HeartbeatWait.first(in: moved.serialLog) { $0.n > before.n }
        _ = try await right.kill("secret")
        await source.shutdown()
        await right.shutdown()
    }
}
