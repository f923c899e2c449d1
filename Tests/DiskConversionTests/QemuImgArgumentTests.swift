import CorralModel
import DiskConversion
import JSON
import Testing

@Suite struct QemuImgArgumentTests {
    @Test func convertAlwaysNamesBothFormats() {
        let source = DiskSource.file(path: "/srv/in/web.vhd", format: .vpc)
        #expect(QemuImg.convertArguments(source, to: "/srv/out/.web.qcow2.corral-convert-Ab12Cd", format: .qcow2) == [
            "convert", "-p", "-f", "vpc", "-O", "qcow2", "/srv/in/web.vhd", "/srv/out/.web.qcow2.corral-convert-Ab12Cd",
        ])
        #expect(QemuImg.convertArguments(.file(path: "/a.vdi", format: .vdi), to: "/b.img", format: .raw)
            == ["convert", "-p", "-f", "vdi", "-O", "raw", "/a.vdi", "/b.img"])
    }

    @Test func measureAndTheRoomItNeeds() {
        #expect(QemuImg.measureArguments(.file(path: "/a/x.vhdx", format: .vhdx), format: .raw)
            == ["measure", "--output=json", "-f", "vhdx", "-O", "raw", "/a/x.vhdx"])
        let measured: JSONValue = ["required": 3_328_599_040, "fully-allocated": 21_478_375_424]
        #expect(QemuImg.spaceProblem(measure: measured, availableBytes: 3_328_599_040, output: "w.qcow2") == nil)
        #expect(QemuImg.spaceProblem(measure: measured, availableBytes: 1_288_490_188, output: "w.qcow2")
            == .notEnoughSpace(path: "w.qcow2", needed: 3_328_599_040, available: 1_288_490_188))
        #expect(QemuImg.spaceProblem(measure: ["fully-allocated": 10], availableBytes: 0, output: "w.qcow2") == nil)
        #expect(ConvertError.notEnoughSpace(path: "w.qcow2", needed: 3_328_599_040, available: 1_288_490_188).description
            == "w.qcow2: needs 3.1 GiB but its filesystem has 1.2 GiB free; make room or write elsewhere")
    }

    @Test func infoAndCheck() {
        #expect(QemuImg.infoArguments(.file(path: "/a/x.vmdk", format: .vmdk))
            == ["info", "--output=json", "-f", "vmdk", "/a/x.vmdk"])
        #expect(QemuImg.checkArguments("/a/.x.qcow2.corral-convert-123456")
            == ["check", "--output=json", "-f", "qcow2", "/a/.x.qcow2.corral-convert-123456"])
    }

    /// A relative name that looks like a QEMU protocol (`nbd:`, `json:`) stays a file name.
    @Test func relativePathsCannotBeReadAsProtocols() {
        #expect(QemuImg.plainName("nbd:evil:10809") == "./nbd:evil:10809")
        #expect(QemuImg.plainName("json:{\"driver\":\"file\"}") == "./json:{\"driver\":\"file\"}")
        #expect(QemuImg.infoArguments(.file(path: "disk.vmdk", format: .vmdk)).last == "./disk.vmdk")
        #expect(QemuImg.plainName("./.disk.qcow2.corral-convert-Ab12Cd") == "./.disk.qcow2.corral-convert-Ab12Cd")
        #expect(QemuImg.plainName("../in/nbd:x") == "../in/nbd:x")
        #expect(QemuImg.convertArguments(.file(path: "a:b.vdi", format: .vdi), to: "c:d.qcow2", format: .qcow2)
            .suffix(2) == ["./a:b.vdi", "./c:d.qcow2"])
    }

    @Test func archiveMemberIsAJSONSpecOverARawWindow() {
        let source = DiskSource.archiveMember(archive: "/srv/web.ova", offset: 1536, size: 131_072, format: .vmdk)
        #expect(source.qemuImageName == #"json:{"driver":"vmdk","file":{"driver":"raw","offset":1536,"size":131072,"file":{"driver":"file","filename":"/srv/web.ova"}}}"#)
        #expect(QemuImg.convertArguments(source, to: "/o.qcow2", format: .qcow2) == [
            "convert", "-p", "-f", "vmdk", "-O", "qcow2", source.qemuImageName, "/o.qcow2",
        ])
        #expect(source.displayName == "/srv/web.ova (bytes 1536…132607)")
    }

    /// Quotes, backslashes, commas and control characters in the path are JSON-escaped, never spliced in.
    @Test func archivePathIsEncodedNotConcatenated() throws {
        let path = "/srv/we\"ird\\,name\n.ova"
        let name = DiskSource.archiveMember(archive: path, offset: 0, size: 10, format: .vmdk).qemuImageName
        #expect(name == #"json:{"driver":"vmdk","file":{"driver":"raw","offset":0,"size":10,"file":{"driver":"file","filename":"/srv/we\"ird\\,name\n.ova"}}}"#)
        #expect(DiskSource.memberSpec(archive: path, offset: 0, size: 10, format: .vmdk)["file"]?["file"]?["filename"]
            == .string(path))
    }

    @Test func memberWindowMustFitTheArchive() {
        let fits = DiskSource.archiveMember(archive: "a.ova", offset: 512, size: 1024, format: .vmdk)
        #expect(fits.windowProblem(archiveSize: 1536) == nil)
        #expect(fits.windowProblem(archiveSize: 1535)
            == .memberOutOfRange(archive: "a.ova", offset: 512, size: 1024, archiveSize: 1535))
        let overflow = DiskSource.archiveMember(archive: "a.ova", offset: .max, size: 2, format: .vmdk)
        #expect(overflow.windowProblem(archiveSize: .max) != nil)
        let empty = DiskSource.archiveMember(archive: "a.ova", offset: 0, size: 0, format: .vmdk)
        #expect(empty.windowProblem(archiveSize: 10) != nil)
        #expect(DiskSource.file(path: "x", format: .raw).windowProblem(archiveSize: 0) == nil)
        #expect(ConvertError.memberOutOfRange(archive: "a.ova", offset: 512, size: 1024, archiveSize: 1535).description
            == "a.ova: a member of 1024 bytes at offset 512 does not fit in the archive (1535 bytes)")
    }

    @Test func qemuImgReasonWithoutItsPrefixes() {
        #expect(QemuImg.reason(in: "qemu-img: Could not open '/a/d.vmdk': invalid VMDK image descriptor\n",
                               imageName: "/a/d.vmdk") == "invalid VMDK image descriptor")
        #expect(QemuImg.reason(in: "qemu-img: Could not open './d.raw': Could not open './d.raw': Invalid argument\n",
                               imageName: "./d.raw") == "Invalid argument")
        let spec = DiskSource.archiveMember(archive: "/x.ova", offset: 0, size: 1, format: .vdi).qemuImageName
        #expect(QemuImg.reason(in: "qemu-img: Could not open '\(spec)': Image not in VDI format (bad signature 00000000)",
                               imageName: spec) == "Image not in VDI format (bad signature 00000000)")
        #expect(QemuImg.reason(in: "    (0.00/100%)\r    (12.00/100%)\rqemu-img: error while reading at byte 0: Input/output error\n",
                               imageName: "x") == "error while reading at byte 0: Input/output error")
        #expect(QemuImg.reason(in: "    (0.00/100%)\r", imageName: "x") == nil)
    }
}
