import CorralModel
import Import
import Profiles
import Testing

private func importOVF(_ xml: String, _ options: ImportOptions = ImportOptions(), diskDirectory: String = "",
                       sourceLocation: SourceLocation = #_sourceLocation) -> ImportResult? {
    do throws(ImportError) {
        return try OVFImport.importEnvelope(xml, options: options, diskDirectory: diskDirectory)
    } catch {
        Issue.record("import failed: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

private func ovfRefusal(_ xml: String) -> ImportError? {
    do throws(ImportError) {
        _ = try OVFImport.importEnvelope(xml)
        return nil
    } catch {
        return error
    }
}

/// A small envelope around `hardware` items (with the usual namespaces and one disk declared).
private func envelope(_ hardware: String, extra: String = "") -> String {
    """
    <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
      xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
      xmlns:vmw="http://www.vmware.com/schema/ovf">
      <References><File ovf:href="d.vmdk" ovf:id="f1"/></References>
      <DiskSection><Info>x</Info><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30"/></DiskSection>
      <VirtualSystem ovf:id="t">
        <Info>x</Info>
        <VirtualHardwareSection>
          <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
          \(hardware)
        </VirtualHardwareSection>
        \(extra)
      </VirtualSystem>
    </Envelope>
    """
}

private let memoryItem = "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity>"
    + "<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits></Item>"

@Suite struct OVFImportTests {
    static let vmdkURL = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
    static let item = "/Envelope/VirtualSystem/VirtualHardwareSection/Item"

    @Test func vmwareExport() throws {
        let result = try #require(importOVF(try Fixtures.text("vmware-web01.ovf"), diskDirectory: "/var/lib/corral/web01"))
        let profile = result.profile
        #expect(profile.name == "web01")
        #expect(profile.machine == "q35" && profile.accel == .kvm)
        #expect(profile.cpu == CPU(count: 4, max: 4, sockets: 2, cores: 2, threads: 1))
        #expect(profile.memory == Memory(size: .gib(4)))
        #expect(profile.boot.firmware == .uefi)
        #expect(profile.disks == [
            Disk(id: "disk0", file: "/var/lib/corral/web01/web01-disk1.qcow2", format: .qcow2, bus: .virtioBlk),
            Disk(id: "disk1", file: "/var/lib/corral/web01/web01-disk2.qcow2", format: .qcow2, bus: .virtioBlk),
        ])
        #expect(profile.nics == [NIC(id: "net0", mode: .user, model: .virtioNet)])
        #expect(result.disks == [
            ImportedDisk(id: "disk0", profileIndex: 0, source: "web01-disk1.vmdk", format: Self.vmdkURL,
                         profileFormat: nil, capacity: .gib(40), populatedSize: 3_221_225_472),
            ImportedDisk(id: "disk1", profileIndex: 1, source: "web01-disk2.vmdk", format: Self.vmdkURL,
                         profileFormat: nil, capacity: .gib(10)),
        ])
        #expect(result.disks.map(\.needsConversion) == [true, true])
        let item = Self.item
        #expect(Set(result.notes.map(\.path)) == [
            "/Envelope/References/File[3]", "/Envelope/VirtualSystem/Name",
            "/Envelope/VirtualSystem/OperatingSystemSection", "\(item)[3]", "\(item)[4]",
            "\(item)[4]/rasd:AddressOnParent", "\(item)[4]/rasd:HostResource", "\(item)[4]/vmw:Config",
            "\(item)[5]", "\(item)[5]/rasd:AddressOnParent", "\(item)[5]/rasd:HostResource",
            "\(item)[6]/rasd:AddressOnParent", "\(item)[6]/rasd:AutomaticAllocation", "\(item)[6]/rasd:Connection",
            "\(item)[6]/rasd:ResourceSubType", "\(item)[6]/vmw:Config", "\(item)[7]", "\(item)[8]",
            "/Envelope/VirtualSystem/VirtualHardwareSection/vmw:Config[2]", "/Envelope/VirtualSystem/AnnotationSection",
        ])
        let video = try #require(result.notes.first { $0.path == "\(item)[7]" })
        #expect(video.what == "graphics controller 'Video card'")
        let disk = try #require(result.notes.first { $0.path == "\(item)[4]/rasd:HostResource" })
        #expect(disk.what == "image web01-disk1.vmdk (vmdk streamOptimized)")
        #expect(disk.line == 62)
        // The written profile loads back.
        let loaded = try loadYAML(ProfileYAMLWriter.render(profile))
        #expect(loaded == profile)
    }

    @Test func virtualBoxExport() throws {
        let result = try #require(importOVF(try Fixtures.text("virtualbox-debian12.ovf")))
        let profile = result.profile
        #expect(profile.name == "debian-12")
        #expect(profile.cpu == CPU(count: 2))
        #expect(profile.memory.size == .gib(2))
        #expect(profile.boot.firmware == .uefi)
        #expect(profile.disks == [Disk(id: "disk0", file: "Debian12-disk001.qcow2", format: .qcow2, bus: .virtioBlk)])
        #expect(profile.nics == [NIC(id: "net0", mode: .user, mac: "08:00:27:a1:b2:c3", model: .e1000e)])
        #expect(result.disks.map(\.capacity) == [.gib(20)])
        #expect(result.disks.map(\.source) == ["Debian12-disk001.vmdk"])
        let item = Self.item
        #expect(Set(result.notes.map(\.path)) == [
            "/Envelope/DiskSection/Disk/@vbox:uuid", "/Envelope/VirtualSystem/@ovf:id",
            "/Envelope/VirtualSystem/OperatingSystemSection", "\(item)[3]", "\(item)[4]",
            "\(item)[5]/rasd:AutomaticAllocation", "\(item)[5]/rasd:Connection", "\(item)[5]/rasd:ResourceSubType",
            "\(item)[6]", "\(item)[6]/rasd:AddressOnParent", "\(item)[6]/rasd:HostResource", "\(item)[7]",
            "\(item)[8]", "/Envelope/VirtualSystem/vbox:Machine",
        ])
    }

    @Test func compatPicksNVMeAndE1000e() throws {
        let result = try #require(importOVF(try Fixtures.text("vmware-web01.ovf"), ImportOptions(compat: true)))
        #expect(result.profile.disks.map(\.bus) == [.nvme, .nvme])
        #expect(result.profile.nics.map(\.model) == [.e1000e])
        #expect(result.notes.contains { $0.path == "/Envelope/VirtualSystem" && $0.what == "compat" })
        // No "needs the virtio driver" notes under compat.
        #expect(!result.notes.contains { $0.path == "\(Self.item)[6]/rasd:ResourceSubType" })
        #expect(!result.notes.contains { $0.path == "\(Self.item)[4]" })
    }

    @Test(arguments: [
        ("byte * 2^20", "512", UInt64(512) << 20), ("byte*2^20", "512", UInt64(512) << 20),
        ("MegaBytes", "512", UInt64(512) << 20), ("KiloBytes", "1024", UInt64(1) << 20),
        ("GigaBytes", "2", UInt64(2) << 30), ("byte * 10^6", "1000", UInt64(1_000_000_000)),
        ("byte", "1073741824", UInt64(1) << 30), ("MB", "256", UInt64(256) << 20),
    ])
    func memoryUnits(_ unit: String, _ value: String, _ bytes: UInt64) throws {
        let memory = "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>\(value)</rasd:VirtualQuantity>"
            + "<rasd:AllocationUnits>\(unit)</rasd:AllocationUnits></Item>"
        let result = try #require(importOVF(envelope(memory)))
        #expect(result.profile.memory.size.bytes == bytes)
    }

    @Test func capacityUnitsAndFileReferences() throws {
        let disk = "<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>/disk/d1</rasd:HostResource></Item>"
        let result = try #require(importOVF(envelope(memoryItem + disk)))
        #expect(result.disks.map(\.capacity) == [.gib(1)])
        let byFile = "<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/file/f1</rasd:HostResource></Item>"
        let direct = try #require(importOVF(envelope(memoryItem + byFile)))
        #expect(direct.disks.map(\.source) == ["d.vmdk"] && direct.disks.map(\.capacity) == [nil])
        // The declared disk that no item attaches is reported.
        #expect(direct.notes.contains { $0.path == "/Envelope/DiskSection/Disk" })
    }

    @Test func refusalsNameTheXPath() throws {
        #expect(ovfRefusal("<domain/>")?.path == "/domain")
        let unknownDisk = "<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/nope</rasd:HostResource></Item>"
        #expect(ovfRefusal(envelope(memoryItem + unknownDisk))?.path == "\(Self.item)[3]/rasd:HostResource")
        let badUnit = "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity>"
            + "<rasd:AllocationUnits>furlongs</rasd:AllocationUnits></Item>"
        let unit = try #require(ovfRefusal(envelope(badUnit)))
        #expect(unit.path == "\(Self.item)[2]/rasd:AllocationUnits")
        #expect(unit.message.contains("byte * 2^N"))
        let noType = "<Item><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>"
        #expect(ovfRefusal(envelope(memoryItem + noType))?.path == "\(Self.item)[3]")
        let two = envelope(memoryItem).replacingOccurrences(of: "</Envelope>",
                                                            with: "<VirtualSystem ovf:id='u'/></Envelope>")
        #expect(ovfRefusal(two)?.path == "/Envelope/VirtualSystem[2]")
        let nics = String(repeating: "<Item><rasd:ResourceType>10</rasd:ResourceType></Item>", count: 17)
        #expect(ovfRefusal(envelope(memoryItem + nics))?.path == "\(Self.item)[19]")
        let doctype = try #require(ovfRefusal("<!DOCTYPE x [<!ENTITY e 'x'>]><Envelope/>"))
        #expect(doctype.xml?.kind == .doctype)
    }

    @Test func hrefsBecomeSafeFileNames() throws {
        let xml = envelope(memoryItem + "<Item><rasd:ResourceType>17</rasd:ResourceType>"
            + "<rasd:HostResource>ovf:/disk/d1</rasd:HostResource></Item>")
            .replacingOccurrences(of: "ovf:href=\"d.vmdk\"", with: "ovf:href=\"../../etc/pass wd.vmdk\"")
        let result = try #require(importOVF(xml, diskDirectory: "/vm/"))
        #expect(result.profile.disks.map(\.file) == ["/vm/passwd.qcow2"])
        #expect(result.disks.map(\.source) == ["../../etc/pass wd.vmdk"])
    }

    @Test func unknownItemsAndSettingsAreReported() throws {
        let xml = envelope(memoryItem + "<Item><rasd:ResourceType>23</rasd:ResourceType>"
            + "<rasd:ElementName>usb</rasd:ElementName></Item><Item><rasd:ResourceType>42</rasd:ResourceType></Item>"
            + "<vmw:Config vmw:key='firmware' vmw:value='bios'/><vmw:ExtraConfig vmw:key='a' vmw:value='b'/>",
            extra: "<ProductSection><Info>p</Info><Product>Thing</Product></ProductSection>")
        let result = try #require(importOVF(xml))
        #expect(result.profile.boot.firmware == .bios)
        #expect(result.notes.map(\.path) == [
            "/Envelope/References/File", "/Envelope/DiskSection/Disk", "\(Self.item)[3]", "\(Self.item)[4]",
            "/Envelope/VirtualSystem/VirtualHardwareSection/vmw:ExtraConfig[1]", "/Envelope/VirtualSystem/ProductSection",
        ])
        #expect(result.notes[2].what == "USB controller 'usb'")
        #expect(result.notes[3].what == "resource type 42")
    }

    @Test func nicAddressesAreMACsOrNoted() throws {
        let nics = "<Item><rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>virtio</rasd:ResourceSubType>"
            + "<rasd:Address>00:50:56:AA:BB:CC</rasd:Address></Item>"
            + "<Item><rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>E1000e</rasd:ResourceSubType>"
            + "<rasd:Address>7</rasd:Address></Item>"
        let result = try #require(importOVF(envelope(memoryItem + nics)))
        #expect(result.profile.nics == [NIC(id: "net0", mac: "00:50:56:aa:bb:cc", model: .virtioNet),
                                        NIC(id: "net1", model: .e1000e)])
        #expect(result.notes.map(\.path).filter { $0.hasPrefix(Self.item) } == ["\(Self.item)[4]/rasd:Address"])
    }

    @Test func twoDisksFromOneImageGetTwoFiles() throws {
        let disk = "<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/d1</rasd:HostResource></Item>"
        let result = try #require(importOVF(envelope(memoryItem + disk + disk), diskDirectory: "/vm"))
        #expect(result.profile.disks.map(\.file) == ["/vm/d.qcow2", "/vm/disk1-d.qcow2"])
        #expect(result.disks.map(\.source) == ["d.vmdk", "d.vmdk"])
    }

    @Test func aNameGivenReplacesTheEnvelopes() throws {
        let result = try #require(importOVF(try Fixtures.text("vmware-web01.ovf"), ImportOptions(name: "front")))
        #expect(result.profile.name == "front")
        let note = try #require(result.notes.first { $0.path == "/Envelope/VirtualSystem/Name" })
        #expect(note.what == "name 'Web01'" && note.action == "named 'front' as asked")
    }

    @Test func malformedDeclarationsAndForeignSettingsAreNoted() throws {
        let xml = envelope(memoryItem + "<x:Config xmlns:x='urn:other' x:key='firmware' x:value='efi'/>")
            .replacingOccurrences(of: "<References>", with: "<References><File ovf:href='orphan.iso'/>")
            .replacingOccurrences(of: "</DiskSection>", with: "<Disk ovf:capacity='1'/></DiskSection>")
        let result = try #require(importOVF(xml))
        #expect(result.profile.boot.firmware == .bios)
        let paths = Set(result.notes.map(\.path))
        #expect(paths.isSuperset(of: ["/Envelope/References/File[1]", "/Envelope/DiskSection/Disk[2]",
                                      "/Envelope/VirtualSystem/VirtualHardwareSection/x:Config[1]"]))
    }
}
