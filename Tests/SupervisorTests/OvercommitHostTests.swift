import Foundation
import JSON
import Testing
import CorralCore
@testable import HostDevices
@testable import Supervisor

/// A temporary folder standing in for `/` (a fake procfs/sysfs tree); removed by `cleanup()`.
struct FakeRoot {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("corral-fakeroot-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ relative: String, _ text: String) throws {
        let url = URL(fileURLWithPath: path + "/" + relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: false, encoding: .utf8)
    }

    func read(_ relative: String) -> String? {
        try? String(contentsOfFile: path + "/" + relative, encoding: .utf8)
    }

    func exists(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + relative)
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite struct HostMemoryProbeTests {
    static let meminfo = """
        MemTotal:       24684092 kB
        MemFree:        21259200 kB
        MemAvailable:   23874368 kB
        Buffers:          123456 kB
        HugePages_Total:      16
        HugePages_Free:       10
        Hugepagesize:       2048 kB

        """

    @Test func readsMeminfoAndCPUsUnderARoot() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("proc/meminfo", Self.meminfo)
        try root.write("sys/devices/system/cpu/online", "0-3,6,8-9\n")
        let probe = HostMemoryProbe(root: root.path)
        #expect(try probe.memory() == HostMemory(total: 24_684_092 * 1024, available: 23_874_368 * 1024,
                                                 hugePagesTotal: 16, hugePagesFree: 10, hugePageSize: 2 << 20))
        #expect(try probe.onlineCPUs() == [0, 1, 2, 3, 6, 8, 9])
        #expect(try probe.cpuCount() == 7)
    }

    @Test func missingMemAvailableIsAnError() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 500 kB\n")
        #expect(throws: KernelFileError.self) { try HostMemoryProbe(root: root.path).memory() }
        #expect(throws: KernelFileError.self) { try HostMemoryProbe(root: root.path).cpuCount() }
    }

    @Test func cpuLists() {
        #expect(HostMemoryProbe.parseCPUList("0") == [0])
        #expect(HostMemoryProbe.parseCPUList("0-1\n") == [0, 1])
        #expect(HostMemoryProbe.parseCPUList("") == [])
        #expect(HostMemoryProbe.parseCPUList("3-1") == nil)
        #expect(HostMemoryProbe.parseCPUList("a") == nil)
        #expect(HostMemoryProbe.parseCPUList("1,,2") == nil)
    }

    @Test func hugetlbfsMountIsFoundInProcMounts() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("proc/mounts", "sysfs /sys sysfs rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n")
        #expect(try HostMemoryProbe(root: root.path).hugetlbfsMounted())
        #expect(try !HostMemoryProbe(root: root.path).hugetlbfsMounted(at: "/mnt/huge"))
        try root.write("proc/mounts", "tmpfs /dev/hugepages tmpfs rw 0 0\n")
        #expect(try !HostMemoryProbe(root: root.path).hugetlbfsMounted())
    }

    @Test func thisHostHasMemoryAndCPUs() throws {
        let probe = HostMemoryProbe()
        let memory = try probe.memory()
        #expect(memory.total > 0 && memory.available <= memory.total)
        #expect(try probe.cpuCount() >= 1)
    }
}

@Suite struct KSMControlTests {
    func ksmTree() throws -> FakeRoot {
        let root = try FakeRoot()
        for (name, value) in [("run", "0"), ("pages_to_scan", "100"), ("sleep_millisecs", "20"),
                              ("pages_shared", "250"), ("pages_sharing", "1000")] {
            try root.write("sys/kernel/mm/ksm/" + name, value + "\n")
        }
        return root
    }

