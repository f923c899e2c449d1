import Foundation
import Testing
@testable import Profiles

/// Loads the real example profiles in `profiles/` from disk.
@Suite struct ExampleProfilesTests {
    /// Tests/ProfilesTests/ExampleProfilesTests.swift → repository root.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let profilesDirectory = repositoryRoot + "/profiles"
    /// Needs the test guest built at .build/test-guest/ before its files exist.
    static let needsTestGuest: Set<String> = ["tiny-test.yaml"]

    static var exampleNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: profilesDirectory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func load(_ name: String, checkFiles: Bool) -> Result<Profile, ProfileErrors> {
        do throws(ProfileErrors) {
            return .success(try ProfileLoader(checkFiles: checkFiles).load(path: profilesDirectory + "/" + name))
        } catch {
            return .failure(error)
        }
    }

    @Test func theExamplesAreThere() {
        #expect(Self.exampleNames == ["base.yaml", "cloud.yaml", "db.yaml", "failover.yaml", "gpu.yaml", "minimal.yaml", "tiny-test.yaml",
                                      "web.yaml"])
    }

    @Test(arguments: exampleNames)
    func everyExampleIsValidWithoutFileChecks(_ name: String) {
        if case .failure(let errors) = Self.load(name, checkFiles: false) {
            Issue.record("\(name):\n\(errors)")
        }
    }

    @Test(arguments: exampleNames.filter { !needsTestGuest.contains($0) })
    func everyExampleIsValidWithFileChecks(_ name: String) {
        if case .failure(let errors) = Self.load(name, checkFiles: true) {
            Issue.record("\(name):\n\(errors)")
        }
    }

    @Test func tinyTestNeedsTheTestGuestWhenFilesAreChecked() {
        let kernel = Self.repositoryRoot + "/.build/test-guest/vmlinuz"
        let result = Self.load("tiny-test.yaml", checkFiles: true)
        if LocalFileSource().exists(kernel) {
            #expect((try? result.get())?.name == "tiny-test")
        } else if case .failure(let errors) = result {
            #expect(errors.diagnostics.contains {
                $0.path == "boot.kernel" && $0.message == "\(kernel) does not exist"
            })
        } else {
            Issue.record("tiny-test.yaml loaded although \(kernel) is missing")
        }
    }

    @Test func localFileSourceSeesFilesButNotDirectories() {
        let source = LocalFileSource()
        #expect(source.exists(Self.profilesDirectory + "/web.yaml"))
        #expect(!source.exists(Self.profilesDirectory))
        #expect(!source.exists(Self.profilesDirectory + "/no-such.yaml"))
        #expect((try? source.read(Self.profilesDirectory + "/minimal.yaml"))?.contains("name: minimal") == true)
    }

    @Test func dbInheritsFromBase() throws {
        let db = try Self.load("db.yaml", checkFiles: true).get()
        #expect(db.name == "db")
        #expect(db.memory == Memory(size: .gib(4), max: .gib(8), slots: 2,
                                    balloon: Balloon(min: .gib(2), freePageReporting: true),
                                    merge: false, lock: true))
        #expect(db.disks.map(\.id) == ["root", "data"])
        #expect(db.disks[1].format == .raw)
        #expect(db.disks[1].file == Self.profilesDirectory + "/images/db-data.img")
        #expect(db.nics == [NIC(id: "net0")])
        #expect(db.restart == .always)
        #expect(db.hotplug.slots == 4)
    }

    @Test func tinyTestPointsIntoTheTestGuestBuild() throws {
        let tiny = try Self.load("tiny-test.yaml", checkFiles: false).get()
        let guest = Self.repositoryRoot + "/.build/test-guest"
        #expect(tiny.boot.kernel == guest + "/vmlinuz")
        #expect(tiny.boot.initrd == guest + "/initrd.img")
        #expect(tiny.disks == [Disk(id: "data", file: guest + "/tiny-test-data.qcow2", format: .qcow2, size: .mib(64))])
        #expect(tiny.accel == .tcg && tiny.cpu.model == nil)
        #expect(tiny.memory == Memory(size: .mib(256), max: .gib(1), slots: 2,
                                      balloon: Balloon(min: .mib(128), freePageReporting: true)))
    }

    @Test func webMatchesItsDescription() throws {
        let web = try Self.load("web.yaml", checkFiles: true).get()
        #expect(web.accel == .kvm)
        #expect(web.cpu == CPU(model: "host", count: 2, max: 8, sockets: 1, cores: 4, threads: 2))
        #expect(web.disks.map(\.format) == [.qcow2, .raw])
        #expect(web.disks.map(\.bus) == [.virtioBlk, .virtioSCSI])
        #expect(web.nics.map(\.mode) == [.user, .bridge])
        #expect(web.nics[1].mac == "52:54:00:12:34:56")
        #expect(web.boot == Boot(firmware: .bios))
        #expect(web.overcommit == Overcommit(memoryShares: 2000, cpuWeight: 200, cpuQuotaPercent: 400))
    }
}
