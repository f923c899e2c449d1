import Foundation
import Testing
@testable import Profiles

/// The overcommit keys (`overcommit`, `memory.merge/hugepages/lock`, `cpu.pinning`): decoding, defaults,
/// exact validation messages, and state files written before these keys existed.
enum TunedProfile {
    static let path = "/vm/tuned.yaml"

    // Line numbers matter: the cases below patch lines by number.
    static let text = """
        name: tuned
        cpu:
          count: 2
          max: 4
          pinning: [0, 1, 1]
        memory:
          size: 1G
          merge: false
          hugepages: true
          lock: true
        overcommit:
          memoryShares: 500
          cpuWeight: 200
          cpuQuota: 150%
        """

    static func diagnostics(_ replacements: [Int: String]) -> [String] {
        ProfilesTests.diagnostics("tuned.yaml", files: [path: patch(text, replacements)])
    }
}

@Suite struct OvercommitProfileTests {
    @Test func theKeysDecode() throws {
        let profile = try #require(loadValid("tuned.yaml", files: [TunedProfile.path: TunedProfile.text]))
        #expect(profile.cpu.pinning == [0, 1, 1])
        #expect(profile.memory.merge == false)
        #expect(profile.memory.hugepages == true)
        #expect(profile.memory.lock == true)
        #expect(profile.overcommit == Overcommit(memoryShares: 500, cpuWeight: 200, cpuQuotaPercent: 150))
    }

    @Test func defaultsWhenLeftOut() throws {
        let profile = try #require(loadValid("m.yaml", files: ["/vm/m.yaml": "name: m\nmemory: 512M\n"]))
        #expect(profile.cpu.pinning == [])
        #expect(profile.memory.merge == true)
        #expect(profile.memory.hugepages == false)
        #expect(profile.memory.lock == false)
        #expect(profile.overcommit == Overcommit(memoryShares: 1000, cpuWeight: 100, cpuQuotaPercent: nil))
    }

    @Test func aChildOverridesOneOvercommitKeyAndKeepsTheOthers() throws {
        let files = [
            "/vm/parent.yaml": "name: p\nmemory: 1G\novercommit: { memoryShares: 300, cpuQuota: 50% }\n",
            "/vm/child.yaml": "extends: parent.yaml\nname: c\novercommit: { cpuWeight: 50 }\ncpu: { count: 1, pinning: [1] }\n",
        ]
        let profile = try #require(loadValid("child.yaml", files: files))
        #expect(profile.overcommit == Overcommit(memoryShares: 300, cpuWeight: 50, cpuQuotaPercent: 50))
        #expect(profile.cpu.pinning == [1])
    }