    @Test func readsStatusAndSavedMemory() throws {
        let root = try ksmTree()
        defer { root.cleanup() }
        let ksm = KSMControl(root: root.path)
        #expect(ksm.isAvailable)
        let status = try ksm.status()
        #expect(status == KSMStatus(settings: KSMSettings(run: false, pagesToScan: 100, sleepMillisecs: 20),
                                    pagesShared: 250, pagesSharing: 1000))
        #expect(status.savedBytes(pageSize: 4096) == 4_096_000)
    }

    @Test func writesOnlyWhatChanged() throws {
        let root = try ksmTree()
        defer { root.cleanup() }
        let ksm = KSMControl(root: root.path)
        let current = try ksm.settings()
        let desired = KSMSettings(run: true, pagesToScan: 400, sleepMillisecs: 20)
        // The unchanged knob is removed: writes never create files, so writing it would fail the call.
        try FileManager.default.removeItem(atPath: root.path + "/sys/kernel/mm/ksm/sleep_millisecs")
        try ksm.apply(desired, current: current)
        #expect(root.read("sys/kernel/mm/ksm/run") == "1\n")
        #expect(root.read("sys/kernel/mm/ksm/pages_to_scan") == "400\n")
        #expect(throws: KernelFileError.self) { try ksm.apply(desired) }
    }

    @Test func aMissingKnobIsAnErrorNamingThePath() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        let ksm = KSMControl(root: root.path)
        #expect(!ksm.isAvailable)
        #expect(throws: KernelFileError(operation: "write", path: root.path + "/sys/kernel/mm/ksm/pages_to_scan",
                                        errno: ENOENT)) {
            try ksm.apply(KSMSettings(run: true, pagesToScan: 1, sleepMillisecs: 1))
        }
    }
}

/// The fake kernel: `mkdir` in a fake cgroup tree also creates the control files the kernel would.
private func fakeCgroupKernel(_ version: CGroupVersion) -> @Sendable (String) -> Int32 {
    { path in
        guard mkdir(path, 0o755) == 0 else { return -1 }
        let files: [String: String]
        switch version {
        case .v2:
            files = ["cgroup.procs": "", "cgroup.subtree_control": "\n", "cgroup.controllers": "cpu\n",
                     "cpu.weight": "100\n", "cpu.max": "max 100000\n"]
        case .v1:
            files = ["cgroup.procs": "", "tasks": "", "cpu.shares": "1024\n", "cpu.cfs_quota_us": "-1\n",
                     "cpu.cfs_period_us": "100000\n"]
        }
        for (name, text) in files {
            FileManager.default.createFile(atPath: path + "/" + name, contents: Data(text.utf8))
        }
        return 0
    }
}

@Suite struct CGroupManagerTests {
    @Test func v2CreatesTheGroupWithCPUEnabledOnTheWayDown() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
        try root.write("sys/fs/cgroup/cgroup.subtree_control", "memory\n")
        let cgroups = try CGroupManager(root: root.path, parent: "corral", makeDirectory: fakeCgroupKernel(.v2))
        #expect(cgroups.version == .v2)
        try cgroups.create(vm: "web")
        #expect(root.read("sys/fs/cgroup/cgroup.subtree_control") == "+cpu\n")
        #expect(root.read("sys/fs/cgroup/corral/cgroup.subtree_control") == "+cpu\n")
        #expect(root.exists("sys/fs/cgroup/corral/web/cpu.weight"))
        try cgroups.create(vm: "web")  // again: reused, no error

        try cgroups.apply(CGroupCPULimits(weight: 250, quotaPercent: 150), vm: "web")
        #expect(root.read("sys/fs/cgroup/corral/web/cpu.weight") == "250\n")
        #expect(root.read("sys/fs/cgroup/corral/web/cpu.max") == "150000 100000\n")
        #expect(try cgroups.limits(vm: "web") == CGroupCPULimits(weight: 250, quotaPercent: 150))

        try cgroups.apply(CGroupCPULimits(weight: 100), vm: "web")
        #expect(root.read("sys/fs/cgroup/corral/web/cpu.max") == "max 100000\n")
        #expect(try cgroups.limits(vm: "web") == CGroupCPULimits(weight: 100, quotaPercent: nil))

