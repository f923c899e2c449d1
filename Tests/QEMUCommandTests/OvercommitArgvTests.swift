import JSON
import Profiles
import QEMUCommand
import Testing

/// `memory.merge`, `memory.hugepages` and `memory.lock` on the command line.
@Suite("argv: memory overcommit settings")
struct OvercommitArgvTests {
    static func build(_ profile: Profile, hotplugged: HotplugState = HotplugState()) -> [String] {
        QEMUArgv.build(LiveConfig(profile: profile, hotplugged: hotplugged), Fixture.runtime())
    }

    @Test("defaults leave the argv as it was: no mem-merge, no backend object, no -overcommit")
    func defaultsUnchanged() {
        let args = Self.build(Fixture.minimal())
        #expect(args.value(of: "-machine") == "q35")
        #expect(args.values(of: "-overcommit").isEmpty)
        #expect(args.values(of: "-object").isEmpty)
    }

    @Test("merge false → -machine TYPE,mem-merge=off (after pflash0)")
    func mergeOff() {
        var profile = Fixture.minimal()
        profile.memory.merge = false
        #expect(Self.build(profile).value(of: "-machine") == "q35,mem-merge=off")
        profile.boot.firmware = .uefi
        #expect(Self.build(profile).value(of: "-machine") == "q35,pflash0=ovmf-code,mem-merge=off")
    }

    @Test("lock → -overcommit mem-lock=on right after -m")
    func lock() throws {
        var profile = Fixture.minimal()
        profile.memory.lock = true
        let args = Self.build(profile)
        #expect(args.value(of: "-overcommit") == "mem-lock=on")
        let m = try #require(args.firstIndex(of: "-m"))
        #expect(Array(args[(m + 2)...(m + 3)]) == ["-overcommit", "mem-lock=on"])
    }

    @Test("hugepages → boot RAM from a private, preallocated memory-backend-file on /dev/hugepages")
    func hugepages() throws {
        var profile = Fixture.minimal()
        profile.memory = Memory(size: .gib(1), hugepages: true)
        let args = Self.build(profile)
        #expect(args.value(of: "-machine") == "q35,memory-backend=ram0")
        #expect(args.value(of: "-m") == "size=1024M")
        #expect(args.objects(of: "-object") == [[
            "qom-type": "memory-backend-file", "id": "ram0", "size": 1_073_741_824,
            "mem-path": "/dev/hugepages", "share": false, "prealloc": true,
        ]])
    }

    @Test("with hugepages, hotplugged DIMMs are hugetlbfs-backed too, after the boot RAM backend")
    func hugepagesWithDIMMs() {
        var profile = Fixture.minimal()
        profile.memory = Memory(size: .gib(1), max: .gib(2), slots: 2, merge: false, hugepages: true)
        let hotplugged = HotplugState(memory: [PluggedMemory(id: "m0", size: .mib(256))])
        let args = Self.build(profile, hotplugged: hotplugged)
        #expect(args.value(of: "-machine") == "q35,mem-merge=off,memory-backend=ram0")
        let objects = args.objects(of: "-object")
        #expect(objects.map { $0["id"] } == ["ram0", "mem-m0"])
        #expect(objects.last == [
            "qom-type": "memory-backend-file", "id": "mem-m0", "size": 268_435_456,
            "mem-path": "/dev/hugepages", "share": false, "prealloc": true,
        ])
    }

    @Test("DIMM backends stay memory-backend-ram without hugepages (hotplug calls the same builder)")
    func dimmBackendDefault() {
        let dimm = PluggedMemory(id: "m1", size: .mib(128))
        #expect(DeviceProps.memoryBackend(dimm)
            == ["qom-type": "memory-backend-ram", "id": "mem-m1", "size": .int(134_217_728)])
        #expect(DeviceProps.memoryBackend(dimm, hugepages: true)["qom-type"] == "memory-backend-file")
        #expect(DeviceProps.bootRAMBackend(Memory(size: .gib(1))) == nil)
    }
}
