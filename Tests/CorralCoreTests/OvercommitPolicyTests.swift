import CorralModel
import Profiles
import QEMUCommand
import CorralCore
import Testing

private let MiB: UInt64 = 1 << 20
private let GiB: UInt64 = 1 << 30

/// A host whose available memory is `percent` % of 16 GiB.
private func host(availablePercent percent: Double, total: UInt64 = 16 * GiB) -> HostMemory {
    HostMemory(total: total, available: UInt64(Double(total) * percent / 100))
}

@Suite struct BalloonPolicyTests {
    let vm4G = BalloonPolicy.VM(name: "a", size: 4 * GiB, min: 2 * GiB, target: 4 * GiB, actual: 4 * GiB)

    @Test func underPressureABalloonShrinksByOneStep() {
        var policy = BalloonPolicy()
        // 12.5 % available < 20 %: a deficit of 2.8 GiB, but one tick moves a VM by at most 5 % of 4 GiB.
        let decisions = policy.decide(host: host(availablePercent: 12.5), vms: [vm4G])
        #expect(decisions == [BalloonPolicy.Decision(vm: "a", target: 4096 * MiB - 204 * MiB)])
        #expect(policy.underPressure)
    }

    @Test func whenPressureIsGoneBalloonsGrowBack() {
        var policy = BalloonPolicy(underPressure: true)
        var vm = vm4G
        vm.target = 3 * GiB
        vm.actual = 3 * GiB
        // 37.5 % ≥ 30 %: pressure ends, 1.2 GiB surplus above 30 %; one step is 204.8 MiB.
        #expect(policy.decide(host: host(availablePercent: 37.5), vms: [vm])
            == [BalloonPolicy.Decision(vm: "a", target: 3 * GiB + 204 * MiB)])
        #expect(!policy.underPressure)
    }

    @Test func neverBelowMinNorAboveSize() {
        var shrinking = BalloonPolicy(underPressure: true)
        var nearMin = vm4G
        nearMin.target = 2 * GiB + 52 * MiB
        nearMin.actual = nearMin.target!
        #expect(shrinking.decide(host: host(availablePercent: 5), vms: [nearMin])
            == [BalloonPolicy.Decision(vm: "a", target: 2 * GiB)])
        nearMin.target = 2 * GiB
        nearMin.actual = 2 * GiB
        #expect(shrinking.decide(host: host(availablePercent: 5), vms: [nearMin]) == [])

        var growing = BalloonPolicy()
        var nearSize = vm4G
        nearSize.target = 4 * GiB - 10 * MiB
        nearSize.actual = nearSize.target!
        #expect(growing.decide(host: host(availablePercent: 90), vms: [nearSize])
            == [BalloonPolicy.Decision(vm: "a", target: 4 * GiB)])
        #expect(growing.decide(host: host(availablePercent: 90), vms: [vm4G]) == [])
    }

    @Test func fewerSharesShrinkMore() {
        // High water 50 % of 16 GiB = 8 GiB; 300 MiB short of it, so no VM reaches its step limit.
        var policy = BalloonPolicy(config: .init(lowWater: 0.25, highWater: 0.5), underPressure: true)
        let big = BalloonPolicy.VM(name: "gold", size: 8 * GiB, min: 1 * GiB, actual: 8 * GiB, shares: 1000)
        var cheap = big
        cheap.name = "bronze"
        cheap.shares = 500
        let decisions = policy.decide(host: HostMemory(total: 16 * GiB, available: 8 * GiB - 300 * MiB),
                                      vms: [big, cheap])
        #expect(decisions == [
            BalloonPolicy.Decision(vm: "gold", target: 8 * GiB - 100 * MiB),
            BalloonPolicy.Decision(vm: "bronze", target: 8 * GiB - 200 * MiB),
        ])
    }

    @Test func moreSharesGrowBackFaster() {
        var policy = BalloonPolicy(config: .init(lowWater: 0.25, highWater: 0.5))
        let gold = BalloonPolicy.VM(name: "gold", size: 8 * GiB, min: 1 * GiB, target: 6 * GiB, actual: 6 * GiB,
                                    shares: 2000)
        var bronze = gold
        bronze.name = "bronze"
        bronze.shares = 1000
        // 300 MiB above high water to give back: 2 : 1.
        let decisions = policy.decide(host: HostMemory(total: 16 * GiB, available: 8 * GiB + 300 * MiB),
                                      vms: [gold, bronze])
        #expect(decisions == [
            BalloonPolicy.Decision(vm: "gold", target: 6 * GiB + 200 * MiB),
            BalloonPolicy.Decision(vm: "bronze", target: 6 * GiB + 100 * MiB),
        ])
    }

    @Test func aVMAtItsLimitPassesItsPartToTheOthers() {
        var policy = BalloonPolicy(config: .init(lowWater: 0.25, highWater: 0.5), underPressure: true)
        let roomy = BalloonPolicy.VM(name: "roomy", size: 8 * GiB, min: 1 * GiB, actual: 8 * GiB)
        var tight = roomy
        tight.name = "tight"
        tight.min = 8 * GiB - 10 * MiB
        // 300 MiB short; equal weights would be 150 each, but tight can only give 10.
        let decisions = policy.decide(host: HostMemory(total: 16 * GiB, available: 8 * GiB - 300 * MiB),
                                      vms: [roomy, tight])
        #expect(decisions == [
            BalloonPolicy.Decision(vm: "roomy", target: 8 * GiB - 290 * MiB),
            BalloonPolicy.Decision(vm: "tight", target: 8 * GiB - 10 * MiB),
        ])
    }

    @Test func migratingVMsAreLeftAlone() {
        var policy = BalloonPolicy()
        var moving = vm4G
        moving.name = "moving"
        moving.migrating = true
        let decisions = policy.decide(host: host(availablePercent: 10), vms: [moving, vm4G])
        #expect(decisions.map(\.vm) == ["a"])
    }

    @Test func theGuestKeepsWhatItUses() {
        var policy = BalloonPolicy(underPressure: true)
        var vm = vm4G
        vm.min = 1 * GiB
        // The guest reports 300 MiB available; it keeps 5 % of 4 GiB (204.8 MiB): at most 95.2 MiB to take.
        vm.guestAvailable = 300 * MiB
        #expect(policy.decide(host: host(availablePercent: 5), vms: [vm])
            == [BalloonPolicy.Decision(vm: "a", target: 4 * GiB - 95 * MiB)])
    }

    @Test func aBalloonThatDoesNotFollowGetsNoNewTarget() {
        var policy = BalloonPolicy(underPressure: true)
        var stuck = vm4G
        stuck.target = 3 * GiB
        stuck.actual = 4 * GiB - 100 * MiB
        #expect(policy.decide(host: host(availablePercent: 5), vms: [stuck]) == [])
    }

    @Test func hysteresisNoFlapping() {
        var policy = BalloonPolicy()
        var vm = vm4G
        func tick(_ percent: Double) -> [BalloonPolicy.Decision] {
            let decisions = policy.decide(host: host(availablePercent: percent), vms: [vm])
            for decision in decisions {
                vm.target = decision.target
                vm.actual = decision.target
            }
            return decisions
        }
        #expect(tick(25) == [], "between the thresholds without pressure: hold")
        #expect(tick(19).count == 1, "below 20 %: shrink")
        let afterShrink = vm.target
        #expect(tick(25).count == 1, "still below 30 %: pressure lasts, keep shrinking")
        #expect(vm.target! < afterShrink!)
        #expect(tick(29.9).count == 1)
        #expect(policy.underPressure)
        let shrunk = vm.target!
        // Back at 30 %: pressure ends, but the surplus above 30 % (0.003 % of 16 GiB) is under 1 MiB.
        #expect(tick(30.003) == [])
        #expect(!policy.underPressure)
        // Dipping to 25 % again does not restart shrinking (it needs < 20 %), and nothing grows either.
        #expect(tick(25) == [])
        #expect(vm.target == shrunk)
        // A surplus of 0.5 % of 16 GiB (81.9 MiB) is all that may be given back.
        #expect(tick(30.5) == [BalloonPolicy.Decision(vm: "a", target: shrunk + 81 * MiB)])
    }
}

