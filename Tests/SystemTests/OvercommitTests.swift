import Foundation
import CorralModel
import JSON
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing
import TestSupport

/// Overcommit with real QEMU and the test guest; host inputs come from a fake /proc and /sys
/// tree where a test needs to simulate pressure.
@Suite(.serialized, .bootsGuests) struct OvercommitSystemTests {
    /// A fake host tree: /proc/meminfo with the given numbers, one online CPU, KSM files.
    func fakeHost(_ root: String, totalKB: Int, availableKB: Int, cpus: String = "0") throws -> String {
        let host = root + "/host"
        for folder in ["/proc", "/sys/devices/system/cpu", "/sys/kernel/mm/ksm"] {
            try FileManager.default.createDirectory(atPath: host + folder, withIntermediateDirectories: true)
        }
        try "MemTotal:       \(totalKB) kB\nMemFree:        \(availableKB) kB\nMemAvailable:   \(availableKB) kB\n"
            .write(toFile: host + "/proc/meminfo", atomically: true, encoding: .utf8)
        try "\(cpus)\n".write(toFile: host + "/sys/devices/system/cpu/online", atomically: true, encoding: .utf8)
        for (file, value) in [("run", "0"), ("pages_to_scan", "100"), ("sleep_millisecs", "20"),
                              ("pages_sharing", "0"), ("pages_shared", "0")] {
            try "\(value)\n".write(toFile: host + "/sys/kernel/mm/ksm/" + file, atomically: true, encoding: .utf8)
        }
        return host
    }

    func balloonProfile(_ root: String, name: String, extra: String = "") throws -> String {
        try Guest.writeProfile(in: root, name: name, memory: "{ size: 256M, balloon: { min: 128M } }", extra: extra)
    }

