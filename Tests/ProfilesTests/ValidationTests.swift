import CorralModel
import Testing
@testable import Profiles

/// Validation tests in the style of cloud-hypervisor's `test_config_validation`: start from a valid
/// profile, break exactly one thing, expect the exact diagnostic including file:line:col.
enum ValidProfile {
    static let path = "/vm/web.yaml"
    /// Files the profile refers to that exist (root.qcow2 does not: it is created from `size`).
    static let existing: Set<String> = ["/vm/vmlinuz", "/vm/initrd.img", "/vm/data.raw"]

    // Line numbers matter: the cases below patch lines by number.
    static let text = """
        name: web
        machine: q35
        accel: kvm
        cpu:
          model: host
          count: 2
          max: 8
          sockets: 1
          cores: 4
          threads: 2
        memory:
          size: 1G
          max: 4G
          slots: 4
          balloon:
            min: 512M
            freePageReporting: true
        boot:
          kernel: ./vmlinuz
          initrd: ./initrd.img
          cmdline: "console=ttyS0"
        disks:
          - id: root
            file: ./root.qcow2
            size: 20G
          - id: data
            file: ./data.raw
            bus: virtio-scsi
        nics:
          - id: net0
            mode: user
          - id: lan0
            mode: bridge
            bridge: br0
            mac: "52:54:00:AB:CD:EF"
        hotplug:
          slots: 8
        serial: log
        restart: on-failure
        qemu:
          binary: qemu-system-x86_64
        """

    static func diagnostics(_ replacements: [Int: String], checkFiles: Bool = true) -> [String] {
        ProfilesTests.diagnostics("web.yaml", files: [path: patch(text, replacements)], existing: existing,
                                  checkFiles: checkFiles)
    }
}

struct BrokenField: Sendable, CustomTestStringConvertible {
    var what: String
    var lines: [Int: String]
    var expected: [String]

    init(_ what: String, _ lines: [Int: String], _ expected: String...) {
        self.what = what
        self.lines = lines
        self.expected = expected
    }

    var testDescription: String { what }
}

