import HostDevices
import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// One device cgroup per confined VM (`PARENT/VM`): everything denied but the `DeviceRules`. QEMU joins the group in
/// the child before exec (`Confinement.joinCGroups`), so no device node outside the list can be opened by it at any
/// time. Two mechanisms, whichever the host has:
/// - cgroup v1's devices controller: `a` written to `devices.deny`, then one `devices.allow` line per rule;
/// - cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program allowing exactly the rules, attached to the group
///   (`corral_attach_device_program`).
public struct DeviceCGroup: Sendable {
    public enum Mechanism: String, Sendable, Equatable {
        case controller
        case program
    }

    /// `ROOT/sys/fs/cgroup/devices` (controller) or the cgroup v2 hierarchy (program).
    public let hierarchy: String
    public let mechanism: Mechanism
    public let parent: String
    let makeDirectory: @Sendable (String) -> Int32
    let write: @Sendable (String, String) throws(KernelFileError) -> Void

    public enum Availability: Sendable, Equatable {
        case available(hierarchy: String, mechanism: Mechanism)
        case unavailable(reason: String)
    }

    /// The v1 devices controller under `root` when there is one (a hybrid host keeps its devices there), else a pure
    /// cgroup v2 hierarchy, or why there is neither.
    public static func availability(root: String) -> Availability {
        let base = root + "/sys/fs/cgroup"
        let devices = base + "/devices"
        if KernelFiles.exists(devices + "/devices.allow") { return .available(hierarchy: devices, mechanism: .controller) }
        if KernelFiles.exists(base + "/cgroup.controllers") { return .available(hierarchy: base, mechanism: .program) }
        return .unavailable(reason: "no cgroup devices controller and no cgroup v2 hierarchy under \(base)")
    }

    public init?(root: String = "", parent: String = "corral") {
        self.init(root: root, parent: parent, makeDirectory: { mkdir($0, 0o755) },
                  write: { (value, path) throws(KernelFileError) in try KernelFiles.write(value, to: path) })
    }

    /// BPF device programs on the cgroup v2 hierarchy at `hierarchy` (a hybrid host's `/sys/fs/cgroup/unified` too).
    public init(programOn hierarchy: String, parent: String = "corral") {
        self.hierarchy = hierarchy
        self.mechanism = .program
        self.parent = parent
        self.makeDirectory = { mkdir($0, 0o755) }
        self.write = { (value, path) throws(KernelFileError) in try KernelFiles.write(value, to: path) }
    }

    init?(root: String, parent: String, makeDirectory: @escaping @Sendable (String) -> Int32,
          write: @escaping @Sendable (String, String) throws(KernelFileError) -> Void) {
        guard case .available(let hierarchy, let mechanism) = Self.availability(root: root) else { return nil }
        self.hierarchy = hierarchy
        self.mechanism = mechanism
        self.parent = parent
        self.makeDirectory = makeDirectory
        self.write = write
    }

    public func path(vm: String) -> String { hierarchy + "/" + parent + "/" + vm }

    /// Creates `PARENT/VM` (reusing one left from before), lets it reach only `rules`, and returns the group's
    /// `cgroup.procs`, for QEMU to join.
    public func prepare(vm: String, rules: [DeviceRule]) throws(KernelFileError) -> String {
        var current = hierarchy
        for component in parent.split(separator: "/") + [Substring(vm)] {
            current += "/" + component
            guard makeDirectory(current) == 0 || errno == EEXIST else {
                throw KernelFileError(operation: "mkdir", path: current, errno: errno)
            }
        }
        let group = path(vm: vm)
        switch mechanism {
        case .controller:
            // One rule per write: the kernel parses one per write.
            try write("a\n", group + "/devices.deny")
            for rule in rules { try write(rule.line + "\n", group + "/devices.allow") }
        case .program:
            try attachProgram(group, rules)
        }
        return group + "/cgroup.procs"
    }

    private func attachProgram(_ group: String, _ rules: [DeviceRule]) throws(KernelFileError) {
        let fd = open(group, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelFileError(operation: "open", path: group, errno: errno) }
        defer { close(fd) }
        let entries = rules.map { rule in
            corral_device_rule(block: rule.kind == .block ? 1 : 0, major: rule.major.map { Int32($0) } ?? -1,
                               minor: rule.minor.map { Int32($0) } ?? -1, access: Self.accessBits(rule.access))
        }
        var message = [CChar](repeating: 0, count: 4608)
        let status = entries.withUnsafeBufferPointer {
            corral_attach_device_program(fd, $0.baseAddress, Int32($0.count), &message, UInt(message.count))
        }
        guard status == 0 else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KernelFileError(operation: "bpf", path: group, errno: -status, hint: text)
        }
    }

    /// `rwm` → the kernel's BPF_DEVCG_ACC_* bits (mknod 1, read 2, write 4).
    static func accessBits(_ access: String) -> Int32 {
        (access.contains("m") ? 1 : 0) | (access.contains("r") ? 2 : 0) | (access.contains("w") ? 4 : 0)
    }

    /// The rules in force (`devices.list`), one per line; with a program, one line saying how many are attached.
    public func rules(vm: String) throws(KernelFileError) -> [String] {
        switch mechanism {
        case .controller:
            return try KernelFiles.read(path(vm: vm) + "/devices.list").split(separator: "\n").map(String.init)
        case .program:
            let fd = open(path(vm: vm), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw KernelFileError(operation: "open", path: path(vm: vm), errno: errno) }
            defer { close(fd) }
            let count = corral_device_programs(fd)
            guard count >= 0 else { throw KernelFileError(operation: "bpf query", path: path(vm: vm), errno: -count) }
            return count == 0 ? [] : ["\(count) BPF device program\(count == 1 ? "" : "s")"]
        }
    }

    /// What `status` says about the VM's device rules.
    public func summary(vm: String, allowed: Int) -> String {
        guard let rules = try? rules(vm: vm), !rules.isEmpty, !rules.contains("a *:* rwm") else { return "no device rules" }
        switch mechanism {
        case .controller: return "device cgroup allowing \(rules.count) nodes"
        case .program: return "device cgroup allowing \(allowed) nodes (BPF program)"
        }
    }

    /// Removes the group (rmdir). Missing is fine; one that still holds a process stays (EBUSY).
    public func remove(vm: String) {
        _ = rmdir(path(vm: vm))
    }
}
