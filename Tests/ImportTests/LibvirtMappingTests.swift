import CorralModel
import Import
import Profiles
import Testing

/// A domain with `body` inside (name, memory and vcpu given unless `bare`).
private func domain(_ body: String, type: String = "kvm", bare: Bool = false) -> String {
    let head = bare ? "" : "<name>t</name><memory unit='MiB'>1024</memory><vcpu>2</vcpu>"
    return "<domain type='\(type)'>\(head)\(body)</domain>"
}

private func notePaths(_ result: ImportResult?) -> [String] { result?.notes.map(\.path) ?? [] }

/// The pure mapping on hand-written documents (no libvirt in between).
@Suite struct LibvirtMappingTests {
    static let units: [(String, String, UInt64)] = [
        ("4096", "b", 4096), ("4096", "bytes", 4096), ("2", "KB", 2000), ("2", "k", 2048), ("2", "KiB", 2048),
        ("3", "MB", 3_000_000), ("3", "M", 3 << 20), ("3", "MiB", 3 << 20), ("1", "GB", 1_000_000_000),
        ("1", "G", 1 << 30), ("1", "GiB", 1 << 30), ("1", "TB", 1_000_000_000_000), ("1", "T", 1 << 40),
        ("1", "TiB", 1 << 40), ("1", "g", 1 << 30), ("1", "gib", 1 << 30), ("1", "PiB", 1 << 50),
    ]