@Suite struct ValidationTests {
    @Test func theBaseProfileIsValid() throws {
        let profile = try #require(loadValid("web.yaml", files: [ValidProfile.path: ValidProfile.text],
                                             existing: ValidProfile.existing))
        #expect(profile.name == "web")
        #expect(profile.nics[1].mac == "52:54:00:ab:cd:ef")
    }

    static let cases: [BrokenField] = [
        BrokenField("name syntax", [1: "name: Web_1"],
                    "web.yaml:1:7: name: 'Web_1' is not a valid name (lower-case letters, digits and '-', "
                        + "starting with a letter or digit, at most 63 characters)"),
        BrokenField("name too long", [1: "name: " + String(repeating: "a", count: 64)],
                    "web.yaml:1:7: name: '\(String(repeating: "a", count: 64))' is not a valid name "
                        + "(lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters)"),
        BrokenField("name missing", [1: "#"], "web.yaml:2:1: missing required key 'name'"),
        BrokenField("machine", [2: "machine: pc-q35-x"],
                    "web.yaml:2:10: machine: 'pc-q35-x' is not one of q35, pc, pc-q35-X.Y, pc-i440fx-X.Y"),
        BrokenField("accel enum", [3: "accel: kvmm"], "web.yaml:3:8: accel: 'kvmm' is not one of kvm, tcg, auto"),
        BrokenField("host model under tcg", [3: "accel: tcg"],
                    "web.yaml:5:10: cpu.model: 'host' cannot be used with accel tcg "
                        + "(TCG cannot emulate the host CPU); use 'max'"),
        BrokenField("cpu model syntax", [5: "  model: host,+vmx"],
                    "web.yaml:5:10: cpu.model: 'host,+vmx' is not a CPU model name (letters, digits, '.', '_' and '-')"),
        BrokenField("count above max", [6: "  count: 12"], "web.yaml:6:10: cpu.count: 12 is more than cpu.max (8)"),
        BrokenField("count zero", [6: "  count: 0"], "web.yaml:6:10: cpu.count: 0 is less than 1"),
        BrokenField("max above 255", [7: "  max: 300", 8: "#", 9: "#", 10: "#"],
                    "web.yaml:7:8: cpu.max: 300 is more than 255"),
        BrokenField("topology product", [9: "  cores: 2"],
                    "web.yaml:5:3: cpu: sockets × cores × threads = 1 × 2 × 2 = 4 must equal cpu.max (8)"),
        BrokenField("topology with missing fields defaulting to 1", [8: "#", 10: "#"],
                    "web.yaml:5:3: cpu: sockets × cores × threads = 1 × 4 × 1 = 4 must equal cpu.max (8)"),
        BrokenField("topology field huge (no overflow)", [8: "  sockets: 9223372036854775807"],
                    "web.yaml:8:12: cpu.sockets: 9223372036854775807 is more than 255"),
        BrokenField("topology field zero", [10: "  threads: 0"], "web.yaml:10:12: cpu.threads: 0 is less than 1"),
        BrokenField("decimal size unit", [12: "  size: 1GB"],
                    "web.yaml:12:9: memory.size: '1GB' uses a decimal unit; QEMU sizes are binary: write 1G"),
        BrokenField("memory size zero", [12: "  size: 0", 16: "    min: 0"],
                    "web.yaml:12:9: memory.size: must be more than 0"),
        BrokenField("max below size", [13: "  max: 512M"],
                    "web.yaml:13:8: memory.max: 512M is less than memory.size (1G)"),
        BrokenField("slots above 256", [14: "  slots: 300"],
                    "web.yaml:14:10: memory.slots: 300 is more than 256 (QEMU's limit)"),
        BrokenField("slots without max", [13: "#"],
                    "web.yaml:14:10: memory.slots: 4 needs memory.max larger than memory.size (1G)"),
        BrokenField("slots with max equal to size", [13: "  max: 1G"],
                    "web.yaml:14:10: memory.slots: 4 needs memory.max larger than memory.size (1G)"),
        BrokenField("max without slots", [14: "#"],
                    "web.yaml:13:8: memory.max: 4G is more than memory.size (1G), "
                        + "which needs memory.slots of at least 1"),
        BrokenField("balloon min above size", [16: "    min: 2G"],
                    "web.yaml:16:10: memory.balloon.min: 2G is more than memory.size (1G)"),
        BrokenField("kernel missing", [19: "  kernel: ./bzImage"],
                    "web.yaml:19:11: boot.kernel: /vm/bzImage does not exist"),
        BrokenField("initrd missing", [20: "  initrd: /boot/initrd-6.1.img"],
                    "web.yaml:20:11: boot.initrd: /boot/initrd-6.1.img does not exist"),
        BrokenField("initrd without kernel", [19: "#", 21: "#"],
                    "web.yaml:20:11: boot.initrd: needs boot.kernel (an initrd is only used for direct kernel boot)"),
        BrokenField("cmdline without kernel", [19: "#", 20: "#"],
                    "web.yaml:21:12: boot.cmdline: needs boot.kernel "
                        + "(a command line is only used for direct kernel boot)"),
        BrokenField("disk file missing without size", [27: "    file: ./missing.raw"],
                    "web.yaml:27:11: disks[1].file: /vm/missing.raw does not exist and no size is given to create it"),
        BrokenField("two disks on one file", [27: "    file: ./sub/../root.qcow2"],
                    "web.yaml:27:11: disks[1].file: /vm/root.qcow2 is already used by disks[0]"),
        BrokenField("read-only disk that would have to be created", [25: "    size: 20G\n    readonly: true"],
                    "web.yaml:26:15: disks[0].readonly: /vm/root.qcow2 does not exist, "
                        + "and a read-only disk cannot be created"),
        BrokenField("disk size zero", [25: "    size: 0"], "web.yaml:25:11: disks[0].size: must be more than 0"),
        BrokenField("disk bus enum", [28: "    bus: ide"],
                    "web.yaml:28:10: disks[1].bus: 'ide' is not one of virtio-blk, virtio-scsi, nvme"),
        BrokenField("device id syntax", [30: "  - id: 0net"],
                    "web.yaml:30:9: nics[0].id: '0net' is not a valid device id "
                        + "(a letter, then up to 31 letters, digits, '_' or '-')"),
        BrokenField("device id shared by a disk and a NIC", [32: "  - id: root"],
                    "web.yaml:32:9: nics[1].id: 'root' is already used by disks[0]"),
        BrokenField("device id shared by two disks", [26: "  - id: root"],
                    "web.yaml:26:9: disks[1].id: 'root' is already used by disks[0]"),
        BrokenField("bridge mode without bridge", [34: "#"],
                    "web.yaml:33:11: nics[1].mode: bridge needs 'bridge' (the host bridge to attach to)"),
        BrokenField("queues out of range", [34: "    bridge: br0\n    queues: 17"],
                    "web.yaml:35:13: nics[1].queues: must be between 1 and 16, got 17"),
        BrokenField("queues on an operator's tap", [33: "    mode: tap", 34: "    ifname: tap0\n    queues: 2"],
                    "web.yaml:35:13: nics[1].queues: is only used on a tap corral makes (mode bridge or macvtap, or tap without ifname)"),
        BrokenField("ifname syntax", [33: "    mode: tap", 34: "    ifname: tap/0"],
                    "web.yaml:34:13: nics[1].ifname: 'tap/0' is not a valid interface name "
                        + "(1-15 characters, no '/', ':', ',' or whitespace)"),
        BrokenField("bridge name too long", [34: "    bridge: br-0123456789abcd"],
                    "web.yaml:34:13: nics[1].bridge: 'br-0123456789abcd' is not a valid interface name "
                        + "(1-15 characters, no '/', ':', ',' or whitespace)"),
        BrokenField("bridge given for a user NIC", [33: "    mode: user"],
                    "web.yaml:34:13: nics[1].bridge: is only used with mode bridge (mode is user)"),
        BrokenField("MAC syntax", [35: "    mac: \"52:54:00:AB:CD\""],
                    "web.yaml:35:10: nics[1].mac: '52:54:00:AB:CD' is not a MAC address "
                        + "(six hex pairs like 52:54:00:12:34:56)"),
        BrokenField("MAC not hex", [35: "    mac: \"52:54:00:AB:CD:EG\""],
                    "web.yaml:35:10: nics[1].mac: '52:54:00:AB:CD:EG' is not a MAC address "
                        + "(six hex pairs like 52:54:00:12:34:56)"),
        BrokenField("multicast MAC", [35: "    mac: \"01:00:5e:00:00:01\""],
                    "web.yaml:35:10: nics[1].mac: '01:00:5e:00:00:01' is a multicast address; "
                        + "the first octet must be even"),
        BrokenField("hotplug slots above 32", [37: "  slots: 33"], "web.yaml:37:10: hotplug.slots: 33 is more than 32"),
        BrokenField("hotplug slots negative", [37: "  slots: -1"], "web.yaml:37:10: hotplug.slots: -1 is less than 0"),
        BrokenField("serial enum", [38: "serial: file"], "web.yaml:38:9: serial: 'file' is not one of log, none"),
        BrokenField("restart enum", [39: "restart: sometimes"],
                    "web.yaml:39:10: restart: 'sometimes' is not one of no, on-failure, always"),
        BrokenField("qemu binary with whitespace", [41: "  binary: \"qemu system\""],
                    "web.yaml:41:11: qemu.binary: 'qemu system' must not contain whitespace"),
        BrokenField("qemu binary empty", [41: "  binary: \"\""], "web.yaml:41:11: qemu.binary: must not be empty"),
    ]

    @Test(arguments: cases)
    func oneBrokenField(_ broken: BrokenField) {
        #expect(ValidProfile.diagnostics(broken.lines) == broken.expected)
    }

    @Test func fileChecksCanBeSkipped() {
        let broken: [Int: String] = [19: "  kernel: ./bzImage", 27: "    file: ./missing.raw"]
        #expect(ValidProfile.diagnostics(broken, checkFiles: false) == [])
        #expect(ValidProfile.diagnostics(broken, checkFiles: true).count == 2)
    }

    @Test func checkFilesFalseStillValidatesEverythingElse() {
        #expect(ValidProfile.diagnostics([6: "  count: 12"], checkFiles: false)
            == ["web.yaml:6:10: cpu.count: 12 is more than cpu.max (8)"])
    }

    @Test func allProblemsAreReportedInLineOrder() {
        let found = ValidProfile.diagnostics([
            38: "serail: log",
            1: "name: Web",
            35: "    mac: \"53:54:00:ab:cd:ef\"",
            6: "  count: 12",
            12: "  size: 1GB",
        ])
        #expect(found == [
            "web.yaml:1:7: name: 'Web' is not a valid name (lower-case letters, digits and '-', "
                + "starting with a letter or digit, at most 63 characters)",
            "web.yaml:6:10: cpu.count: 12 is more than cpu.max (8)",
            "web.yaml:12:9: memory.size: '1GB' uses a decimal unit; QEMU sizes are binary: write 1G",
            "web.yaml:35:10: nics[1].mac: '53:54:00:ab:cd:ef' is a multicast address; the first octet must be even",
            "web.yaml:38:1: unknown key 'serail'; did you mean 'serial'?",
        ])
    }

    @Test func aFieldThatFailsToDecodeDoesNotCauseFollowUpErrors() {
        // count is not a number: no "count > max" or topology errors may follow from a guessed value.
        #expect(ValidProfile.diagnostics([6: "  count: two", 7: "  max: many"]) == [
            "web.yaml:6:10: cpu.count: expected an integer, got 'two'",
            "web.yaml:7:8: cpu.max: expected an integer, got 'many'",
        ])
    }

    @Test func errorsFormatsAsOneDiagnosticPerLine() {
        let result = load("web.yaml", files: [ValidProfile.path: patch(ValidProfile.text, [1: "name: Web", 6: "  count: 0"])],
                          existing: ValidProfile.existing)
        guard case .failure(let errors) = result else {
            Issue.record("expected errors")
            return
        }
        #expect(errors.description == """
            web.yaml:1:7: name: 'Web' is not a valid name (lower-case letters, digits and '-', \
            starting with a letter or digit, at most 63 characters)
            web.yaml:6:10: cpu.count: 0 is less than 1
            """)
        #expect(errors.diagnostics[1] == Diagnostic(file: "web.yaml", line: 6, column: 10, path: "cpu.count",
                                                    message: "0 is less than 1"))
    }
}
