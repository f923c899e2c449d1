import CorralModel
import Foundation
import QEMUCommand
import Supervisor
import Testing
import TestSupport

/// cloud-init's NoCloud seed as the guest reads it: the test guest's init mounts the `cidata` volume corral attached
/// and reports the instance-id and user-data's SHA-1 in its heartbeat. The instance-id stays the same across starts
/// with the same content and changes when user-data changes.
@Suite(.serialized, .bootsGuests) struct CloudInitTests {
    static func sha1Prefix(_ text: String) -> String { String(ContentDigest.sha1Hex(Array(text.utf8)).prefix(12)) }

    @Test(.timeLimit(.minutes(6))) func theGuestReadsTheSeedAndANewUserDataGivesANewInstanceID() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("ci")
        defer { Guest.cleanUp(root) }
        let userData = root + "/user-data.yaml"
        let first = "#cloud-config\nruncmd: [ [ echo, first ] ]\n"
        try first.write(toFile: userData, atomically: true, encoding: .utf8)
        let profile = try Guest.writeProfile(in: root, name: "seeded", extra: """
            cloudInit:
              hostname: seeded-host
              userData: user-data.yaml
              sshKeys: [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx7 test@corral" ]

            """)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        let up = try await manager.up(UpRequest(profile: profile))
        let boot1 = try await HeartbeatWait.first(in: up.serialLog) { $0.seed != nil }
        let seed1 = try #require(boot1.seed)
        let parts1 = seed1.split(separator: ":").map(String.init)
        #expect(parts1.count == 2 && parts1[0].hasPrefix("corral-") && parts1[0].count == 23, "\(seed1)")
        #expect(parts1.last == Self.sha1Prefix(first), "the guest read exactly our user-data: \(seed1)")
        #expect(boot1.disks.count == 1, "the seed is the only disk: \(boot1.disks)")
        // What corral wrote, read back from the seed image itself.
        let meta = try await Self.extract("meta-data", from: root + "/state/vms/seeded/cidata.iso")
        #expect(meta.contains("local-hostname: seeded-host\n"), "\(meta)")
        #expect(meta.contains("public-keys:\n  - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx7 test@corral\"\n"), "\(meta)")
        #expect(meta.hasPrefix("instance-id: \(parts1[0])\n"))

        // The same content: the same instance-id after a restart (cloud-init does not provision again).
        _ = try await manager.stop("seeded", timeout: .seconds(10))
        var offset = Guest.size(up.serialLog)
        _ = try await manager.start("seeded")
        let boot2 = try await HeartbeatWait.first(in: up.serialLog, from: offset) { $0.seed != nil }
        #expect(boot2.seed == seed1)

        // New user-data: a new instance-id, and the guest reads the new content.
        _ = try await manager.stop("seeded", timeout: .seconds(10))
        let second = "#cloud-config\nruncmd: [ [ echo, second ] ]\n"
        try second.write(toFile: userData, atomically: true, encoding: .utf8)
        offset = Guest.size(up.serialLog)
        _ = try await manager.start("seeded")
        let boot3 = try await HeartbeatWait.first(in: up.serialLog, from: offset) { $0.seed != nil }
        let parts3 = try #require(boot3.seed).split(separator: ":").map(String.init)
        #expect(parts3.first != parts1[0], "a new instance-id: \(parts3) after \(parts1)")
        #expect(parts3.last == Self.sha1Prefix(second))
        _ = try await manager.kill("seeded")
    }

    @Test func aMissingUserDataFileFailsTheStartNamingTheField() async throws {
        let root = Guest.tempFolder("ci-missing")
        defer { Guest.cleanUp(root) }
        let userData = root + "/user-data"
        try "#cloud-config\n".write(toFile: userData, atomically: true, encoding: .utf8)
        let profile = try Guest.writeProfile(in: root, name: "gone", extra: "cloudInit: { userData: user-data }\n")
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        try FileManager.default.removeItem(atPath: userData)
        let refused = await #expect(throws: ControlError.self) { _ = try await manager.up(UpRequest(profile: profile)) }
        #expect(String(describing: refused).contains("cloudInit.userData: "), "\(String(describing: refused))")
        #expect(await manager.list().isEmpty, "nothing defined, nothing started")
    }

    /// A file of an ISO image, through xorriso.
    static func extract(_ name: String, from image: String) async throws -> String {
        let out = NSTemporaryDirectory() + "corral-seed-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try await ProcessLauncher.run("xorriso", ["-osirrox", "on", "-indev", image, "-extract", "/" + name, out])
        #expect(result.status.isSuccess, "\(result.output)")
        return try String(contentsOfFile: out, encoding: .utf8)
    }
}
