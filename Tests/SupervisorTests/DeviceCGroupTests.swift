import Foundation
import Synchronization
import Testing
@testable import HostDevices
@testable import Supervisor
#if canImport(Glibc)
import Glibc
#endif

/// The device cgroup a confined QEMU joins: the rules (pure), the writes against a fake hierarchy, and (as root, on
/// a host with cgroup v1's devices controller) a real child that joins a real group and is refused a device node.
struct DeviceCGroupTests {
    @Test func theRulesAreTheHarmlessNodesAndKVMOnlyUnderKVM() {
        #expect(DeviceRules.allowed(accel: .tcg).map(\.line) == ["c 1:3 rw", "c 1:5 rw", "c 1:7 rw", "c 1:8 rw", "c 1:9 rw"])
        #expect(DeviceRules.allowed(accel: .kvm).map(\.line).last == "c 10:232 rw")
        #expect(DeviceRules.allowed(accel: .kvm).count == 6)
        #expect(DeviceRule(.character, 136, nil, "rw", name: "pts").line == "c 136:* rw")
        #expect(!DeviceRules.allowed(accel: .kvm).contains { $0.access.contains("m") }, "nothing may be created")
    }

    /// A fake `ROOT/sys/fs/cgroup` of the given layout.
    static func fakeRoot(_ files: [String]) throws -> String {
        let root = NSTemporaryDirectory() + "corral-devcg-\(UUID().uuidString.prefix(8))"
        for file in files {
            let path = root + "/sys/fs/cgroup/" + file
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: path, contents: Data())
        }
        return root
    }

    @Test func availabilityPrefersTheV1ControllerThenAV2Program() throws {
        let v1 = try Self.fakeRoot(["devices/devices.allow", "cpu/cpu.shares", "unified/cgroup.procs"])
        let v2 = try Self.fakeRoot(["cgroup.controllers"])
        let none = try Self.fakeRoot(["cpu/cpu.shares"])
        defer { for root in [v1, v2, none] { try? FileManager.default.removeItem(atPath: root) } }
        #expect(DeviceCGroup.availability(root: v1) == .available(hierarchy: v1 + "/sys/fs/cgroup/devices", mechanism: .controller))
        #expect(DeviceCGroup.availability(root: v2) == .available(hierarchy: v2 + "/sys/fs/cgroup", mechanism: .program))
        guard case .unavailable(let noneReason) = DeviceCGroup.availability(root: none) else {
            Issue.record("a host with neither has no device cgroup")
            return
        }
        #expect(noneReason.contains("no cgroup devices controller and no cgroup v2 hierarchy"))
        #expect(DeviceCGroup(root: none) == nil && DeviceCGroup(root: v1)?.mechanism == .controller)
    }

    @Test func accessLettersBecomeTheKernelsBits() {
        #expect(DeviceCGroup.accessBits("rw") == 6)
        #expect(DeviceCGroup.accessBits("rwm") == 7)
        #expect(DeviceCGroup.accessBits("r") == 2)
    }

    /// Deny everything first, then one write per allowed rule (the kernel parses one rule per write), in the VM's
    /// group under the parent; the group's `cgroup.procs` is what the child joins.
    @Test func prepareDeniesAllThenAllowsEachRuleInItsOwnWrite() throws {
        let root = try Self.fakeRoot(["devices/devices.allow"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let writes = Mutex<[String]>([])
        let made = DeviceCGroup(root: root, parent: "corral/test", makeDirectory: { mkdir($0, 0o755) },
                                write: { value, path in writes.withLock { $0.append("\(path): \(value)") } })
        let group = try #require(made)
        let procs = try group.prepare(vm: "web", rules: DeviceRules.allowed(accel: .tcg))
        let base = root + "/sys/fs/cgroup/devices/corral/test/web"
        #expect(procs == base + "/cgroup.procs")
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: base, isDirectory: &isFolder) && isFolder.boolValue)
        let recorded = writes.withLock { $0 }
        #expect(recorded.first == "\(base)/devices.deny: a\n")
        #expect(Array(recorded.dropFirst()) == ["1:3", "1:5", "1:7", "1:8", "1:9"].map { "\(base)/devices.allow: c \($0) rw\n" })
        // Prepared again (a restart), the existing folder is reused.
        _ = try group.prepare(vm: "web", rules: [])
        group.remove(vm: "web")
        #expect(!FileManager.default.fileExists(atPath: base))
    }

    @Test func aWriteTheKernelRefusesIsTheError() throws {
        let root = try Self.fakeRoot(["devices/devices.allow"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let made = DeviceCGroup(root: root, parent: "corral", makeDirectory: { mkdir($0, 0o755) },
                                write: { _, path throws(KernelFileError) in
                                    throw KernelFileError(operation: "write", path: path, errno: EINVAL)
                                })
        let group = try #require(made)
        #expect(throws: KernelFileError.self) { _ = try group.prepare(vm: "web", rules: []) }
    }
}

/// A real child in a real device cgroup (cgroup v1's devices controller, as root): it can open /dev/null but not
/// /dev/ptmx, whose mode (0666) lets any uid open it.
@Suite(.enabled(if: getuid() == 0 && DeviceCGroup(root: "") != nil, "needs root and cgroup v1's devices controller"))
struct RealDeviceCGroupTests {
    @Test func aConfinedChildInItsDeviceCGroupIsRefusedEveryOtherNode() async throws {
        let group = try #require(DeviceCGroup(root: "", parent: "corral-test"))
        let vm = "devices-\(getpid())"
        let procs = try group.prepare(vm: vm, rules: DeviceRules.allowed(accel: .tcg))
        defer {
            group.remove(vm: vm)
            _ = rmdir(group.hierarchy + "/corral-test")
        }
        #expect(try group.rules(vm: vm) == DeviceRules.allowed(accel: .tcg).map(\.line))
        let output = "/tmp/corral-devcg-\(getpid()).out"
        defer { unlink(output) }
        let script = "grep devices /proc/self/cgroup; (: < /dev/null) && echo null-ok; (: < /dev/ptmx) || echo ptmx-refused"
        var spec = LaunchSpec(executable: "/bin/sh", arguments: ["-c", script], outputFile: output)
        spec.confinement = Confinement(uid: 2_000_127, gid: 2_000_127, joinCGroups: [procs])
        let status = await (try ProcessLauncher.launch(spec)).waitForExit()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == .exited(0), "\(text)")
        #expect(text.contains(":devices:/corral-test/\(vm)\n"), "\(text)")
        #expect(text.contains("null-ok") && text.contains("ptmx-refused") && text.contains("Operation not permitted"), "\(text)")

        // The same child outside the group opens /dev/ptmx: the refusal above is the group's.
        var free = LaunchSpec(executable: "/bin/sh", arguments: ["-c", "(: < /dev/ptmx) && echo ptmx-ok"], outputFile: output)
        free.confinement = Confinement(uid: 2_000_127, gid: 2_000_127)
        _ = await (try ProcessLauncher.launch(free)).waitForExit()
        #expect(((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("ptmx-ok"))
    }
}

