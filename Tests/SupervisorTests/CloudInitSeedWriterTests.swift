import Foundation
import Profiles
import QEMUCommand
import Testing
@testable import Supervisor

/// The seed on disk, with the real tools: an ISO 9660 volume `cidata` from xorriso, a FAT one from mtools when xorriso
/// is missing; documents read from files with a size bound; a failure leaves the previous seed.
@Suite(.serialized) struct CloudInitSeedWriterTests {
    static func run(_ tool: String, _ args: [String]) async throws -> String {
        let result = try await ProcessLauncher.run(tool, args)
        #expect(result.status.isSuccess, "\(tool) \(args): \(result.output)")
        return result.output
    }

    @Test func anISOWithTheDocumentsAndAFATOneWithoutXorriso() async throws {
        let root = NSTemporaryDirectory() + "corral-seed-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "version: 2\nethernets: {}\n".write(toFile: root + "/net.yaml", atomically: true, encoding: .utf8)
        let cloudInit = CloudInit(userData: .inline("#cloud-config\nruncmd: [ [ touch, /x ] ]\n"),
                                  networkConfig: .file(root + "/net.yaml"))
        let iso = root + "/cidata.iso"
        let id = try await CloudInitSeedWriter().write(cloudInit, vmName: "web", to: iso)
        let info = try await Self.run("xorriso", ["-indev", iso, "-pvd_info"])
        #expect(info.contains("Volume Id    : cidata"), "\(info)")
        let listing = try await Self.run("xorriso", ["-indev", iso, "-ls", "/"])
        #expect(["'meta-data'", "'network-config'", "'user-data'"].allSatisfy(listing.contains), "\(listing)")
        #expect(!FileManager.default.fileExists(atPath: iso + ".d") && !FileManager.default.fileExists(atPath: iso + ".new"))

        let fat = root + "/cidata.img"
        _ = try await CloudInitSeedWriter(xorriso: "/nonexistent/xorriso").write(cloudInit, vmName: "web", to: fat)
        let label = try await Self.run("minfo", ["-i", fat, "::"])
        #expect(label.contains("CIDATA"), "\(label)")
        let files = try await Self.run("mdir", ["-b", "-i", fat, "::"])
        #expect(files.contains("user-data") && files.contains("meta-data") && files.contains("network-config"), "\(files)")
        #expect(id.hasPrefix("corral-"))
    }

    @Test func unreadableOrOversizedDocumentsAreNamedAndTheOldSeedStays() async throws {
        let root = NSTemporaryDirectory() + "corral-seed-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let iso = root + "/cidata.iso"
        _ = try await CloudInitSeedWriter().write(CloudInit(), vmName: "web", to: iso)
        let before = try Data(contentsOf: URL(fileURLWithPath: iso))

        let missing = await #expect(throws: CloudInitSeedWriter.Failure.self) {
            try await CloudInitSeedWriter().write(CloudInit(userData: .file(root + "/nope")), vmName: "web", to: iso)
        }
        #expect(missing?.description == "cloudInit.userData: cannot read \(root)/nope: No such file or directory")
        try Data(count: (1 << 20) + 1).write(to: URL(fileURLWithPath: root + "/big"))
        let big = await #expect(throws: CloudInitSeedWriter.Failure.self) {
            try await CloudInitSeedWriter().write(CloudInit(metaData: .file(root + "/big")), vmName: "web", to: iso)
        }
        #expect(big?.description == "cloudInit.metaData: \(root)/big is 1048577 bytes; at most 1048576 (1 MiB)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: iso)) == before, "the previous seed is untouched")
    }

    @Test func qemuGetsTheSeedAsOneMoreReadOnlyDiskButLiveJSONDoesNot() {
        let profile = Profile(name: "p", memory: Memory(size: .gib(1)), cloudInit: CloudInit())
        let config = LiveConfig(profile: profile)
        let seeded = config.withSeed("/var/lib/corral/vms/p/cidata.iso")
        #expect(seeded.profile.disks == [Disk(id: "cidata", file: "/var/lib/corral/vms/p/cidata.iso", format: .raw,
                                              cache: .writeback, readonly: true)])
        #expect(config.profile.disks.isEmpty)
        #expect(LiveConfig(profile: Profile(name: "p", memory: Memory(size: .gib(1)))).withSeed("/x").profile.disks.isEmpty)
        let argv = QEMUArgv.build(seeded, RuntimeOptions(accel: .tcg, qmpSocket: "/q.sock"))
        #expect(argv.contains { $0.contains(#""filename":"/var/lib/corral/vms/p/cidata.iso""#) })
        #expect(argv.contains { $0.contains(#""id":"disk-cidata""#) })
    }
}

/// `qemu-img create` for missing images.
struct DiskProvisionerArgumentsTests {
    @Test func anOverlayOrANewImage() {
        let overlay = Disk(id: "root", file: "/v/root.qcow2", backing: "/i/base.img", backingFormat: .raw)
        #expect(DiskProvisioner.createArguments(overlay) == ["create", "-q", "-f", "qcow2", "-b", "/i/base.img", "-F", "raw", "/v/root.qcow2"])
        var grown = overlay
        grown.size = .gib(20)
        #expect(DiskProvisioner.createArguments(grown)?.last == String(20 << 30), "a larger overlay than the base")
        #expect(DiskProvisioner.createArguments(Disk(id: "d", file: "/v/d.raw", format: .raw, size: .mib(16)))
            == ["create", "-q", "-f", "raw", "/v/d.raw", String(16 << 20)])
        #expect(DiskProvisioner.createArguments(Disk(id: "d", file: "/v/d.qcow2")) == nil)
        #expect(DiskProvisioner.missingImages([overlay], exists: { _ in false }) == [overlay])
        #expect(DiskProvisioner.missingImages([overlay], exists: { _ in true }).isEmpty, "an existing overlay is kept")
    }
}
