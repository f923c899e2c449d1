import Foundation
import CorralModel
import JSON
import CorralCore
import Testing

@Suite struct MigrationOptionsTests {
    @Test func defaultsHaveNoProblems() {
        #expect(MigrationOptions().problems().isEmpty)
        let full = MigrationOptions(bandwidthBytesPerSecond: 100 << 20, downtimeMs: 500, multifdChannels: 4,
                                    autoConverge: true, withStorage: true, tls: true, timeoutSeconds: 600)
        #expect(full.problems().isEmpty)
        #expect(MigrationOptions(postcopy: true, autoConverge: true, xbzrle: true, tls: true).problems().isEmpty)
    }

    @Test func postcopyWithMultifdIsRefused() {
        #expect(MigrationOptions(postcopy: true, multifdChannels: 2).problems() == [
            "--postcopy cannot be combined with --multifd on QEMU 7.2: the destination QEMU aborts "
                + "(yank_unregister_instance assertion) when such a migration completes, and the guest is lost",
        ])
    }

    @Test func postcopyWithStorageIsRefused() {
        #expect(MigrationOptions(postcopy: true, withStorage: true).problems() == [
            "--postcopy cannot be combined with --with-storage: the disk mirrors are switched over at "
                + "pause-before-switchover, and a postcopy failure after that point loses the guest and its disks",
        ])
    }

    @Test func xbzrleWithMultifdIsRefused() {
        #expect(MigrationOptions(multifdChannels: 8, xbzrle: true).problems() == [
            "--xbzrle cannot be combined with --multifd on QEMU 7.2: multifd sends whole pages and "
                + "never consults the XBZRLE cache, so --xbzrle would be silently ignored",
        ])
    }

    @Test(arguments: [0, 65, -1])
    func multifdChannelsOutOfRange(channels: Int) {
        #expect(MigrationOptions(multifdChannels: channels).problems()
            == ["--multifd must be between 1 and 64 channels (got \(channels))"])
    }

    @Test(arguments: [1, 64])
    func multifdChannelBoundsAccepted(channels: Int) {
        #expect(MigrationOptions(multifdChannels: channels).problems().isEmpty)
    }

    @Test func downtimeRange() {
        #expect(MigrationOptions(downtimeMs: 0).problems() == ["--downtime-ms must be between 1 and 2000 (got 0)"])
        #expect(MigrationOptions(downtimeMs: 2001).problems() == ["--downtime-ms must be between 1 and 2000 (got 2001)"])
        #expect(MigrationOptions(downtimeMs: 1).problems().isEmpty)
        #expect(MigrationOptions(downtimeMs: 2000).problems().isEmpty)
    }

    @Test func bandwidthAndTimeoutMustBePositive() {
        #expect(MigrationOptions(bandwidthBytesPerSecond: 0).problems() == [
            "--bandwidth must be more than 0 bytes/s (got 0); leave it out for QEMU's default of 128 MiB/s",
        ])
        #expect(MigrationOptions(timeoutSeconds: 0).problems() == ["--timeout must be more than 0 seconds (got 0)"])
    }

    @Test func everyProblemIsReportedAtOnce() {
        let bad = MigrationOptions(bandwidthBytesPerSecond: -5, downtimeMs: 9999, postcopy: true, multifdChannels: 100,
                                   xbzrle: true, withStorage: true, timeoutSeconds: -1)
        let problems = bad.problems()
        #expect(problems.count == 7)
        #expect(problems.allSatisfy { $0.hasPrefix("--") })
    }

    @Test func codableRoundTripAndMissingKeys() throws {
        let options = MigrationOptions(bandwidthBytesPerSecond: 1 << 30, downtimeMs: 100, postcopy: true,
                                       autoConverge: true, tls: true, timeoutSeconds: 30)
        let data = try JSONEncoder().encode(options)
        #expect(try JSONDecoder().decode(MigrationOptions.self, from: data) == options)
        let sparse = try JSONDecoder().decode(MigrationOptions.self, from: Data(#"{"multifdChannels":4}"#.utf8))
        #expect(sparse == MigrationOptions(multifdChannels: 4))
    }
}