/// The cgroup v2 mechanism, for real: a BPF device program on this host's v2 hierarchy (the unified one of a hybrid
/// host), a confined child in that group refused /dev/ptmx and allowed /dev/null by the program alone.
enum CGroupV2 {
    /// This host's cgroup v2 hierarchy: the unified one of a hybrid host, or /sys/fs/cgroup on a pure v2 host.
    static let hierarchy: String? = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].first {
        FileManager.default.fileExists(atPath: $0 + "/cgroup.procs")
            && !FileManager.default.fileExists(atPath: $0 + "/devices")
    }
}

@Suite(.enabled(if: getuid() == 0 && CGroupV2.hierarchy != nil, "needs root and a cgroup v2 hierarchy"))
struct RealDeviceProgramTests {
    @Test func aChildInAGroupWithTheProgramIsRefusedEveryOtherNode() async throws {
        let group = DeviceCGroup(programOn: try #require(CGroupV2.hierarchy), parent: "corral-test")
        let vm = "program-\(getpid())"
        let procs = try group.prepare(vm: vm, rules: DeviceRules.allowed(accel: .tcg))
        defer {
            group.remove(vm: vm)
            _ = rmdir(group.hierarchy + "/corral-test")
        }
        #expect(try group.rules(vm: vm) == ["1 BPF device program"])
        #expect(group.summary(vm: vm, allowed: 5) == "device cgroup allowing 5 nodes (BPF program)")
        let output = "/tmp/corral-devprog-\(getpid()).out"
        defer { unlink(output) }
        let script = "(: < /dev/null) && echo null-ok; (: < /dev/zero) && echo zero-ok; (: < /dev/ptmx) || echo ptmx-refused"
        var spec = LaunchSpec(executable: "/bin/sh", arguments: ["-c", script], outputFile: output)
        spec.confinement = Confinement(uid: 2_000_128, gid: 2_000_128, joinCGroups: [procs])
        let status = await (try ProcessLauncher.launch(spec)).waitForExit()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == .exited(0), "\(text)")
        #expect(text.contains("null-ok") && text.contains("zero-ok") && text.contains("ptmx-refused")
                && text.contains("Operation not permitted"), "\(text)")
    }
}