@Suite struct KSMPolicyTests {
    let idle = KSMSettings(run: false, pagesToScan: 100, sleepMillisecs: 20)

    @Test func noMergeableVMsStopsKSM() {
        var policy = KSMPolicy()
        let running = KSMSettings(run: true, pagesToScan: 800, sleepMillisecs: 10)
        #expect(policy.decide(host: host(availablePercent: 5), current: running, mergeableVMs: 0)
            == KSMSettings(run: false, pagesToScan: 64, sleepMillisecs: 10))
    }

    @Test func pressureStartsAndRampsUpToTheMaximum() {
        var policy = KSMPolicy()
        var settings = idle
        var rates: [Int] = []
        for _ in 0..<5 {
            settings = policy.decide(host: host(availablePercent: 10), current: settings, mergeableVMs: 2)
            #expect(settings.run)
            rates.append(settings.pagesToScan)
        }
        #expect(rates == [400, 700, 1000, 1250, 1250])
    }

    @Test func relaxedRampsDownThenStopsAfterIdleTicks() {
        var policy = KSMPolicy()
        var settings = KSMSettings(run: true, pagesToScan: 250, sleepMillisecs: 10)
        var seen: [KSMSettings] = []
        for _ in 0..<5 {
            settings = policy.decide(host: host(availablePercent: 60), current: settings, mergeableVMs: 1)
            seen.append(settings)
        }
        #expect(seen.map(\.pagesToScan) == [200, 150, 100, 64, 64])
        #expect(seen.map(\.run) == [true, true, true, true, false])
    }

    @Test func pressureResetsTheIdleCount() {
        var policy = KSMPolicy(config: .init(idleTicksToStop: 2))
        var settings = KSMSettings(run: true, pagesToScan: 64, sleepMillisecs: 10)
        settings = policy.decide(host: host(availablePercent: 60), current: settings, mergeableVMs: 1)
        #expect(settings.run && policy.idleTicks == 1)
        settings = policy.decide(host: host(availablePercent: 10), current: settings, mergeableVMs: 1)
        #expect(settings.run && policy.idleTicks == 0)
        settings = policy.decide(host: host(availablePercent: 60), current: settings, mergeableVMs: 1)
        #expect(settings.run)
        settings = policy.decide(host: host(availablePercent: 60), current: settings, mergeableVMs: 1)
        #expect(!settings.run)
    }

    @Test func sleepScalesWithHostMemory() {
        var policy = KSMPolicy()
        for (total, sleep) in [(16 * GiB, 10), (4 * GiB, 40), (64 * GiB, 10)] {
            #expect(policy.decide(host: HostMemory(total: total, available: total / 20), current: idle,
                                  mergeableVMs: 1).sleepMillisecs == sleep)
        }
    }
}

