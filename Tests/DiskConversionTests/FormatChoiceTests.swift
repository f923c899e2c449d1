import CorralModel
import DiskConversion
import Testing

@Suite struct FormatChoiceTests {
    @Test(arguments: [
        ("disk.vmdk", SourceFormat.vmdk), ("/a/b/Disk.VMDK", .vmdk), ("box.vdi", .vdi), ("hv.vhdx", .vhdx),
        ("azure.vhd", .vpc), ("OLD.VHD", .vpc), ("old.qcow", .qcow), ("x.qed", .qed), ("x.img", .raw),
        ("x.raw", .raw), ("x.qcow2", .qcow2), ("dir.d/disk.vmdk", .vmdk),
    ])
    func inputFormatFromExtension(path: String, format: SourceFormat) {
        #expect(SourceFormat.fromExtension(of: path) == format)
    }

    @Test(arguments: ["disk", "disk.iso", ".vmdk", "dir.vmdk/disk", "disk.vmdk.gz", "x.ova"])
    func noInputFormatFromOtherNames(path: String) {
        #expect(SourceFormat.fromExtension(of: path) == nil)
    }

    @Test func vhdIsAlwaysVPC() throws {
        #expect(SourceFormat.fromExtension(of: "disk.vhd") == .vpc)
        #expect(SourceFormat(option: "vhd") == .vpc)
        #expect(SourceFormat(option: "VPC") == .vpc)
        let plan = try ConvertPlan.resolve(input: "a.vhd", output: "a.qcow2", from: nil, to: nil).get()
        #expect(plan.inputFormat == .vpc)
    }

    @Test func fromOverridesTheExtension() throws {
        let plan = try ConvertPlan.resolve(input: "export.bin", output: "out.img", from: "vmdk", to: nil).get()
        #expect(plan == ConvertPlan(input: "export.bin", inputFormat: .vmdk, output: "out.img", outputFormat: .raw))
        let other = try ConvertPlan.resolve(input: "disk.vmdk", output: "out", from: "raw", to: "raw").get()
        #expect(other.inputFormat == .raw && other.outputFormat == .raw)
    }

    @Test(arguments: [
        ("out.qcow2", DiskFormat.qcow2), ("out.raw", .raw), ("out.IMG", .raw), ("out", .qcow2), ("out.disk", .qcow2),
    ])
    func outputFormatFromExtension(path: String, format: DiskFormat) throws {
        #expect(try ConvertPlan.resolve(input: "in.vmdk", output: path, from: nil, to: nil).get().outputFormat == format)
    }

    @Test func toOverridesTheOutputExtension() throws {
        #expect(try ConvertPlan.resolve(input: "in.vdi", output: "x.img", from: nil, to: "qcow2").get().outputFormat == .qcow2)
        #expect(try ConvertPlan.resolve(input: "in.vdi", output: "x.vmdk", from: nil, to: "raw").get().outputFormat == .raw)
    }

    @Test func unknownInputExtensionListsTheAllowedFormats() {
        let result = ConvertPlan.resolve(input: "/srv/export.bin", output: "out.qcow2", from: nil, to: nil)
        #expect(result == .failure(ConvertProblems([.unknownInputExtension(path: "/srv/export.bin")])))
        #expect(ConvertError.unknownInputExtension(path: "/srv/export.bin").description
            == "/srv/export.bin: ends in .bin, which names no disk format; give --from with one of: "
            + "vmdk, vdi, vhdx, vpc (.vhd), qcow, qed, raw (.img, .raw), qcow2")
        #expect(ConvertError.unknownInputExtension(path: "disk").description
            == "disk: has no extension, which names no disk format; give --from with one of: "
            + "vmdk, vdi, vhdx, vpc (.vhd), qcow, qed, raw (.img, .raw), qcow2")
    }

    @Test func everyProblemAtOnce() {
        let result = ConvertPlan.resolve(input: "a.vmdk", output: "b.vdi", from: "iso", to: "vmdk")
        guard case .failure(let problems) = result else {
            Issue.record("expected problems, got \(result)")
            return
        }
        #expect(problems.problems == [.unknownSourceFormat("iso"), .unknownTargetFormat("vmdk")])
        #expect(problems.description == """
            --from: 'iso' is not a format corral converts from; use one of: vmdk, vdi, vhdx, vpc (.vhd), qcow, qed, \
            raw (.img, .raw), qcow2
            --to: 'vmdk' is not a format corral converts to; use one of: qcow2, raw
            """)
    }

    @Test func aForeignOutputExtensionIsRefused() {
        let result = ConvertPlan.resolve(input: "a.vdi", output: "b.vmdk", from: nil, to: nil)
        #expect(result == .failure(ConvertProblems([.foreignOutputExtension(path: "b.vmdk")])))
        #expect(ConvertError.foreignOutputExtension(path: "b.vmdk").description
            == "b.vmdk: ends in .vmdk but corral writes only qcow2 and raw; name it .qcow2, .raw or .img, or give --to qcow2|raw")
    }

    @Test func pathText() {
        #expect(PathText.folder(of: "/a/b/c.vmdk") == "/a/b")
        #expect(PathText.folder(of: "c.vmdk") == ".")
        #expect(PathText.folder(of: "/c.vmdk") == "/")
        #expect(PathText.lastComponent("/a/b/c.vmdk") == "c.vmdk")
        #expect(PathText.fileExtension("/a.b/c") == "")
    }
}
