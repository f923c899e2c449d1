import CorralModel
import JSON
import CorralCore
import Testing

@Suite struct MigrationProgressTests {
    @Test func emptyReplyBeforeAnyMigration() {
        let p = MigrationProgress(queryMigrate: .object([:]))
        #expect(p.status == nil && p.percent == nil && p.mibPerSecond == nil)
        #expect(p.renderBar(width: 10) == "[----------]   0%  phase unknown")
    }

    @Test func earlySetupReplyHasNoRAM() {
        let p = MigrationProgress(queryMigrate: ["status": "setup", "setup-time": 0, "total-time": 3])
        #expect(p.status == .setup && p.ramTransferred == nil && p.percent == nil)
        #expect(p.totalTimeMs == 3 && p.setupTimeMs == 0)
        #expect(p.renderBar(width: 4) == "[----]   0%  phase setup")
    }

    @Test func activeReplyFromQEMU72() {
        // Shape of a real QEMU 7.2 reply (fields trimmed).
        let reply: JSONValue = [
            "expected-downtime": 300, "status": "active", "setup-time": 1, "total-time": 2512,
            "ram": ["total": 134_750_208, "dirty-sync-count": 1, "page-size": 4096, "remaining": 42_047_488,
                    "mbps": 992.3, "transferred": 45_612_345, "dirty-pages-rate": 1200, "duplicate": 120],
        ]
        let p = MigrationProgress(queryMigrate: reply)
        #expect(p.status == .active)
        #expect(p.ramTotal == 134_750_208 && p.ramRemaining == 42_047_488 && p.ramTransferred == 45_612_345)
        #expect(p.dirtyPagesRate == 1200 && p.dirtySyncCount == 1 && p.expectedDowntimeMs == 300)
        #expect(p.downtimeMs == nil)
        let percent = try! #require(p.percent)
        #expect(percent > 52 && percent < 53)
        #expect(p.renderBar(width: 10)
            == "[#####-----]  52%  phase active  118.3 MiB/s  remaining 40.1 MiB  dirty 1200 pages/s")
    }

    @Test func completedReplyShowsDowntimeAndFullBar() {
        let p = MigrationProgress(queryMigrate: [
            "status": "completed", "setup-time": 1, "downtime": 4, "total-time": 19,
            "ram": ["total": 134_750_208, "remaining": 0, "mbps": 382.16, "transferred": 783_479,
                    "dirty-pages-rate": 0],
        ])
        #expect(p.percent == 100 && p.downtimeMs == 4)
        #expect(p.renderBar(width: 5) == "[#####] 100%  phase completed  45.6 MiB/s  remaining 0 B  dirty 0 pages/s  downtime 4 ms")
    }

    @Test func failedReplyCarriesErrorDesc() {
        let p = MigrationProgress(queryMigrate: ["status": "failed", "error-desc": "Unable to write to socket: Broken pipe"])
        #expect(p.status == .failed && p.errorDescription == "Unable to write to socket: Broken pipe")
        #expect(p.renderBar(width: 2).hasSuffix("phase failed  error: Unable to write to socket: Broken pipe"))
    }

    @Test func throughputDerivedWhenMbpsMissing() {
        let p = MigrationProgress(queryMigrate: ["status": "active", "total-time": 2000,
                                                 "ram": ["transferred": 4_194_304, "remaining": 0]])
        #expect(p.mibPerSecond == 2)
    }

    @Test func percentIsClamped() {
        #expect(MigrationProgress(ramTransferred: 0, ramRemaining: 0).percent == 0)
        #expect(MigrationProgress(ramTransferred: -5, ramRemaining: 10).percent == 0)
        #expect(MigrationProgress(ramTransferred: 10, ramRemaining: -5).percent == 100)
    }

    @Test func unknownStatusIsKeptAsText() {
        let p = MigrationProgress(queryMigrate: ["status": "future-state"])
        #expect(p.status == nil && p.rawStatus == "future-state")
        #expect(p.renderBar(width: 1) == "[-]   0%  phase future-state")
    }

    @Test func everyQEMU72StatusParses() {
        let names = ["none", "setup", "cancelling", "cancelled", "active", "postcopy-active", "postcopy-paused",
                     "postcopy-recover", "completed", "failed", "colo", "pre-switchover", "device", "wait-unplug"]
        #expect(names.compactMap(MigrationStatus.init(rawValue:)).count == names.count)
        #expect(MigrationStatus.allCases.count == names.count)
    }

    @Test func tinyWidthStillRenders() {
        let p = MigrationProgress(status: .active, ramTransferred: 1, ramRemaining: 1)
        #expect(p.renderBar(width: 0).hasPrefix("[-]  50%"))
    }
}