    @Test(arguments: units)
    func everyUnitSpelling(_ value: String, _ unit: String, _ bytes: UInt64) throws {
        let result = try #require(importDomain(domain("<memory unit='\(unit)'>\(value)</memory><vcpu>1</vcpu>"
            + "<name>u</name>", bare: true)))
        #expect(result.profile.memory.size.bytes == bytes)
    }

    @Test func theDefaultUnitIsKiB() throws {
        let result = try #require(importDomain(domain("<name>u</name><memory>1048576</memory>", bare: true)))
        #expect(result.profile.memory.size == .gib(1))
    }

    @Test func unitsFixtureAsWritten() throws {
        let result = try #require(importDomain(try Fixtures.text("units.xml")))
        #expect(result.profile.memory.size == .gib(3))
        #expect(result.profile.memory.max == .gib(6) && result.profile.memory.slots == 2)
        let current = try #require(result.notes.first { $0.path == "/domain/currentMemory" })
        #expect(current.what == "currentMemory \(ByteSize(bytes: 3_000_000_000))")
        #expect(current.line == 5)
    }

    @Test func badSizesAreRefusedNamingTheAttribute() throws {
        let unit = try #require(domainRefusal(domain("<memory unit='KiBs'>1</memory><name>u</name>", bare: true)))
        #expect(unit.path == "/domain/memory/@unit")
        #expect(unit.message.contains("b, bytes, k, KiB, KB"))
        #expect(domainRefusal(domain("<memory unit='EiB'>99</memory><name>u</name>", bare: true))?.path
            == "/domain/memory")
        #expect(domainRefusal(domain("<memory>-1</memory><name>u</name>", bare: true))?.path == "/domain/memory")
        #expect(domainRefusal(domain("<name>u</name>", bare: true))?.path == "/domain")
    }

    @Test func documentsThatAreNotDomainsAreRefused() throws {
        #expect(domainRefusal("<network><name>x</name></network>")?.path == "/network")
        #expect(domainRefusal(domain("", type: "xen"))?.path == "/domain/@type")
        let doctype = try #require(domainRefusal("<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\n<domain/>"))
        #expect(doctype.xml?.kind == .doctype)
        #expect(doctype.line == 1 && doctype.path.isEmpty)
        #expect(domainRefusal("<domain type='kvm'><name>x</name>")?.xml?.kind == .unexpectedEnd)
        #expect(domainRefusal(domain("<name>u</name><memory>1024</memory><vcpu>many</vcpu>", bare: true))?.path
            == "/domain/vcpu")
    }

    @Test func validatorProblemsNameTheXPath() throws {
        let mac = try #require(domainRefusal(domain(
            "<devices><interface type='user'/><interface type='user'><mac address='01:00:5e:00:00:01'/>"
                + "<model type='virtio'/></interface></devices>")))
        #expect(mac.path == "/domain/devices/interface[2]/mac")
        #expect(mac.message.contains("nics[1].mac"))
        let model = try #require(domainRefusal(domain("<cpu mode='custom'><model>Sky lake</model></cpu>")))
        #expect(model.path == "/domain/cpu/model")
        let topology = try #require(domainRefusal(domain("<cpu><topology sockets='1' cores='3' threads='1'/></cpu>")))
        #expect(topology.path == "/domain/vcpu")
    }

    @Test func deviceCountsAreBounded() throws {
        let disk = "<disk type='file'><driver type='raw'/><source file='/i/%d.raw'/><target dev='vd%d'/></disk>"
        var disks = ""
        for i in 0..<25 {
            disks += disk.replacingOccurrences(of: "%d", with: String(i))
        }
        let error = try #require(domainRefusal(domain("<devices>\(disks)</devices>")))
        #expect(error.path == "/domain/devices/disk[25]")
        let nics = String(repeating: "<interface type='user'/>", count: 17)
        #expect(domainRefusal(domain("<devices>\(nics)</devices>"))?.path == "/domain/devices/interface[17]")
    }

    @Test func singleCPUPinsAreCarried() throws {
        let result = try #require(importDomain(domain(
            "<cputune><vcpupin vcpu='1' cpuset='7'/><vcpupin vcpu='0' cpuset='6'/></cputune>")))
        #expect(result.profile.cpu.pinning == [6, 7])
        #expect(!notePaths(result).contains { $0.hasPrefix("/domain/cputune") })
        // A gap (vCPU 1 unpinned) cannot be written as cpu.pinning.
        let gap = try #require(importDomain(domain("<cputune><vcpupin vcpu='0' cpuset='6'/>"
            + "<vcpupin vcpu='2' cpuset='7'/></cputune><vcpu>3</vcpu>", bare: false).replacingOccurrences(
                of: "<vcpu>2</vcpu>", with: "")))
        #expect(gap.profile.cpu.pinning.isEmpty)
        #expect(notePaths(gap).filter { $0.hasPrefix("/domain/cputune") }
            == ["/domain/cputune/vcpupin[1]/@cpuset", "/domain/cputune/vcpupin[2]/@cpuset"])
    }

    @Test func quotasAndShares() throws {
        let perVCPU = try #require(importDomain(domain("<cputune><quota>25000</quota><period>50000</period>"
            + "<shares>512</shares></cputune>")))
        #expect(perVCPU.profile.overcommit == Overcommit(cpuWeight: 50, cpuQuotaPercent: 100))
        let global = try #require(importDomain(domain("<cputune><global_quota>150000</global_quota>"
            + "<global_period>100000</global_period><quota>-1</quota></cputune>")))
        #expect(global.profile.overcommit.cpuQuotaPercent == 150)
        let defaults = try #require(importDomain(domain("<cputune><shares>1024</shares></cputune>")))
        #expect(defaults.profile.overcommit == Overcommit())
        let huge = try #require(importDomain(domain("<cputune><shares>262144</shares></cputune>")))
        #expect(huge.profile.overcommit.cpuWeight == 10_000)
    }

    @Test func disksOfEveryKind() throws {
        let result = try #require(importDomain(domain("""
            <devices>
              <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vda'/></disk>
              <disk type='file' device='disk'><source file='/i/a.img'/><target dev='sda' bus='sata'/></disk>
              <disk type='file' device='disk'><driver type='qcow2'/><source file='/i/b.qcow2'/>
                <target dev='sdb' bus='scsi'/></disk>
              <disk type='file' device='floppy'><source file='/i/f.img'/><target dev='fda'/></disk>
              <disk type='file' device='disk'><driver type='vdi' cache='default'/><source file='/i/c.vdi'/>
                <target dev='vdc'/><shareable/></disk>
            </devices>
            """)))
        let disks = result.profile.disks
        #expect(disks.map(\.id) == ["sda", "sdb", "vdc"])
        #expect(disks.map(\.bus) == [.nvme, .virtioSCSI, .virtioBlk])
        #expect(disks.map(\.format) == [.raw, .qcow2, .qcow2])
        #expect(disks[2].file == "/i/c.qcow2")
        #expect(result.disks.map(\.source) == ["/i/a.img", "/i/b.qcow2", "/i/c.vdi"])
        #expect(result.disks.map(\.profileFormat) == [.raw, .qcow2, nil])
        #expect(Set(notePaths(result)) == [
            "/domain/devices/disk[1]", "/domain/devices/disk[2]", "/domain/devices/disk[2]/target/@bus",
            "/domain/devices/disk[3]/target/@bus", "/domain/devices/disk[4]", "/domain/devices/disk[5]/driver",
            "/domain/devices/disk[5]/driver/@cache", "/domain/devices/disk[5]/shareable",
        ])
    }

    @Test func interfacesOfEveryKind() throws {
        let result = try #require(importDomain(domain("""
            <devices>
              <interface type='ethernet'><target dev='tap9' managed='no'/><model type='virtio'/></interface>
              <interface type='direct'><source dev='eth1' mode='passthrough'/><model type='rtl8139'/></interface>
              <interface type='vhostuser'><source type='unix' path='/s' mode='client'/></interface>
              <interface type='user'><model type='virtio'/><driver name='vhost' queues='4'/></interface>
            </devices>
            """)))
        #expect(result.profile.nics == [
            NIC(id: "net0", mode: .tap, model: .virtioNet, ifname: "tap9"),
            NIC(id: "net1", mode: .macvtap, model: .e1000e, parent: "eth1", macvtapMode: .passthrough),
            NIC(id: "net2", mode: .user, model: .virtioNet),
        ])
        #expect(Set(notePaths(result)) == [
            "/domain/devices/interface[2]/model/@type", "/domain/devices/interface[3]",
            "/domain/devices/interface[4]/driver",
        ])
    }

    @Test func unknownElementsAndAttributesAreReported() throws {
        let result = try #require(importDomain(domain(
            "<frobnicate level='9'><x/></frobnicate><devices><watchdog model='i6300esb'/></devices>")
            .replacingOccurrences(of: "<vcpu>2</vcpu>", with: "<vcpu shiny='yes'>2</vcpu>")))
        let notes = result.notes
        #expect(notes.map(\.path) == ["/domain/vcpu/@shiny", "/domain/frobnicate", "/domain/devices/watchdog[1]"])
        #expect(notes[0].what == "shiny='yes'")
        #expect(notes[1].what == "<frobnicate level='9'>")
        #expect(notes[1].action == "not carried: corral has no equivalent; ignored")
        #expect(notes[2].action == "not carried: no watchdog device")
    }

    @Test func namesAreMadeValidOrOverridden() throws {
        let odd = try #require(importDomain(domain("").replacingOccurrences(of: "<name>t</name>",
                                                                              with: "<name>Win 10 (Büro)</name>")))
        #expect(odd.profile.name == "win-10-b-ro")
        #expect(notePaths(odd) == ["/domain/name"])
        let named = try #require(importDomain(domain(""), ImportOptions(name: "desk")))
        #expect(named.profile.name == "desk")
        #expect(domainRefusal(domain("").replacingOccurrences(of: "<name>t</name>", with: "<name>__</name>"))?.path
            == "/domain/name")
        #expect(domainRefusal(domain(""), ImportOptions(name: "Not Valid"))?.message.contains("name") == true)
    }

    @Test func firmwareAutoselectionAndBalloonSettings() throws {
        let result = try #require(importDomain(domain(
            "<os firmware='efi'><type machine='pc-q35-9.0'>hvm</type></os>"
                + "<devices><memballoon model='virtio' freePageReporting='off' autodeflate='on'/></devices>")))
        #expect(result.profile.boot.firmware == .uefi)
        #expect(result.profile.memory.balloon == Balloon(min: .mib(512), freePageReporting: false))
        #expect(notePaths(result) == ["/domain/os/type/@machine", "/domain/devices/memballoon[1]",
                                      "/domain/devices/memballoon[1]/@autodeflate"])
    }

    @Test func hostDevicesMakeTheMachineQ35AndDropTheBalloon() throws {
        let result = try #require(importDomain(domain("""
            <os><type machine='pc-i440fx-8.2'>hvm</type></os>
            <devices>
              <hostdev mode='subsystem' type='pci' managed='yes'><source><address bus='0x3' slot='0x0' function='0x1'/></source></hostdev>
              <memballoon model='virtio'/>
            </devices>
            """)))
        #expect(result.profile.machine == "q35")
        #expect(result.profile.memory.balloon == nil)
        #expect(result.profile.hostdevs.map(\.pci) == [PCIAddress(bus: 3, slot: 0, function: 1)])
        #expect(notePaths(result) == ["/domain/os/type/@machine", "/domain/os/type", "/domain/devices/memballoon[1]"])
    }

    @Test func duplicateTargetNamesGetDistinctIDs() throws {
        let disk = "<disk type='file'><driver type='raw'/><source file='/i/%d.raw'/><target dev='vda'/></disk>"
        let result = try #require(importDomain(domain("<devices>"
            + disk.replacingOccurrences(of: "%d", with: "a") + disk.replacingOccurrences(of: "%d", with: "b")
            + "</devices>")))
        #expect(result.profile.disks.map(\.id) == ["vda", "disk1"])
    }

    @Test func vncAndVideoBecomeTheDisplay() throws {
        let result = try #require(importDomain(domain("<devices><graphics type='vnc' port='5901' listen='0.0.0.0'/>"
            + "<video><model type='virtio' heads='1'/></video></devices>")))
        #expect(result.profile.display == Display(vga: .virtio, vnc: true))
        #expect(result.notes.map(\.path) == ["/domain/devices/graphics[1]", "/domain/devices/video[1]"])
        let none = try #require(importDomain(domain("<devices><video><model type='none'/></video></devices>")))
        #expect(none.profile.display == Display(vga: .none, vnc: false))
        let bare = try #require(importDomain(domain("<devices></devices>")))
        #expect(bare.profile.display == nil)
    }

    @Test func notesAreSafeToPrint() throws {
        let result = try #require(importDomain(domain("<devices><graphics type='vnc' passwd='a\u{9B}2J&#x85;b'/></devices>")))
        #expect(result.notes.map(\.what) == ["<graphics type='vnc' passwd='a\\u{9b}2J\\u{85}b'/>"])
    }

    @Test func pathsAreAbsoluteAndNormalized() throws {
        let relative = try #require(domainRefusal(domain("<os><type>hvm</type><kernel>boot/vmlinuz</kernel></os>")))
        #expect(relative.path == "/domain/os/kernel")
        #expect(relative.message == "'boot/vmlinuz' is not an absolute path")
        let disk = try #require(domainRefusal(domain(
            "<devices><disk type='file'><source file='x.qcow2'/><target dev='vda'/></disk></devices>")))
        #expect(disk.path == "/domain/devices/disk[1]/source/@file")
        let result = try #require(importDomain(domain("<os><type>hvm</type><kernel>/boot/../k//vmlinuz</kernel></os>"
            + "<devices><disk type='file'><driver type='qcow2'/><source file='/a/./b/../c.qcow2'/></disk></devices>")))
        #expect(result.profile.boot.kernel == "/k/vmlinuz")
        #expect(result.profile.disks.map(\.file) == ["/a/c.qcow2"])
        #expect(result.disks.map(\.source) == ["/a/c.qcow2"])
    }
}