@Suite struct AdmissionTests {
    let host = Admission.Host(cpus: 2, memory: 6 * GiB)

    @Test func memoryRefusalNamesRatioLimitAndSizes() {
        let refusals = Admission.check(limits: .init(memoryRatio: 1.5), host: host,
                                       committed: .init(vcpus: 1, memory: 8 * GiB),
                                       adding: .init(vcpus: 1, memory: 1741 * MiB))
        #expect(refusals.map(\.description) == ["memory overcommit would be 1.62, limit 1.50: 9.7 GiB committed of 6.0 GiB"])
    }

    @Test func cpuRefusalNamesRatioLimitAndCounts() {
        let refusals = Admission.check(limits: .init(cpuRatio: 2), host: host,
                                       committed: .init(vcpus: 5, memory: 0), adding: .init(vcpus: 2, memory: 0))
        #expect(refusals.map(\.description) == ["cpu overcommit would be 3.50, limit 2.00: 7 vCPUs committed of 2 host CPUs"])
        #expect(refusals == [.cpu(ratio: 3.5, limit: 2, committed: 7, host: 2)])
    }

    @Test func bothLimitsAreReportedMemoryFirst() {
        let refusals = Admission.check(limits: .init(cpuRatio: 1, memoryRatio: 1), host: host,
                                       committed: .init(vcpus: 2, memory: 6 * GiB),
                                       adding: .init(vcpus: 1, memory: 1 * GiB))
        #expect(refusals.map(\.description) == [
            "memory overcommit would be 1.17, limit 1.00: 7.0 GiB committed of 6.0 GiB",
            "cpu overcommit would be 1.50, limit 1.00: 3 vCPUs committed of 2 host CPUs",
        ])
    }

    @Test func exactlyAtTheLimitIsAllowedAndNoLimitMeansNoCheck() {
        #expect(Admission.check(limits: .init(cpuRatio: 1.5, memoryRatio: 1), host: host,
                                committed: .init(vcpus: 2, memory: 5 * GiB),
                                adding: .init(vcpus: 1, memory: 1 * GiB)) == [])
        #expect(Admission.check(limits: .init(), host: host, committed: .init(vcpus: 100, memory: 100 * GiB),
                                adding: .init(vcpus: 8, memory: 8 * GiB)) == [])
    }

    @Test func aHotplugAddingOnlyMemoryIsNotRefusedForCPUs() {
        // The host is already over its CPU limit; plugging a DIMM does not make that worse.
        #expect(Admission.check(limits: .init(cpuRatio: 1, memoryRatio: 2), host: host,
                                committed: .init(vcpus: 8, memory: 1 * GiB),
                                adding: .init(vcpus: 0, memory: 1 * GiB)) == [])
    }

    @Test func aVMCommitsOnlineVCPUsAndBootMemoryPlusDIMMs() {
        let profile = Profile(name: "web", cpu: CPU(count: 2, max: 8),
                              memory: Memory(size: .gib(1), max: .gib(4), slots: 4))
        #expect(Admission.Load(LiveConfig(profile: profile)) == .init(vcpus: 2, memory: 1 * GiB))
        let grown = HotplugState(onlineCPUs: 5, memory: [PluggedMemory(id: "m0", size: .mib(512)),
                                                         PluggedMemory(id: "m1", size: .gib(1))])
        #expect(Admission.Load(LiveConfig(profile: profile, hotplugged: grown))
            == .init(vcpus: 5, memory: 2 * GiB + 512 * MiB))
    }
}