        try cgroups.move(pid: 4242, vm: "web")
        #expect(root.read("sys/fs/cgroup/corral/web/cgroup.procs") == "4242\n")
        #expect(try cgroups.pids(vm: "web") == [4242])
    }

    @Test func v2DoesNotRewriteAnEnabledController() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("sys/fs/cgroup/cgroup.controllers", "cpu\n")
        try root.write("sys/fs/cgroup/cgroup.subtree_control", "cpu memory\n")
        let cgroups = try CGroupManager(root: root.path, parent: "machines/corral", makeDirectory: fakeCgroupKernel(.v2))
        try cgroups.create(vm: "db")
        #expect(root.read("sys/fs/cgroup/cgroup.subtree_control") == "cpu memory\n")
        #expect(root.read("sys/fs/cgroup/machines/cgroup.subtree_control") == "+cpu\n")
        #expect(cgroups.path(vm: "db") == root.path + "/sys/fs/cgroup/machines/corral/db")
        #expect(root.exists("sys/fs/cgroup/machines/corral/db/cpu.max"))
    }

    @Test func v1UsesTheCPUHierarchyWithSharesAndCFSQuota() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("sys/fs/cgroup/cpu,cpuacct/cpu.shares", "1024\n")
        let cgroups = try CGroupManager(root: root.path, parent: "corral", makeDirectory: fakeCgroupKernel(.v1))
        #expect(cgroups.version == .v1)
        #expect(cgroups.hierarchy == root.path + "/sys/fs/cgroup/cpu,cpuacct")
        try cgroups.create(vm: "web")
        try cgroups.apply(CGroupCPULimits(weight: 50, quotaPercent: 50), vm: "web")
        let group = "sys/fs/cgroup/cpu,cpuacct/corral/web/"
        #expect(root.read(group + "cpu.shares") == "512\n")
        #expect(root.read(group + "cpu.cfs_period_us") == "100000\n")
        #expect(root.read(group + "cpu.cfs_quota_us") == "50000\n")
        #expect(try cgroups.limits(vm: "web") == CGroupCPULimits(weight: 50, quotaPercent: 50))
        try cgroups.apply(CGroupCPULimits(weight: 10000), vm: "web")
        #expect(root.read(group + "cpu.shares") == "102400\n")
        #expect(root.read(group + "cpu.cfs_quota_us") == "-1\n")

        try cgroups.move(pid: 77, vm: "web")
        #expect(root.read(group + "cgroup.procs") == "77\n")
        #expect(root.read(group + "tasks") == "")
    }

    @Test func removeDeletesTheGroupAndToleratesAMissingOne() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        try root.write("sys/fs/cgroup/cpu/cpu.shares", "1024\n")
        // A real cgroup folder is removed with its control files; a plain one must be empty, so use mkdir.
        let cgroups = try CGroupManager(root: root.path, parent: "corral", makeDirectory: { mkdir($0, 0o755) })
        try cgroups.create(vm: "web")
        try cgroups.remove(vm: "web")
        #expect(!root.exists("sys/fs/cgroup/cpu/corral/web"))
        try cgroups.remove(vm: "web")
    }

    @Test func noControllerIsAClearError() throws {
        let root = try FakeRoot()
        defer { root.cleanup() }
        #expect(throws: CGroupManager.Failure.noCPUController(root: root.path)) {
            try CGroupManager(root: root.path)
        }
        #expect(CGroupManager.Failure.noCPUController(root: "/x").description
            == "no cgroup cpu controller under /x/sys/fs/cgroup: neither v2 (cgroup.controllers) nor a v1 cpu "
            + "hierarchy (cpu/ or cpu,cpuacct/); mount cgroups first")
    }

    @Test func weightToSharesMapping() {
        #expect(CGroupCPULimits.shares(forWeight: 100) == 1024)
        #expect(CGroupCPULimits.shares(forWeight: 1) == 10)
        #expect(CGroupCPULimits.shares(forWeight: 10000) == 102_400)
        for weight in 1...10000 {
            #expect(CGroupCPULimits.weight(forShares: CGroupCPULimits.shares(forWeight: weight)) == weight)
        }
    }

    /// On this machine's real cgroup hierarchy (v1 or v2): a group, a process in it, its shares, cleanup.
    @Test func realHierarchy() async throws {
        let parent = "corral-test-\(UInt32.random(in: 0...UInt32.max))"
        let cgroups: CGroupManager
        do {
            cgroups = try CGroupManager(parent: parent)
            try cgroups.create(vm: "vm")
        } catch {
            Issue.record("the real cgroup hierarchy is not usable (run the tests as root on a host with cgroups): \(error)")
            return
        }
        let sleeper = try ProcessLauncher.launch(LaunchSpec(executable: "/bin/sleep", arguments: ["30"]))
        defer {
            if !sleeper.hasExited { sleeper.signal(SIGKILL) }
            _ = try? cgroups.remove(vm: "vm")
            rmdir(cgroups.parentPath)
        }
        try cgroups.apply(CGroupCPULimits(weight: 200, quotaPercent: 50), vm: "vm")
        try cgroups.move(pid: sleeper.pid, vm: "vm")

        let membership = try String(contentsOfFile: "/proc/\(sleeper.pid)/cgroup", encoding: .utf8)
        let expectedLine = cgroups.version == .v1 ? ":cpu" : "::"
        #expect(membership.split(separator: "\n").contains {
            $0.contains(expectedLine) && $0.hasSuffix(":/\(parent)/vm")
        }, "/proc/\(sleeper.pid)/cgroup:\n\(membership)")
        #expect(try cgroups.pids(vm: "vm") == [sleeper.pid])
        switch cgroups.version {
        case .v1: #expect(try KernelFiles.readValue(cgroups.path(vm: "vm") + "/cpu.shares") == "2048")
        case .v2: #expect(try KernelFiles.readValue(cgroups.path(vm: "vm") + "/cpu.weight") == "200")
        }
        #expect(try cgroups.limits(vm: "vm") == CGroupCPULimits(weight: 200, quotaPercent: 50))

        // A group with a process in it cannot go; once the process is gone, it can.
        #expect(throws: CGroupManager.Failure.self) { try cgroups.remove(vm: "vm") }
        sleeper.signal(SIGKILL)
        _ = await sleeper.waitForExit()
        try cgroups.remove(vm: "vm")
        #expect(!KernelFiles.exists(cgroups.path(vm: "vm")))
    }
}

