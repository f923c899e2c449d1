import CorralModel
import Foundation
import Import
import Profiles
import QEMUCommand
import Testing

/// Each fixture goes through real libvirt first (`Virsh.dump`), so the importer sees what `virsh dumpxml` writes.
@Suite struct LibvirtFixtureTests {
    /// The notes' XPaths, as a set.
    func paths(_ result: ImportResult) -> Set<String> { Set(result.notes.map(\.path)) }

    /// The written YAML loads back to the same profile.
    func expectLoadsBack(_ result: ImportResult, sourceLocation: SourceLocation = #_sourceLocation) {
        let yaml = ProfileYAMLWriter.render(result.profile, header: ["imported"])
        do throws(ProfileErrors) {
            let loaded = try loadYAML(yaml)
            #expect(loaded == result.profile, "\(yaml)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("the imported profile does not load:\n\(error)\n\(yaml)", sourceLocation: sourceLocation)
        }
    }

    @Test func plainVirtio() throws {
        let result = try #require(importDomain(try Virsh.dump(fixture: "plain-virtio.xml")))
        let profile = result.profile
        #expect(profile.name == "plain-virtio")
        #expect(profile.machine == "q35" && profile.accel == .kvm)
        #expect(profile.cpu == CPU(model: "host", count: 2, max: 2))
        #expect(profile.memory == Memory(size: .gib(2), balloon: Balloon(min: .gib(1))))
        #expect(profile.boot == Boot())
        #expect(profile.disks == [Disk(id: "vda", file: "/var/lib/libvirt/images/plain-virtio.qcow2", format: .qcow2,
                                       bus: .virtioBlk, cache: .none, discard: true)])
        #expect(profile.nics == [NIC(id: "net0", mode: .bridge, mac: "52:54:00:6a:0b:01", model: .virtioNet,
                                     bridge: "br0", queues: 2, vhost: true)])
        #expect(profile.agent)
        #expect(result.disks == [ImportedDisk(id: "vda", profileIndex: 0,
                                              source: "/var/lib/libvirt/images/plain-virtio.qcow2", format: "qcow2",
                                              profileFormat: .qcow2)])
        #expect(paths(result) == [
            "/domain/uuid", "/domain/os/boot", "/domain/clock", "/domain/on_poweroff", "/domain/on_reboot",
            "/domain/on_crash", "/domain/devices/controller[1]", "/domain/devices/interface[1]/target",
            "/domain/devices/channel[1]", "/domain/devices/memballoon[1]",
        ])
        #expect(result.notes.map(\.line) == result.notes.map(\.line).sorted())
        expectLoadsBack(result)
    }

    @Test func plainVirtioWithCompat() throws {
        let result = try #require(importDomain(try Virsh.dump(fixture: "plain-virtio.xml"), ImportOptions(compat: true)))
        #expect(result.profile.disks.map(\.bus) == [.nvme])
        #expect(result.profile.nics.map(\.model) == [.e1000e])
        // vhost and queues belong to virtio-net.
        #expect(result.profile.nics[0].queues == nil && result.profile.nics[0].vhost == nil)
        #expect(paths(result).isSuperset(of: ["/domain/devices", "/domain/devices/interface[1]/driver"]))
        #expect(result.notes.first { $0.path == "/domain/devices" }?.what == "compat")
        expectLoadsBack(result)
    }

    @Test func uefiQ35() throws {
        let result = try #require(importDomain(try Virsh.dump(fixture: "uefi-q35.xml")))
        let profile = result.profile
        #expect(profile.name == "uefi-workstation")
        #expect(profile.machine == "q35")
        #expect(profile.boot.firmware == .uefi)
        #expect(profile.cpu == CPU(model: "host", count: 4, max: 8, sockets: 2, cores: 2, threads: 2))
        #expect(profile.memory == Memory(size: .gib(8), max: .gib(16), slots: 4, balloon: nil, hugepages: true))
        #expect(profile.overcommit == Overcommit(cpuWeight: 200, cpuQuotaPercent: 400))
        #expect(profile.disks == [
            Disk(id: "sda", file: "/srv/vm/workstation.raw", format: .raw, bus: .virtioSCSI, cache: .writeback),
            Disk(id: "vdb", file: "/dev/vg0/workstation-data", format: .raw, bus: .virtioBlk, readonly: true),
        ])
        let generatedMAC = try #require(profile.nics.last?.mac)
        #expect(profile.nics == [
            NIC(id: "net0", mode: .macvtap, mac: "52:54:00:aa:00:02", model: .virtioNet, parent: "enp3s0",
                macvtapMode: .vepa),
            NIC(id: "net1", mode: .network, mac: generatedMAC, model: .e1000e, network: "lab"),
        ])
        #expect(profile.hostdevs == [HostDevice(id: "hostdev0", pci: PCIAddress(bus: 0x65, slot: 0, function: 0),
                                                rombar: false)])
        #expect(profile.cpu.pinning.isEmpty)
        #expect(paths(result) == [
            "/domain/name", "/domain/uuid", "/domain/title", "/domain/memoryBacking", "/domain/cputune/shares",
            "/domain/cputune/quota", "/domain/cputune/vcpupin[1]/@cpuset", "/domain/cputune/vcpupin[2]/@cpuset",
            "/domain/os/type/@machine", "/domain/os/loader", "/domain/os/nvram", "/domain/os/boot", "/domain/features",
            "/domain/cpu/@check", "/domain/cpu/topology/@dies", "/domain/clock", "/domain/on_poweroff",
            "/domain/on_reboot", "/domain/on_crash", "/domain/devices/disk[1]/address",
            "/domain/devices/disk[2]/driver/@io", "/domain/devices/controller[1]",
            "/domain/devices/interface[1]/target", "/domain/devices/interface[2]/source/@network",
            "/domain/devices/interface[2]/target", "/domain/devices/interface[2]/model/@type",
        ])
        expectLoadsBack(result)
    }

    @Test func oldI440fx() throws {
        let result = try #require(importDomain(try Virsh.dump(fixture: "old-i440fx.xml")))
        let profile = result.profile
        #expect(profile.name == "old-desktop")
        #expect(profile.machine == "pc")
        #expect(profile.memory.size == .gib(1) && profile.memory.balloon == nil)
        // The VMware disk needs converting; the profile points at the qcow2 copy.
        #expect(profile.disks == [Disk(id: "hda", file: "/var/lib/libvirt/images/old-desktop.qcow2", format: .qcow2,
                                       bus: .nvme)])
        #expect(result.disks.map(\.needsConversion) == [true])
        #expect(result.disks.first?.source == "/var/lib/libvirt/images/old-desktop.vmdk")
        #expect(result.disks.first?.format == "vmdk")
        #expect(profile.nics == [NIC(id: "net0", mode: .user, mac: "52:54:00:12:34:56", model: .e1000e)])
        #expect(!profile.agent)
        #expect(paths(result) == [
            "/domain/uuid", "/domain/os/type/@machine", "/domain/os/boot[1]", "/domain/os/boot[2]", "/domain/features",
            "/domain/clock", "/domain/on_poweroff", "/domain/on_reboot", "/domain/on_crash",
            "/domain/devices/disk[1]/driver", "/domain/devices/disk[1]/target/@bus", "/domain/devices/disk[1]/address",
            "/domain/devices/disk[2]", "/domain/devices/controller[1]", "/domain/devices/controller[2]",
            "/domain/devices/controller[3]", "/domain/devices/interface[1]/target",
            "/domain/devices/interface[1]/model/@type", "/domain/devices/serial[1]", "/domain/devices/console[1]",
            "/domain/devices/channel[1]", "/domain/devices/input[1]", "/domain/devices/graphics[1]",
            "/domain/devices/sound[1]", "/domain/devices/video[1]",
        ])
        let graphics = try #require(result.notes.first { $0.path == "/domain/devices/graphics[1]" })
        #expect(graphics.what == "<graphics type='spice' autoport='yes'>")
        #expect(graphics.action.hasPrefix("display.vnc: true: corral serves VNC, not SPICE"))
        #expect(profile.display == Display(vga: .std, vnc: true), "qxl becomes std, spice a VNC display")
        #expect(result.notes.first { $0.path == "/domain/devices/video[1]" }?.action
            == "display.vga: std: corral offers std, virtio and bochs; qxl is not one")
        expectLoadsBack(result)
    }

    @Test func unitsAfterLibvirt() throws {
        let result = try #require(importDomain(try Virsh.dump(fixture: "units.xml")))
        let profile = result.profile
        #expect(profile.accel == .tcg && profile.machine == "pc")
        #expect(profile.cpu.model == "Skylake-Server-v4")
        #expect(profile.memory == Memory(size: .gib(3), max: .gib(6), slots: 2, balloon: Balloon(min: .mib(1536))))
        #expect(profile.boot == Boot(kernel: "/boot/vmlinuz-guest", initrd: "/boot/initrd-guest.img",
                                     cmdline: "console=ttyS0 root=/dev/vda1 quiet"))
        #expect(paths(result) == [
            "/domain/uuid", "/domain/currentMemory", "/domain/os/boot", "/domain/cpu/@match",
            "/domain/cpu/model/@fallback", "/domain/clock", "/domain/on_poweroff", "/domain/on_reboot",
            "/domain/on_crash", "/domain/devices/memballoon[1]", "/domain/devices/memballoon[1]/stats",
        ])
        expectLoadsBack(result)
    }

    /// The argv of the imported UEFI workstation: `Fixtures/uefi-q35.args`; `CORRAL_UPDATE_GOLDEN=1` rewrites it.
    @Test func uefiQ35Argv() throws {
        let result = try #require(importDomain(try Virsh.dump(fixture: "uefi-q35.xml")))
        var profile = result.profile
        // virsh makes up the second NIC's MAC; pin it so the argv is stable.
        profile.nics[1].mac = "52:54:00:00:00:0b"
        let runtime = RuntimeOptions(accel: .kvm, qmpSocket: "/run/corral/vms/\(profile.name)/qmp.sock",
                                     serialLog: "/var/lib/corral/vms/\(profile.name)/serial.log", vhostNet: true)
        let argv = QEMUArgv.build(LiveConfig(profile: profile), runtime)
        let actual = argv.map { $0.replacingOccurrences(of: "\n", with: "\\n") }.joined(separator: "\n") + "\n"
        let golden = Fixtures.directory + "/uefi-q35.args"
        if ProcessInfo.processInfo.environment["CORRAL_UPDATE_GOLDEN"] == "1" {
            try actual.write(toFile: golden, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: golden, encoding: .utf8)
        #expect(actual == expected, "argv differs from Fixtures/uefi-q35.args; rerun with CORRAL_UPDATE_GOLDEN=1 and review the diff")
        // The devices the domain had.
        #expect(argv.contains { $0.contains(#""driver":"vfio-pci""#) && $0.contains(#""host":"0000:65:00.0","rombar":0"#) })
        #expect(argv.contains { $0.contains(#""driver":"virtio-scsi-pci""#) })
        #expect(argv.contains { $0.contains(#""driver":"scsi-hd","id":"disk-sda""#) })
        #expect(argv.contains { $0.contains(#""driver":"virtio-blk-pci","id":"disk-vdb""#) })
        #expect(argv.contains { $0.contains(#""driver":"virtio-net-pci","id":"nic-net0""#) })
        #expect(argv.contains { $0.contains(#""driver":"e1000e","id":"nic-net1""#) })
        #expect(argv.contains { $0.contains("/dev/hugepages") })
        #expect(argv.contains { $0.contains("pflash0=") })
    }
}
