import Foundation
import CorralModel
import Testing
@testable import Profiles

@Suite struct DecodingTests {
    @Test func everyKeyIsDecoded() throws {
        let text = """
            name: full
            machine: pc-i440fx-8.2
            accel: kvm
            cpu: { model: Skylake-Server-v4, count: 2, max: 8, sockets: 2, cores: 2, threads: 2 }
            memory: { size: 1G, max: 4G, slots: 4, balloon: { min: 768M, freePageReporting: false } }
            boot: { kernel: ./vmlinuz, initrd: ./initrd.img, cmdline: "console=ttyS0 quiet", firmware: uefi }
            disks:
              - { id: root, file: ./root.qcow2, format: qcow2, size: 20G, bus: virtio-blk, cache: none, readonly: false, discard: true }
              - { id: iso, file: /isos/install.iso, format: raw, bus: nvme, cache: writethrough, readonly: true }
              - { id: scratch, file: scratch.bin, format: raw, size: 1.5G, bus: virtio-scsi, cache: unsafe }
            nics:
              - { id: net0, mode: user, mac: "52:54:00:12:34:56", model: virtio-net }
              - { id: tap0, mode: tap, ifname: tap-web0, model: e1000e }
              - { id: br0nic, mode: bridge, bridge: br0 }
            hotplug: { slots: 8 }
            serial: none
            restart: always
            qemu: { binary: /opt/qemu/bin/qemu-system-x86_64 }
            """
        let profile = try #require(loadValid(
            "full.yaml", files: ["/vm/full.yaml": text],
            existing: ["/vm/vmlinuz", "/vm/initrd.img", "/isos/install.iso", "/vm/scratch.bin"]))
        let expected = Profile(
            name: "full", machine: "pc-i440fx-8.2", accel: .kvm,
            cpu: CPU(model: "Skylake-Server-v4", count: 2, max: 8, sockets: 2, cores: 2, threads: 2),
            memory: Memory(size: .gib(1), max: .gib(4), slots: 4,
                           balloon: Balloon(min: .mib(768), freePageReporting: false)),
            boot: Boot(kernel: "/vm/vmlinuz", initrd: "/vm/initrd.img", cmdline: "console=ttyS0 quiet",
                       firmware: .uefi),
            disks: [
                Disk(id: "root", file: "/vm/root.qcow2", format: .qcow2, size: .gib(20), bus: .virtioBlk,
                     cache: CacheMode.none, readonly: false, discard: true),
                Disk(id: "iso", file: "/isos/install.iso", format: .raw, size: nil, bus: .nvme,
                     cache: .writethrough, readonly: true, discard: false),
                Disk(id: "scratch", file: "/vm/scratch.bin", format: .raw, size: .mib(1536), bus: .virtioSCSI,
                     cache: .unsafe),
            ],
            nics: [
                NIC(id: "net0", mode: .user, mac: "52:54:00:12:34:56", model: .virtioNet),
                NIC(id: "tap0", mode: .tap, model: .e1000e, ifname: "tap-web0"),
                NIC(id: "br0nic", mode: .bridge, bridge: "br0"),
            ],
            hotplug: Hotplug(slots: 8), serial: SerialMode.none, restart: .always,
            qemu: QEMUSettings(binary: "/opt/qemu/bin/qemu-system-x86_64"))
        #expect(profile == expected)
    }

    @Test func defaultsAreFilledIn() throws {
        let profile = try #require(loadValid("m.yaml", files: ["/vm/m.yaml": "name: m\nmemory: { size: 512M }\n"]))
        #expect(profile == Profile(name: "m", memory: Memory(size: .mib(512))))
        #expect(profile.machine == "q35")
        #expect(profile.accel == .auto)
        #expect(profile.cpu == CPU(model: nil, count: 1, max: 1))
        #expect(profile.memory.max == nil)
        #expect(profile.memory.slots == 0)
        #expect(profile.memory.balloon == nil)
        #expect(profile.boot == Boot(kernel: nil, initrd: nil, cmdline: nil, firmware: .bios))
        #expect(profile.disks.isEmpty && profile.nics.isEmpty)
        #expect(profile.hotplug.slots == 0)
        #expect(profile.serial == .log)
        #expect(profile.restart == .no)
        #expect(profile.qemu.binary == "qemu-system-x86_64")
    }

    @Test func cpuMaxDefaultsToCount() throws {
        let profile = try #require(loadValid("c.yaml", files: ["/vm/c.yaml": "name: c\nmemory: 1G\ncpu: { count: 3 }"]))
        #expect(profile.cpu.count == 3)
        #expect(profile.cpu.max == 3)
    }

    @Test func deviceDefaults() throws {
        let text = """
            name: d
            memory: 1G
            disks:
              - { file: a.img, size: 1G }
              - { file: b.RAW, size: 1G }
              - { file: c.qcow2, size: 1G }
              - { file: d, size: 1G }
            nics:
              - {}
              - { mac: "52:54:00:AA:BB:CC" }
            """
        let profile = try #require(loadValid("d.yaml", files: ["/vm/d.yaml": text]))
        #expect(profile.disks.map(\.id) == ["disk0", "disk1", "disk2", "disk3"])
        #expect(profile.disks.map(\.format) == [.raw, .raw, .qcow2, .qcow2])
        #expect(profile.disks[0] == Disk(id: "disk0", file: "/vm/a.img", format: .raw, size: .gib(1),
                                         bus: .virtioBlk, cache: CacheMode.none, readonly: false, discard: false))
        #expect(profile.nics == [
            NIC(id: "net0", mode: .user, mac: nil, model: .virtioNet),
            NIC(id: "net1", mac: "52:54:00:aa:bb:cc"),
        ])
    }

    @Test func shorthandForms() throws {
        let text = """
            name: s
            memory: 2G
            cpu: 4
            hotplug: 6
            """
        let profile = try #require(loadValid("s.yaml", files: ["/vm/s.yaml": text]))
        #expect(profile.memory == Memory(size: .gib(2)))
        #expect(profile.cpu == CPU(count: 4, max: 4))
        #expect(profile.hotplug.slots == 6)
    }

    @Test func balloonShorthands() throws {
        let on = try #require(loadValid("b.yaml", files: ["/vm/b.yaml": "name: b\nmemory: { size: 1G, balloon: true }"]))
        #expect(on.memory.balloon == Balloon(min: .mib(512), freePageReporting: true))
        let off = try #require(loadValid("b.yaml", files: ["/vm/b.yaml": "name: b\nmemory: { size: 1G, balloon: false }"]))
        #expect(off.memory.balloon == nil)
        let partial = try #require(loadValid(
            "b.yaml", files: ["/vm/b.yaml": "name: b\nmemory: { size: 3G, balloon: { freePageReporting: false } }"]))
        #expect(partial.memory.balloon == Balloon(min: ByteSize(bytes: 3 << 29), freePageReporting: false))
    }

    @Test(arguments: [
        ("512M", ByteSize.mib(512)), ("2GiB", .gib(2)), ("1.5G", .mib(1536)), ("4096K", .mib(4)),
        ("1T", ByteSize(bytes: 1 << 40)), ("2048MiB", .gib(2)),
    ])
    func sizes(text: String, expected: ByteSize) throws {
        let profile = try #require(loadValid("s.yaml", files: ["/vm/s.yaml": "name: s\nmemory: { size: \(text) }"]))
        #expect(profile.memory.size == expected)
    }

    @Test func sizeErrorsCarryByteSizeText() {
        #expect(diagnostics("s.yaml", files: ["/vm/s.yaml": "name: s\nmemory: { size: 1024 }"])
            == ["s.yaml:2:17: memory.size: '1024' has no unit; write e.g. 1024M or 1024G (K, M, G, T are binary)"])
        #expect(diagnostics("s.yaml", files: ["/vm/s.yaml": "name: s\nmemory: 2PB"])
            == ["s.yaml:2:9: memory: '2PB' has an unknown unit; use K, M, G, T (or KiB, MiB, GiB, TiB)"])
    }

    @Test func relativePathsResolveAgainstTheDeclaringFile() throws {
        let text = """
            name: p
            memory: 1G
            boot: { kernel: ../kernels/./vmlinuz, initrd: /abs//initrd.img }
            disks:
              - { file: ../images/root.qcow2, size: 1G }
              - { file: sub/dir/../data.qcow2, size: 1G }
            """
        let profile = try #require(loadValid(
            "/srv/corral/profiles/p.yaml", files: ["/srv/corral/profiles/p.yaml": text],
            existing: ["/srv/corral/kernels/vmlinuz", "/abs/initrd.img"]))
        #expect(profile.boot.kernel == "/srv/corral/kernels/vmlinuz")
        #expect(profile.boot.initrd == "/abs/initrd.img")
        #expect(profile.disks.map(\.file) == ["/srv/corral/images/root.qcow2", "/srv/corral/profiles/sub/data.qcow2"])
    }

    @Test func aRelativeTopPathIsReadFromTheCurrentDirectoryAndShownAsGiven() {
        let files = ["/home/op/profiles/web.yaml": "name: web\nmemory: 1G\ncpus: 2\n"]
        let found = diagnostics("profiles/web.yaml", files: files, currentDirectory: "/home/op")
        #expect(found == ["profiles/web.yaml:3:1: unknown key 'cpus'; did you mean 'cpu'?"])
        let result = load("./profiles/../profiles/web.yaml", files: ["/home/op/profiles/web.yaml": "name: web\nmemory: 1G"],
                          currentDirectory: "/home/op")
        #expect((try? result.get())?.name == "web")
    }

    @Test func nullMeansNotGiven() throws {
        let profile = try #require(loadValid("n.yaml", files: ["/vm/n.yaml": "name: n\nmemory: 1G\naccel: ~\ncpu:\n"]))
        #expect(profile.accel == .auto)
        #expect(profile.cpu == CPU())
    }

    @Test func quotedScalarsAreStringsNotNumbersOrBooleans() {
        let text = "name: q\nmemory: 1G\ncpu: { count: \"2\" }\ndisks: [{ file: a.qcow2, size: 1G, readonly: \"true\" }]"
        #expect(diagnostics("q.yaml", files: ["/vm/q.yaml": text]) == [
            "q.yaml:3:15: cpu.count: expected an integer, got '2'",
            "q.yaml:4:46: disks[0].readonly: expected true or false, got 'true'",
        ])
    }

    // MARK: - Strict decoding errors

    @Test func unknownKeysSuggestTheNearestKey() {
        let text = """
            name: u
            memory: { size: 1G, balon: true }
            disks: [{ file: a.qcow2, size: 1G, chache: none }]
            boot: { kernal: ./vmlinuz }
            nics: [{ mdoe: user }]
            memory2: 1G
            """
        #expect(diagnostics("u.yaml", files: ["/vm/u.yaml": text], checkFiles: false) == [
            "u.yaml:2:21: memory: unknown key 'balon'; did you mean 'balloon'?",
            "u.yaml:3:36: disks[0]: unknown key 'chache'; did you mean 'cache'?",
            "u.yaml:4:9: boot: unknown key 'kernal'; did you mean 'kernel'?",
            "u.yaml:5:10: nics[0]: unknown key 'mdoe'; did you mean 'mode'?",
            "u.yaml:6:1: unknown key 'memory2'; did you mean 'memory'?",
        ])
    }

    @Test func theAgentChannelIsABoolean() throws {
        let on = try #require(loadValid("a.yaml", files: ["/vm/a.yaml": "name: a\nmemory: 1G\nagent: true\n"]))
        #expect(on.agent)
        let off = try #require(loadValid("b.yaml", files: ["/vm/b.yaml": "name: b\nmemory: 1G\n"]))
        #expect(!off.agent, "off unless asked for")
        #expect(diagnostics("c.yaml", files: ["/vm/c.yaml": "name: c\nmemory: 1G\nagent: yes\n"]) == [
            "c.yaml:3:8: agent: expected true or false, got 'yes'",
        ])
        #expect(diagnostics("d.yaml", files: ["/vm/d.yaml": "name: d\nmemory: 1G\nagent: { enabled: true }\n"]) == [
            "d.yaml:3:8: agent: expected true or false, got a mapping",
        ])
    }

    /// A NUL byte (YAML's "\0") would cut argv[0] or a disk path at exec or open; found by the liveconfig fuzz target
    /// for `qemu.binary`. The boot paths and command line have the same check.
    @Test func aNULByteInTheBinaryOrADiskPathIsRefused() {
        let text = "name: n\nmemory: 1G\nqemu: { binary: \"qemu\\0x\" }\ndisks: [ { id: d, file: \"/vm/a\\0b\", size: 1G } ]\n"
        #expect(diagnostics("n.yaml", files: ["/vm/n.yaml": text]).map { $0.components(separatedBy: ": ").dropFirst().joined(separator: ": ") } == [
            "qemu.binary: must not contain a NUL byte",
            "disks[0].file: must not contain a NUL byte",
        ])
    }

    @Test func haIsABooleanOffByDefault() throws {
        let on = try #require(loadValid("a.yaml", files: ["/vm/a.yaml": "name: a\nmemory: 1G\nha: true\n"]))
        #expect(on.ha)
        let off = try #require(loadValid("b.yaml", files: ["/vm/b.yaml": "name: b\nmemory: 1G\n"]))
        #expect(!off.ha)
        #expect(diagnostics("c.yaml", files: ["/vm/c.yaml": "name: c\nmemory: 1G\nha: 1\n"]) == [
            "c.yaml:3:5: ha: expected true or false, got '1'",
        ])
    }

    @Test func unknownKeyFarFromAnyKnownKeyListsTheAllowedKeys() {
        let text = "name: u\nmemory: { size: 1G, balloon: { limit: 1G } }"
        #expect(diagnostics("u.yaml", files: ["/vm/u.yaml": text]) == [
            "u.yaml:2:32: memory.balloon: unknown key 'limit'; expected one of min, freePageReporting",
        ])
    }

    @Test func wrongTypesNameTheExpectedType() {
        let text = """
            name: [a, b]
            memory: { size: 1G, slots: many }
            cpu: { count: { n: 2 } }
            disks: { root: a.qcow2 }
            nics: [ user ]
            hotplug: [8]
            boot: { kernel: [a] }
            qemu: qemu-system-x86_64
            """
        #expect(diagnostics("t.yaml", files: ["/vm/t.yaml": text]) == [
            "t.yaml:1:7: name: expected a string, got a list",
            "t.yaml:2:28: memory.slots: expected an integer, got 'many'",
            "t.yaml:3:15: cpu.count: expected an integer, got a mapping",
            "t.yaml:4:8: disks: expected a list, got a mapping",
            "t.yaml:5:9: nics[0]: expected a mapping, got 'user'",
            "t.yaml:6:10: hotplug: expected a mapping or an integer, got a list",
            "t.yaml:7:17: boot.kernel: expected a file path, got a list",
            "t.yaml:8:7: qemu: expected a mapping, got 'qemu-system-x86_64'",
        ])
    }

    @Test func enumValuesListTheAllowedValues() {
        let text = """
            name: e
            memory: 1G
            accel: xen
            boot: { firmware: efi }
            disks: [{ file: a, size: 1G, format: vmdk, cache: wb }]
            nics: [{ mode: vde, model: rtl8139, macvtapMode: source }]
            """
        #expect(diagnostics("e.yaml", files: ["/vm/e.yaml": text]) == [
            "e.yaml:3:8: accel: 'xen' is not one of kvm, tcg, auto",
            "e.yaml:4:19: boot.firmware: 'efi' is not one of bios, uefi",
            "e.yaml:5:38: disks[0].format: 'vmdk' is not one of qcow2, raw",
            "e.yaml:5:51: disks[0].cache: 'wb' is not one of none, writeback, writethrough, directsync, unsafe",
            "e.yaml:6:16: nics[0].mode: 'vde' is not one of user, tap, bridge, macvtap, network",
            "e.yaml:6:28: nics[0].model: 'rtl8139' is not one of virtio-net, e1000e",
            "e.yaml:6:50: nics[0].macvtapMode: 'source' is not one of bridge, vepa, private, passthru",
        ])
    }

    @Test func missingRequiredKeys() {
        #expect(diagnostics("r.yaml", files: ["/vm/r.yaml": "accel: kvm\n"]) == [
            "r.yaml:1:1: missing required key 'name'",
            "r.yaml:1:1: missing required key 'memory'",
        ])
        #expect(diagnostics("r.yaml", files: ["/vm/r.yaml": "name: r\nmemory: { max: 2G }\ndisks: [{ id: a }]"]) == [
            "r.yaml:2:9: memory: missing required key 'size'",
            "r.yaml:3:9: disks[0]: give file (an image), size (a new volume corral keeps in the VM's folder), or both "
                + "(an image created with that size)",
        ])
    }

    // MARK: - Document-level problems

    @Test func yamlSyntaxErrorsHaveAPosition() {
        let found = diagnostics("y.yaml", files: ["/vm/y.yaml": "name: y\nmemory: [1G\n"])
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("y.yaml:3:1: invalid YAML: ") == true)
    }

    @Test func duplicateKeysAreRejected() {
        #expect(diagnostics("y.yaml", files: ["/vm/y.yaml": "name: y\nmemory: 1G\nname: z\n"])
            == ["y.yaml:1:1: duplicate key 'name'"])
    }

    @Test func emptyAndNonMappingDocuments() {
        #expect(diagnostics("e.yaml", files: ["/vm/e.yaml": "# nothing\n"]) == ["e.yaml: the profile is empty"])
        #expect(diagnostics("e.yaml", files: ["/vm/e.yaml": "- a\n- b\n"])
            == ["e.yaml:1:1: expected a mapping of profile keys, got a list"])
    }

    @Test func unreadableTopFile() {
        #expect(diagnostics("nope.yaml", files: [:])
            == ["nope.yaml: cannot read the profile: no such file: /vm/nope.yaml"])
    }

    /// The real file system's reasons, in words (Foundation's "Error Domain=NSCocoaErrorDomain Code=260" is not).
    @Test func localFilesThatCannotBeReadSayWhy() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/corral-read-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder + "/sub.yaml", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data([0x6e, 0x61, 0xff, 0xfe]).write(to: URL(fileURLWithPath: folder + "/bin.yaml"))
        let source = LocalFileSource()
        #expect(throws: LocalFileSource.ReadError(description: "no such file: \(folder)/missing.yaml")) {
            try source.read(folder + "/missing.yaml")
        }
        #expect(throws: LocalFileSource.ReadError(description: "\(folder)/sub.yaml is a folder, not a file")) {
            try source.read(folder + "/sub.yaml")
        }
        #expect(throws: LocalFileSource.ReadError(description: "\(folder)/bin.yaml is not UTF-8 text")) {
            try source.read(folder + "/bin.yaml")
        }
    }

    @Test func editDistance() {
        #expect(EditDistance.between("cpus", "cpu") == 1)
        #expect(EditDistance.between("kitten", "sitting") == 3)
        #expect(EditDistance.between("", "abc") == 3)
        #expect(EditDistance.between("same", "same") == 0)
    }

    @Test func pathNormalization() {
        #expect(PathText.normalize("/a/./b/../c//d/") == "/a/c/d")
        #expect(PathText.normalize("/../x") == "/x")
        #expect(PathText.normalize("../a/../../b") == "../../b")
        #expect(PathText.normalize("./") == ".")
        #expect(PathText.resolve("x.yaml", against: "") == "x.yaml")
        #expect(PathText.directory(of: "/f") == "/")
        #expect(PathText.directory(of: "f") == "")
    }
}