    @Test func balloonTargetShrinksTheGuestAndStatusAgrees() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("oc1")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions(autoBalloon: false))
        let up = try await manager.up(UpRequest(profile: try balloonProfile(root, name: "squeeze")))
        let before = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        _ = try await manager.balloon("squeeze", size: "160M")
        let after = try await HeartbeatWait.first(in: up.serialLog, within: .seconds(60)) { $0.memKB < before.memKB - 60_000 }
        #expect(after.memKB < before.memKB)
        var status = try await manager.status("squeeze")
        for _ in 0..<50 where status.memory.balloonBytes != 160 << 20 {
            try await Task.sleep(for: .milliseconds(200))
            status = try await manager.status("squeeze")
        }
        #expect(status.memory.balloonBytes == 160 << 20)
        let stats = try await manager.stats("squeeze")
        #expect(stats.balloonBytes == 160 << 20 && stats.balloonTargetBytes == 160 << 20)
        #expect(stats.autoBalloon == false, "a manual target turns the policy off for this VM")
        do {
            _ = try await manager.balloon("squeeze", size: "1G")
            Issue.record("a balloon larger than the VM was accepted")
        } catch {
            #expect(error.message == "SIZE: 1G is outside 64M…256M (the memory of squeeze)")
        }
        _ = try await manager.kill("squeeze")
        await manager.shutdown()
    }

    @Test func autoPolicyShrinksARealGuestUnderPressure() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("oc2")
        defer { Guest.cleanUp(root) }
        // 8 GiB host with 5 % available: pressure.
        let host = try fakeHost(root, totalKB: 8 << 20, availableKB: 400 << 10)
        let options = DaemonOptions(policyInterval: .milliseconds(300), autoBalloon: true, manageKSM: true, hostRoot: host)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: options)
        let up = try await manager.up(UpRequest(profile: try balloonProfile(root, name: "pressed")))
        let before = try await HeartbeatWait.first(in: up.serialLog) { $0.n >= 2 }
        // The policy loop starts only now: `before` is the guest's memory before any balloon (a policy tick during the
        // boot could shrink it first, and then no later heartbeat is below it).
        let daemon = Task { await manager.run() }
        let shrunk = try await HeartbeatWait.first(in: up.serialLog, within: .seconds(90)) { $0.memKB < before.memKB - 30_000 }
        #expect(shrunk.memKB < before.memKB, "the policy inflated the balloon")
        let status = try await manager.status("pressed")
        #expect((status.memory.balloonBytes ?? .max) < 256 << 20)
        #expect((status.memory.balloonBytes ?? 0) >= 128 << 20, "never below balloon.min")
        let ksmRun = try String(contentsOfFile: host + "/sys/kernel/mm/ksm/run", encoding: .utf8)
        #expect(ksmRun.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "KSM switched on under pressure")
        daemon.cancel()
        await daemon.value
        _ = try await VMManager.open(stateRoot: root + "/state").kill("pressed")
    }

    @Test func qemuSitsInItsCGroupWithTheConfiguredWeight() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("oc3")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        let name = "weighted-\(UInt16.random(in: 0...UInt16.max))"
        let profile = try Guest.writeProfile(in: root, name: name, extra: "overcommit: { cpuWeight: 250, cpuQuota: 50% }\n")
        let up = try await manager.up(UpRequest(profile: profile))
        let cgroup = try String(contentsOfFile: "/proc/\(up.pid!)/cgroup", encoding: .utf8)
        #expect(cgroup.contains("/corral/\(name)"), "\(cgroup)")
        let manager2 = try CGroupManager()
        let limits = try manager2.limits(vm: name)
        #expect(limits == CGroupCPULimits(weight: 250, quotaPercent: 50))
        _ = try await manager.setTuning(name, TuningRequest(cpuWeight: 400, cpuQuotaPercent: 0))
        #expect(try manager2.limits(vm: name) == CGroupCPULimits(weight: 400, quotaPercent: nil), "changed live")
        _ = try await manager.kill(name)
        #expect(!FileManager.default.fileExists(atPath: manager2.path(vm: name)), "cgroup removed when the VM stops")
        await manager.shutdown()
    }

    @Test func admissionRefusesWithTheNumbers() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("oc4")
        defer { Guest.cleanUp(root) }
        // One host CPU, 1 GiB of memory.
        let host = try fakeHost(root, totalKB: 1 << 20, availableKB: 900 << 10)
        let options = DaemonOptions(limits: .init(cpuRatio: 1.0, memoryRatio: 0.5), hostRoot: host)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: options)
        _ = try await manager.up(UpRequest(profile: try Guest.writeProfile(in: root, name: "first")))
        let second = try Guest.writeProfile(in: root, name: "second")
        do {
            _ = try await manager.up(UpRequest(profile: second))
            Issue.record("admission let a second VM cross both ratios")
        } catch {
            guard case .refused(let message) = error else { throw error }
            // Memory: 2 × 256 MiB of 1 GiB is 0.50, exactly the limit, so only the CPU ratio refuses.
            #expect(message == "cpu overcommit would be 2.00, limit 1.00: 2 vCPUs committed of 1 host CPU")
        }
        #expect(await manager.list().map(\.name) == ["first"], "nothing was defined for the refused VM")
        do {
            _ = try await manager.setCPUs("first", count: 2)
            Issue.record("vCPU hotplug crossed the CPU ratio")
        } catch {
            #expect(error.message.hasPrefix("cpu overcommit would be 2.00, limit 1.00"))
        }
        _ = try await manager.kill("first")
        await manager.shutdown()
    }

    @Test func vCPUThreadsArePinnedAndRepinnedAfterHotplug() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("oc5")
        defer { Guest.cleanUp(root) }
        let manager = try await VMManager.open(stateRoot: root + "/state")
        let profile = try Guest.writeProfile(in: root, name: "pinned", cpu: "{ count: 1, max: 2, pinning: [1, 0] }")
        let up = try await manager.up(UpRequest(profile: profile))
        func affinities() async throws -> [Int: [Int]] {
            let reply = try await manager.qmp("pinned", command: "query-cpus-fast", arguments: nil)
            var result: [Int: [Int]] = [:]
            for thread in try VCPUPinning.threads(fromQueryCPUsFast: reply) {
                result[thread.cpuIndex] = try VCPUPinning.allowedCPUs(pid: up.pid!, threadID: thread.threadID)
            }
            return result
        }
        #expect(try await affinities() == [0: [1]], "vCPU 0 runs only on host CPU 1")
        _ = try await manager.setCPUs("pinned", count: 2)
        #expect(try await affinities() == [0: [1], 1: [0]], "the plugged vCPU is pinned too")
        _ = try await manager.kill("pinned")
        await manager.shutdown()
    }
}