@Suite struct VCPUPinningTests {
    static let reply: JSONValue = [
        ["cpu-index": 1, "qom-path": "/machine/unattached/device[1]", "thread-id": 5012, "target": "x86_64"],
        ["cpu-index": 0, "qom-path": "/machine/unattached/device[0]", "thread-id": 5011, "target": "x86_64"],
        ["cpu-index": 2, "qom-path": "/machine/peripheral/cpu2", "thread-id": 5013, "target": "x86_64"],
    ]

    @Test func threadsFromQueryCPUsFast() throws {
        #expect(try VCPUPinning.threads(fromQueryCPUsFast: Self.reply) == [
            VCPUThread(cpuIndex: 1, threadID: 5012), VCPUThread(cpuIndex: 0, threadID: 5011),
            VCPUThread(cpuIndex: 2, threadID: 5013),
        ])
    }

    @Test func planPinsByVCPUIndexAndLeavesExtraVCPUsAlone() throws {
        let threads = try VCPUPinning.threads(fromQueryCPUsFast: Self.reply)
        #expect(VCPUPinning.plan(threads: threads, pinning: [3, 1]) == [
            VCPUPin(cpuIndex: 0, threadID: 5011, hostCPU: 3), VCPUPin(cpuIndex: 1, threadID: 5012, hostCPU: 1),
        ])
        #expect(VCPUPinning.plan(threads: threads, pinning: []) == [])
    }

    @Test func malformedRepliesAreErrors() {
        #expect(throws: VCPUPinning.Failure.self) { try VCPUPinning.threads(fromQueryCPUsFast: ["cpu-index": 0]) }
        #expect(throws: VCPUPinning.Failure.self) {
            try VCPUPinning.threads(fromQueryCPUsFast: [["cpu-index": 0, "thread-id": "x"]])
        }
    }

    /// Pins a real process's (only) thread to CPU 0 and reads the kernel's view back.
    @Test func pinsARealThread() async throws {
        let sleeper = try ProcessLauncher.launch(LaunchSpec(executable: "/bin/sleep", arguments: ["30"]))
        defer { if !sleeper.hasExited { sleeper.signal(SIGKILL) } }
        let threads = [VCPUThread(cpuIndex: 0, threadID: sleeper.pid)]
        try VCPUPinning.apply(VCPUPinning.plan(threads: threads, pinning: [0]))
        #expect(try VCPUPinning.allowedCPUs(pid: sleeper.pid) == [0])
        let status = try String(contentsOfFile: "/proc/\(sleeper.pid)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("Cpus_allowed_list:") && $0.hasSuffix("\t0") })

        // An offline/nonexistent CPU is refused by the kernel with EINVAL.
        #expect(throws: VCPUPinning.Failure.affinity(threadID: sleeper.pid, hostCPU: 1000, errno: EINVAL)) {
            try VCPUPinning.setAffinity(threadID: sleeper.pid, cpus: [1000])
        }
        sleeper.signal(SIGKILL)
        _ = await sleeper.waitForExit()
    }
}