    static let cases: [BrokenField] = [
        BrokenField("shares zero", [12: "  memoryShares: 0"],
                    "tuned.yaml:12:17: overcommit.memoryShares: 0 is less than 1"),
        BrokenField("weight zero", [13: "  cpuWeight: 0"], "tuned.yaml:13:14: overcommit.cpuWeight: 0 is less than 1"),
        BrokenField("weight above 10000", [13: "  cpuWeight: 10001"],
                    "tuned.yaml:13:14: overcommit.cpuWeight: 10001 is more than 10000"),
        BrokenField("weight not a number", [13: "  cpuWeight: heavy"],
                    "tuned.yaml:13:14: overcommit.cpuWeight: expected an integer, got 'heavy'"),
        BrokenField("quota zero", [14: "  cpuQuota: 0%"], "tuned.yaml:14:13: overcommit.cpuQuota: 0% must be more than 0%"),
        BrokenField("quota negative", [14: "  cpuQuota: -5%"],
                    "tuned.yaml:14:13: overcommit.cpuQuota: -5% must be more than 0%"),
        BrokenField("quota above 255 CPUs", [14: "  cpuQuota: 25600%"],
                    "tuned.yaml:14:13: overcommit.cpuQuota: 25600% is more than 25500% (255 CPUs, the vCPU limit)"),
        BrokenField("quota without %", [14: "  cpuQuota: 150"],
                    "tuned.yaml:14:13: overcommit.cpuQuota: '150' has no unit; write 150% (a percentage of one host CPU)"),
        BrokenField("quota as CPUs", [14: "  cpuQuota: 2 cpus"],
                    "tuned.yaml:14:13: overcommit.cpuQuota: '2 cpus' is not a percentage of one host CPU (e.g. 50%, 150%)"),
        BrokenField("quota fraction", [14: "  cpuQuota: 12.5%"],
                    "tuned.yaml:14:13: overcommit.cpuQuota: '12.5%' is not a percentage of one host CPU (e.g. 50%, 150%)"),
        BrokenField("unknown overcommit key", [12: "  memoryShare: 500"],
                    "tuned.yaml:12:3: overcommit: unknown key 'memoryShare'; did you mean 'memoryShares'?"),
        BrokenField("more pins than cpu.max", [5: "  pinning: [0, 1, 0, 1, 0]"],
                    "tuned.yaml:5:12: cpu.pinning: 5 host CPUs are more than cpu.max (4); give one per vCPU at most"),
        BrokenField("negative pin", [5: "  pinning: [0, -1]"], "tuned.yaml:5:16: cpu.pinning[1]: -1 is less than 0"),
        BrokenField("pin above 1023", [5: "  pinning: [1024]"],
                    "tuned.yaml:5:13: cpu.pinning[0]: 1024 is more than 1023 (the highest CPU number corral can pin to)"),
        BrokenField("pin not a number", [5: "  pinning: [0, x]"],
                    "tuned.yaml:5:16: cpu.pinning[1]: expected an integer, got 'x'"),
        BrokenField("pinning not a list", [5: "  pinning: 0"],
                    "tuned.yaml:5:12: cpu.pinning: expected a list of integers, got '0'"),
        BrokenField("merge not a boolean", [8: "  merge: off"], "tuned.yaml:8:10: memory.merge: expected true or false, got 'off'"),
        BrokenField("hugepages with a size that is not a multiple of 2M", [7: "  size: 1025M"],
                    "tuned.yaml:9:14: memory.hugepages: needs memory.size (1025M) to be a multiple of 2M (the huge page size)"),
    ]

    @Test(arguments: cases)
    func oneBrokenField(_ broken: BrokenField) {
        #expect(TunedProfile.diagnostics(broken.lines) == broken.expected)
    }

    @Test func oddSizeIsFineWithoutHugepages() {
        #expect(TunedProfile.diagnostics([7: "  size: 1025M", 9: "  hugepages: false"]) == [])
    }

    @Test func resolvedProfileRoundTripsThroughJSON() throws {
        let profile = try #require(loadValid("tuned.yaml", files: [TunedProfile.path: TunedProfile.text]))
        let data = try JSONEncoder().encode(profile)
        #expect(try JSONDecoder().decode(Profile.self, from: data) == profile)
    }

    /// A resolved profile stored by a corral without these keys still loads, with the defaults.
    @Test func stateFilesWithoutTheNewKeysStillDecode() throws {
        let old = """
            {"name":"web","machine":"q35","accel":"auto",
             "cpu":{"count":2,"max":4},
             "memory":{"size":"1G","slots":0,"balloon":{"min":"512M","freePageReporting":true}},
             "boot":{"firmware":"bios"},"disks":[],"nics":[],"hotplug":{"slots":0},
             "serial":"log","restart":"no","qemu":{"binary":"qemu-system-x86_64"}}
            """
        let profile = try JSONDecoder().decode(Profile.self, from: Data(old.utf8))
        #expect(profile.cpu.pinning == [])
        #expect(profile.memory.merge && !profile.memory.hugepages && !profile.memory.lock)
        #expect(profile.overcommit == Overcommit())
        #expect(profile.memory.balloon?.min == .mib(512))
    }
}
