import Foundation
import Import
import Profiles
import Testing

/// Reads members of an in-memory archive.
private func members(_ archive: [UInt8], limits: TarLimits = .standard,
                     size: Bool = true) throws(TarError) -> [TarMember] {
    try TarReader.members(archiveSize: size ? UInt64(archive.count) : nil, limits: limits) { offset, count in
        guard offset < UInt64(archive.count) else { return [] }
        let start = Int(offset)
        return Array(archive[start..<min(archive.count, start + count)])
    }
}

/// The refusal's message, or "accepted" (a string, so a failed expectation does not print the archive's bytes).
private func refused(_ archive: [UInt8], limits: TarLimits = .standard) -> String {
    refusal(archive, limits: limits)?.message ?? "accepted"
}

private func refusal(_ archive: [UInt8], limits: TarLimits = .standard) -> TarError? {
    do throws(TarError) {
        _ = try members(archive, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// A ustar header with a correct checksum.
private func header(_ name: String, size: UInt64, type: UInt8 = UInt8(ascii: "0"), prefix: String = "",
                    base256: Bool = false) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, _ at: Int) {
        for (i, byte) in text.utf8.enumerated() { block[at + i] = byte }
    }
    put(name, 0)
    put("0000644", 100)
    if base256 {
        block[124] = 0x80
        var value = size
        for i in stride(from: 135, to: 124, by: -1) {
            block[i] = UInt8(value & 0xFF)
            value >>= 8
        }
    } else {
        let octal = String(size, radix: 8)
        put(String(repeating: "0", count: 11 - octal.count) + octal, 124)
    }
    block[156] = type
    put("ustar", 257)
    put("00", 263)
    put(prefix, 345)
    for i in 148..<156 { block[i] = UInt8(ascii: " ") }
    let sum = block.reduce(0) { $0 + Int($1) }
    let octal = String(sum, radix: 8)
    put(String(repeating: "0", count: 6 - octal.count) + octal, 148)
    block[154] = 0
    return block
}

private func padded(_ data: [UInt8]) -> [UInt8] {
    data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
}

private let end = [UInt8](repeating: 0, count: 1024)

@Suite struct TarReaderTests {
    /// Archives made by GNU tar in each format list the same members, at offsets holding their bytes.
    @Test(arguments: ["ustar", "gnu", "pax"])
    func realArchives(_ format: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("corral-tar-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        // A directory path long enough that ustar needs its prefix field, and (for gnu and pax) a name over 100 bytes.
        let deep = String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60)
        let longName = format == "ustar" ? "short.vmdk" : String(repeating: "n", count: 120) + ".vmdk"
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(deep),
                                                withIntermediateDirectories: true)
        let files = ["vm.ovf": "<Envelope/>\n", "vm.mf": String(repeating: "m", count: 700),
                     deep + "/" + longName: "disk bytes"]
        for (name, text) in files {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let archive = folder.appendingPathComponent("a.ova")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.currentDirectoryURL = folder
        tar.arguments = ["--format=\(format)", "-cf", "a.ova", "vm.ovf", "vm.mf", deep + "/" + longName]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        let bytes = [UInt8](try Data(contentsOf: archive))
        let list = try members(bytes)
        #expect(list.map(\.name) == ["vm.ovf", "vm.mf", deep + "/" + longName])
        #expect(list.map(\.kind) == [.file, .file, .file])
        #expect(list.map(\.size) == [12, 700, 10])
        #expect(list.last?.baseName == longName)
        for member in list {
            let data = bytes[Int(member.dataOffset)..<Int(member.dataOffset + member.size)]
            #expect(String(decoding: data, as: UTF8.self) == files[member.name])
        }
        #expect(list[0].headerOffset == 0 || format == "pax")
    }

    @Test func prefixBase256SizesAndTypes() throws {
        let archive = header("file.vmdk", size: 3, prefix: "some/dir") + padded(Array("abc".utf8))
            + header("big", size: 5, base256: true) + padded(Array("12345".utf8))
            + header("folder/", size: 0, type: UInt8(ascii: "5"))
            + header("link", size: 0, type: UInt8(ascii: "2")) + end
        let list = try members(archive)
        #expect(list.map(\.name) == ["some/dir/file.vmdk", "big", "folder/", "link"])
        #expect(list.map(\.size) == [3, 5, 0, 0])
        #expect(list.map(\.kind) == [.file, .file, .directory, .symlink])
        #expect(list.map(\.dataOffset) == [512, 1536, 2560, 3072])
    }

    @Test func gnuLongNamesAndPaxRecords() throws {
        let long = String(repeating: "x", count: 300)
        let longData = Array((long + "\0").utf8)
        let pax = Array("20 path=pax/name.ov\n".utf8) + Array("11 size=42\n".utf8)
        let archive = header("././@LongLink", size: UInt64(longData.count), type: UInt8(ascii: "L")) + padded(longData)
            + header("cut", size: 1) + padded([1])
            + header("PaxHeader", size: UInt64(pax.count), type: UInt8(ascii: "x")) + padded(pax)
            + header("ignored", size: 0) + padded([UInt8](repeating: 7, count: 42)) + end
        let list = try members(archive)
        #expect(list.map(\.name) == [long, "pax/name.ov"])
        #expect(list.map(\.size) == [1, 42])
    }

    @Test func corruptHeadersAreRefused() throws {
        var archive = header("a", size: 1) + padded([1]) + header("b", size: 1) + padded([2]) + end
        #expect(try members(archive).count == 2)
        archive[512 * 2 + 3] ^= 0x20
        let corrupt = refusal(archive)
        let bad = try #require(corrupt)
        #expect(bad.offset == 1024)
        #expect(bad.message.contains("checksum"))

        let garbage = refused(Array("not a tar archive at all".utf8) + [UInt8](repeating: 65, count: 600))
        #expect(garbage != "accepted")
        var notOctal = header("a", size: 1)
        notOctal[125] = UInt8(ascii: "9")
        for i in 148..<156 { notOctal[i] = UInt8(ascii: " ") }
        let sum = notOctal.reduce(0) { $0 + Int($1) }
        let octal = Array(String(sum, radix: 8).utf8)
        for (i, byte) in octal.enumerated() { notOctal[148 + i] = byte }
        notOctal[148 + octal.count] = 0
        let octalMessage = refused(notOctal + end)
        #expect(octalMessage.contains("octal"))
    }

    @Test func truncatedArchivesAreRefused() throws {
        let archive = header("a", size: 4000) + padded([UInt8](repeating: 1, count: 4000)) + end
        // Data past the end of what there is.
        let pastEnd = refused(Array(archive.prefix(1024)))
        #expect(pastEnd.contains("past the end"))
        // A header cut short.
        let cutHeader = refused(Array(archive.prefix(300)))
        #expect(cutHeader.contains("ends inside a header"))
        // No end marker at all is fine: the data simply ends.
        #expect(try members(Array(archive.prefix(512 + 4096))).count == 1)
    }

    @Test func limitsAreEnforced() throws {
        var archive: [UInt8] = []
        for i in 0..<5 { archive += header("m\(i)", size: 0) }
        archive += end
        #expect(try members(archive).count == 5)
        let tooMany = refused(archive, limits: TarLimits(members: 4))
        #expect(tooMany.contains("more than 4 members"))
        let long = Array((String(repeating: "y", count: 50) + "\0").utf8)
        let longArchive = header("././@LongLink", size: UInt64(long.count), type: UInt8(ascii: "L")) + padded(long)
            + header("z", size: 0) + end
        let tooLong = refused(longArchive, limits: TarLimits(nameLength: 20))
        #expect(tooLong.contains("long name"))
        // A chain of long-name headers without a member ends at the header limit.
        var chain: [UInt8] = []
        for _ in 0..<20 { chain += header("././@LongLink", size: 2, type: UInt8(ascii: "L")) + padded([65, 0]) }
        let chained = refused(chain + end, limits: TarLimits(members: 3))
        #expect(chained.contains("more than 3 members"))
    }

    @Test func readFailuresBecomeTarErrors() {
        struct Broken: Error {}
        do throws(TarError) {
            _ = try TarReader.members { _, _ in throw Broken() }
            Issue.record("expected a refusal")
        } catch {
            #expect(error.offset == 0 && error.message.hasPrefix("cannot read the archive"))
        }
    }
}

@Suite struct OVAPackageTests {
    func member(_ name: String, _ kind: TarMember.Kind = .file, at offset: UInt64 = 0) -> TarMember {
        TarMember(name: name, size: 10, dataOffset: offset + 512, headerOffset: offset, kind: kind)
    }

    func result(_ hrefs: [String]) -> ImportResult {
        var profile = Profile(name: "p", memory: Memory(size: .gib(1)))
        var disks: [ImportedDisk] = []
        for (index, href) in hrefs.enumerated() {
            profile.disks.append(Disk(id: "disk\(index)", file: "/vm/d\(index).qcow2"))
            disks.append(ImportedDisk(id: "disk\(index)", profileIndex: index, source: href, format: "", profileFormat: nil))
        }
        return ImportResult(profile: profile, disks: disks)
    }

    @Test func theEnvelopeComesFirst() throws {
        let members = [member("./", .directory), member("./vm.ovf"), member("vm.mf", at: 1024), member("vm-disk1.vmdk", at: 2048)]
        #expect(try OVAPackage.envelope(in: members).name == "./vm.ovf")
        #expect(throws: OVAPackage.Failure.self) { try OVAPackage.envelope(in: [member("vm.mf"), member("vm.ovf")]) }
        #expect(throws: OVAPackage.Failure.self) { try OVAPackage.envelope(in: []) }
        #expect(throws: OVAPackage.Failure.self) { try OVAPackage.envelope(in: [member("a.ovf"), member("b.ovf")]) }
    }

    @Test func disksMatchMembersExactly() throws {
        let members = [member("vm.ovf"), member("./vm-disk1.vmdk", at: 1024), member("sub/d2.vmdk", at: 2048),
                       member("link.vmdk", .symlink, at: 4096)]
        let found = try OVAPackage.diskMembers(for: result(["vm-disk1.vmdk", "sub/d2.vmdk"]), in: members)
        #expect(found.map(\.dataOffset) == [1536, 2560])
        for bad in ["../etc/passwd", "/etc/passwd", "missing.vmdk", "link.vmdk", "", "a\\b", "d2.vmdk"] {
            #expect(throws: OVAPackage.Failure.self, "\(bad)") {
                try OVAPackage.diskMembers(for: result([bad]), in: members)
            }
        }
    }

    /// The whole pure path of `corral import ova` on a package GNU tar writes: members, envelope, import, disk members.
    @Test func aVMwarePackageEndToEnd() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("corral-ova-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Fixtures.text("vmware-web01.ovf").write(to: folder.appendingPathComponent("web01.ovf"), atomically: true,
                                                    encoding: .utf8)
        for (name, text) in [("web01.mf", "SHA256(web01.ovf)= 00\n"), ("web01-disk1.vmdk", "KDMV one"),
                             ("web01-disk2.vmdk", "KDMV two"), ("web01-file1.nvram", "nvram")] {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.currentDirectoryURL = folder
        tar.arguments = ["--format=ustar", "-cf", "web01.ova", "web01.ovf", "web01.mf", "web01-disk1.vmdk",
                         "web01-disk2.vmdk", "web01-file1.nvram"]
        try tar.run()
        tar.waitUntilExit()
        let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent("web01.ova")))
        let members = try members(bytes)
        let envelope = try OVAPackage.envelope(in: members)
        let xml = String(decoding: bytes[Int(envelope.dataOffset)..<Int(envelope.dataOffset + envelope.size)],
                         as: UTF8.self)
        let result = try OVFImport.importEnvelope(xml, diskDirectory: "/srv/vms/web01")
        let disks = try OVAPackage.diskMembers(for: result, in: members)
        #expect(disks.map(\.name) == ["web01-disk1.vmdk", "web01-disk2.vmdk"])
        #expect(disks.map { String(decoding: bytes[Int($0.dataOffset)..<Int($0.dataOffset + $0.size)], as: UTF8.self) }
            == ["KDMV one", "KDMV two"])
        #expect(result.profile.disks.map(\.file) == ["/srv/vms/web01/web01-disk1.qcow2", "/srv/vms/web01/web01-disk2.qcow2"])
    }
}
