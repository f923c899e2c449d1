import DiskConversion
import JSON
import Testing

@Suite struct ImageInspectionTests {
    static func info(format: String, size: Int64 = 67_108_864, extra: JSONObject = [:]) -> JSONValue {
        var object: JSONObject = ["virtual-size": .int(size), "filename": "x", "format": .string(format)]
        for (key, value) in extra { object[key] = value }
        return .object(object)
    }

    @Test func aSelfContainedImageIsConverted() throws {
        let vdi = try ImageInspection.inspect(Self.info(format: "vdi"), source: .file(path: "/a/x.vdi", format: .vdi)).get()
        #expect(vdi == ImageInspection(virtualSize: 67_108_864, format: "vdi", vmdkCreateType: nil))
    }

    @Test func aBackingFileIsRefused() {
        let overlay = Self.info(format: "qcow2", extra: ["backing-filename": "/etc/shadow", "backing-filename-format": "raw"])
        let result = ImageInspection.inspect(overlay, source: .file(path: "in.qcow2", format: .qcow2))
        #expect(result == .failure(.notSelfContained(path: "in.qcow2", reason: "it is an overlay on a backing file (/etc/shadow)")))
        #expect(ConvertError.notSelfContained(path: "in.qcow2", reason: "it is an overlay on a backing file (/etc/shadow)")
            .description == "in.qcow2: not converted: it is an overlay on a backing file (/etc/shadow); "
            + "corral converts only self-contained images")
    }

    @Test func aQcow2DataFileIsRefused() {
        let info = Self.info(format: "qcow2", extra: [
            "format-specific": ["type": "qcow2", "data": ["compat": "1.1", "data-file": "/dev/sda"]],
        ])
        #expect(ImageInspection.inspect(info, source: .file(path: "in.qcow2", format: .qcow2))
            == .failure(.notSelfContained(path: "in.qcow2", reason: "its data is in an external file (/dev/sda)")))
    }

    static func vmdk(_ createType: String, extents: [String]) -> JSONValue {
        info(format: "vmdk", extra: ["format-specific": [
            "type": "vmdk",
            "data": ["create-type": .string(createType),
                     "extents": .array(extents.map { ["filename": .string($0), "format": "FLAT"] })],
        ]])
    }

    @Test func vmdkExtentsBesideTheDescriptorAreFine() throws {
        let source = DiskSource.file(path: "/srv/in/web.vmdk", format: .vmdk)
        let flat = try ImageInspection.inspect(Self.vmdk("monolithicFlat", extents: ["/srv/in/web-flat.vmdk"]), source: source).get()
        #expect(flat.vmdkCreateType == "monolithicFlat")
        let sparse = try ImageInspection.inspect(Self.vmdk("monolithicSparse", extents: ["/srv/in/web.vmdk"]), source: source).get()
        #expect(sparse.virtualSize == 67_108_864)
        let relative = DiskSource.file(path: "web.vmdk", format: .vmdk)
        #expect((try? ImageInspection.inspect(Self.vmdk("twoGbMaxExtentSparse", extents: ["./web-s001.vmdk", "./web-s002.vmdk"]),
                                              source: relative).get()) != nil)
    }

    @Test(arguments: ["/etc/shadow", "/srv/in/../../etc/shadow", "/srv/in/sub/x.vmdk", "json:{\"driver\":\"nbd\"}",
                      "/srv/in/", "/srv/inside.vmdk"])
    func vmdkExtentsElsewhereAreRefused(extent: String) {
        let source = DiskSource.file(path: "/srv/in/web.vmdk", format: .vmdk)
        let result = ImageInspection.inspect(Self.vmdk("monolithicFlat", extents: [extent]), source: source)
        #expect(result == .failure(.notSelfContained(path: "/srv/in/web.vmdk",
                                                     reason: "its descriptor names an extent outside its folder (\(extent))")))
    }

    @Test func anArchiveMemberMustBeASingleFileVMDK() throws {
        let member = DiskSource.archiveMember(archive: "/a.ova", offset: 512, size: 1024, format: .vmdk)
        let stream = try ImageInspection.inspect(Self.vmdk("streamOptimized", extents: ["json:{…}"]), source: member).get()
        #expect(stream.vmdkCreateType == "streamOptimized")
        let flat = ImageInspection.inspect(Self.vmdk("monolithicFlat", extents: ["/etc/passwd"]), source: member)
        #expect(flat == .failure(.notSelfContained(
            path: "/a.ova (bytes 512…1535)",
            reason: "a VMDK inside an archive must be one file (monolithicSparse or streamOptimized), this one is monolithicFlat")))
    }

    @Test func noVirtualSizeIsUnreadable() {
        let result = ImageInspection.inspect(["format": "raw"], source: .file(path: "x.img", format: .raw))
        #expect(result == .failure(.unreadable(path: "x.img", reason: "qemu-img info reports no virtual size")))
    }
}

@Suite struct CheckReportTests {
    @Test func cleanImageFromQemuImg72() throws {
        // `qemu-img check --output=json` of a fresh qcow2 (captured): no `corruptions` or `leaks` keys at all.
        let json: JSONValue = ["image-end-offset": 393_216, "total-clusters": 1024, "check-errors": 0,
                               "allocated-clusters": 1, "filename": "o.qcow2", "format": "qcow2"]
        let report = try #require(CheckReport(json))
        #expect(report.isClean && report.findings == "")
        #expect(report.totalClusters == 1024 && report.allocatedClusters == 1)
    }

    @Test func leaksAndCorruptionsAreNamed() throws {
        let report = try #require(CheckReport(["check-errors": 0, "corruptions": 1, "leaks": 3, "format": "qcow2"]))
        #expect(!report.isClean)
        #expect(report.findings == "1 corruption, 3 leaked clusters")
        #expect(ConvertError.checkFailed(path: "/v/web.qcow2", report: report).description
            == "/v/web.qcow2: qemu-img check found 1 corruption, 3 leaked clusters in the new image; it was not kept")
        #expect(try #require(CheckReport(["check-errors": 2])).findings == "2 check errors")
        #expect(CheckReport("not an object") == nil)
    }
}