/// Memory pinned for VFIO host devices (or `memory.lock`) is never overcommitted, whatever the ratio allows.
struct PinnedMemoryAdmissionTests {
    static let host = Admission.Host(cpus: 8, memory: 16 << 30)

    @Test func pinnedMemoryMustFitTheHostsRAM() throws {
        let gpu = HostDevice(id: "gpu", pci: try PCIAddress(parsing: "0000:65:00.0"))
        let passthrough = LiveConfig(profile: Profile(name: "g", memory: Memory(size: .gib(10)), hostdevs: [gpu]))
        let load = Admission.Load(passthrough)
        #expect(load.pinnedMemory == 10 << 30)
        #expect(Admission.Load(LiveConfig(profile: Profile(name: "p", memory: Memory(size: .gib(10))))).pinnedMemory == 0)
        let standIn = HostDevice(id: "sim", emulated: .e1000e, failover: "n")
        #expect(Admission.Load(LiveConfig(profile: Profile(name: "s", memory: Memory(size: .gib(1)), hostdevs: [standIn])))
            .pinnedMemory == 0, "an emulated stand-in pins nothing")
        // A 2.0 memory ratio admits 20 GiB of ordinary guests, but not a second 10 GiB pinned guest on 16 GiB.
        let limits = Admission.Limits(memoryRatio: 2.0)
        #expect(Admission.check(limits: limits, host: Self.host, committed: load, adding: load)
            == [.pinned(committed: 20 << 30, host: 16 << 30)])
        #expect(Admission.check(limits: limits, host: Self.host, committed: Admission.Load(vcpus: 1, memory: 10 << 30),
                                adding: load).isEmpty, "unpinned guests may still be overcommitted around it")
        #expect(Admission.check(limits: .init(), host: Self.host, committed: load, adding: load).count == 1,
                "checked without any ratio limit too")
        #expect(Admission.Refusal.pinned(committed: 20 << 30, host: 16 << 30).description
            == "memory pinned for host devices or memory.lock would be 20.0 GiB of the host's 16.0 GiB: pinned memory cannot be overcommitted")
    }
}
