import CorralModel
import Foundation
import Profiles
import Testing

/// Profile files kept in memory; every other path exists (the writer's round trip is not about files).
struct MemorySource: ProfileSource {
    var files: [String: String]
    func read(_ absolutePath: String) throws -> String {
        guard let text = files[absolutePath] else { throw ReadFailure(path: absolutePath) }
        return text
    }
    func exists(_ absolutePath: String) -> Bool { true }
    func currentDirectory() -> String { "/import" }

    struct ReadFailure: Error { var path: String }
}

/// Loads YAML text as `/import/NAME.yaml`.
func loadYAML(_ text: String) throws(ProfileErrors) -> Profile {
    try ProfileLoader(checkFiles: false, source: MemorySource(files: ["/import/p.yaml": text])).load(path: "p.yaml")
}

enum Repository {
    /// Tests/ImportTests/X.swift → repository root.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

@Suite struct ProfileYAMLWriterTests {
    static var exampleNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.root + "/profiles")) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    @Test func theExamplesAreFound() {
        #expect(Self.exampleNames.count >= 8)
    }

    /// load → write → load gives the same profile, for every example.
    @Test(arguments: exampleNames)
    func everyExampleRoundTrips(_ name: String) throws {
        let loaded = try ProfileLoader(checkFiles: false).load(path: Repository.root + "/profiles/" + name)
        let yaml = ProfileYAMLWriter.render(loaded, header: ["from \(name)"])
        let again: Profile
        do throws(ProfileErrors) {
            again = try loadYAML(yaml)
        } catch {
            Issue.record("\(name) written as\n\(yaml)\ndoes not load:\n\(error)")
            return
        }
        #expect(again == loaded, "\(name) written as\n\(yaml)")
    }

    @Test func trickyStringsRoundTrip() throws {
        let tricky = ["yes", "no", "No", "null", "~", "true", "on", "0x1f", "0o17", "1e3", "12", "-1", ".inf", "*alias",
                      "&anchor", "!tag", "%d", "@at", "`tick", "a: b", "a #b", "#c", "- x", "? q", "[x]", "{x}", "'q'",
                      "\"dq\"", "back\\slash", " lead", "trail ", "tab\there", "new\nline", "cr\rhere", "nul\u{0}x",
                      "bell\u{7}", "ünï", "日本", "a\u{2028}b", "a\u{FEFF}b", "", "|", ">", "52:54:00:12:34:56",
                      "2021-01-01", "=", "<<"]
        for text in tricky {
            var profile = Profile(name: "t", memory: Memory(size: .gib(1)))
            profile.boot = Boot(kernel: "/k", cmdline: text)
            let yaml = ProfileYAMLWriter.render(profile)
            let loaded: Profile
            do throws(ProfileErrors) {
                loaded = try loadYAML(yaml)
            } catch {
                // The validator may refuse the value (NUL bytes, whitespace in a binary); the text must still read back.
                #expect(!error.diagnostics.contains { $0.message.contains("YAML") }, "\(text.debugDescription):\n\(yaml)")
                continue
            }
            #expect(loaded.boot.cmdline == text, "\(text.debugDescription) written as \(yaml)")
        }
    }

    @Test func pathsNamesAndMACsRoundTrip() throws {
        var profile = Profile(name: "yes", machine: "pc-i440fx-8.2", accel: .kvm,
                              cpu: CPU(model: "Skylake-Server-v4", count: 2, max: 4, sockets: 2, cores: 2, threads: 1,
                                       pinning: [3, 5]),
                              memory: Memory(size: .mib(1536), max: .gib(4), slots: 2,
                                             balloon: Balloon(min: .mib(512), freePageReporting: false),
                                             merge: false, hugepages: true, lock: true))
        profile.boot = Boot(firmware: .uefi)
        profile.disks = [
            Disk(id: "root", file: "/var/lib/vm images/root #1.qcow2", format: .qcow2, size: .gib(20), bus: .nvme,
                 cache: .writeback, readonly: false, discard: true),
            Disk(id: "null", file: "/srv/on: off.img", format: .raw, bus: .virtioSCSI, readonly: true),
            Disk(id: "scratch", file: "", format: .raw, size: .gib(4)),
            Disk(id: "ovl", file: "/x/o.qcow2", backing: "/x/base.qcow2", backingFormat: .qcow2),
        ]
        profile.nics = [
            NIC(id: "net0", mode: .bridge, mac: "52:54:00:aa:bb:cc", bridge: "br0"),
            NIC(id: "net1", mode: .macvtap, parent: "eth0", macvtapMode: .passthrough, queues: 4, vhost: false),
            NIC(id: "net2", mode: .network, network: "default"),
            NIC(id: "net3", mode: .tap, model: .e1000e, ifname: "tap7"),
        ]
        profile.hotplug.slots = 3
        profile.serial = .none
        profile.restart = .onFailure
        profile.overcommit = Overcommit(memoryShares: 3, cpuWeight: 39, cpuQuotaPercent: 250)
        profile.agent = true
        profile.ha = true
        try expectRoundTrip(profile, header: ["imported", "two\nlines"],
                            startsWith: "# imported\n# two\n# lines\nname: \"yes\"\n")

        // Host devices need q35 and no balloon.
        profile.machine = "pc-q35-8.2"
        profile.memory.balloon = nil
        profile.hostdevs = [
            HostDevice(id: "gpu0", pci: PCIAddress(bus: 0x65, slot: 0, function: 0), allFunctions: true,
                       rombar: false, romfile: "/roms/x.rom"),
            HostDevice(id: "vf0", vf: VirtualFunction(pf: PCIAddress(bus: 1, slot: 0, function: 0),
                                                      vlan: 100, trust: true, spoofchk: false), failover: "net0"),
        ]
        profile.cloudInit = CloudInit(hostname: "on", userData: .inline("#cloud-config\nusers: []\n"),
                                      metaData: .inline("a: 1\n  b: 2"), networkConfig: .file("/n/yes.yaml"),
                                      sshKeys: ["ssh-ed25519 AAAA x@y"])
        try expectRoundTrip(profile)
    }

    func expectRoundTrip(_ profile: Profile, header: [String] = [], startsWith: String = "") throws {
        let yaml = ProfileYAMLWriter.render(profile, header: header)
        #expect(yaml.hasPrefix(startsWith))
        let loaded: Profile
        do throws(ProfileErrors) {
            loaded = try loadYAML(yaml)
        } catch {
            Issue.record("does not load:\n\(error)\n\(yaml)")
            return
        }
        #expect(loaded == profile, "\(yaml)")
    }

    @Test func literalBlocksOnlyWhenExact() throws {
        for text in ["#x\n", "#x", "#x\n\n", " #x\n", "#x\n  \ny\n", "#x\r\n", "#a\n\tb\n", "#a \n", "#a\nb \n"] {
            var profile = Profile(name: "t", memory: Memory(size: .gib(1)))
            profile.cloudInit = CloudInit(metaData: .inline(text))
            let yaml = ProfileYAMLWriter.render(profile)
            let loaded = try loadYAML(yaml)
            #expect(loaded.cloudInit?.metaData == .inline(text), "\(text.debugDescription) as\n\(yaml)")
        }
    }

    @Test func plainOnlyWhenUnambiguous() {
        #expect(ProfileYAMLWriter.string("web-1") == "web-1")
        #expect(ProfileYAMLWriter.string("/var/lib/x.qcow2") == "/var/lib/x.qcow2")
        #expect(ProfileYAMLWriter.string("yes") == "\"yes\"")
        #expect(ProfileYAMLWriter.string("0x10") == "\"0x10\"")
        #expect(ProfileYAMLWriter.string("a: b") == "\"a: b\"")
        #expect(ProfileYAMLWriter.string("tab\t\"q\"") == "\"tab\\t\\\"q\\\"\"")
    }

    @Test func headerCommentsStayComments() throws {
        let profile = Profile(name: "h", memory: Memory(size: .gib(1)))
        let header = ["esc \u{1B}[31m red", "nel\u{85}ls\u{2028}ps\u{2029}end", "c1 \u{9B} bom \u{FEFF}", "cr\rlf\r\nx"]
        let yaml = ProfileYAMLWriter.render(profile, header: header)
        #expect(yaml.hasPrefix("""
            # esc \\u{1b}[31m red
            # nel
            # ls
            # ps
            # end
            # c1 \\u{9b} bom \\u{feff}
            # cr
            # lf
            # x
            name: h
            """))
        #expect(try loadYAML(yaml) == profile)
    }
}
