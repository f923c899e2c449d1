#if canImport(Glibc)
import Glibc
#endif

/// One device cgroup per confined VM (`PARENT/VM` in cgroup v1's devices hierarchy): everything denied, then the
/// `DeviceRules` allowed. QEMU joins the group in the child before exec (`Confinement.joinCGroups`), so no device
/// node outside the list can be opened by it at any time.
///
/// cgroup v2 has no device files: its device control is a BPF program attached to the group, which corral does not
/// load; there `DeviceCGroup.availability` says so and VMs run without device rules (the mount namespace, the uid
/// and the descriptor hand-over still apply).
public struct DeviceCGroup: Sendable {
    /// `ROOT/sys/fs/cgroup/devices`.
    public let hierarchy: String
    public let parent: String
    let makeDirectory: @Sendable (String) -> Int32
    let write: @Sendable (String, String) throws(KernelFileError) -> Void

    public enum Availability: Sendable, Equatable {
        case available(hierarchy: String)
        case unavailable(reason: String)
    }

    /// The v1 devices hierarchy under `root`, or why there is none.
    public static func availability(root: String) -> Availability {
        let base = root + "/sys/fs/cgroup"
        let devices = base + "/devices"
        if KernelFiles.exists(devices + "/devices.allow") { return .available(hierarchy: devices) }
        if KernelFiles.exists(base + "/cgroup.controllers") {
            return .unavailable(reason: "cgroup v2: device rules there are a BPF program, which corral does not load")
        }
        return .unavailable(reason: "no cgroup devices controller under \(base)")
    }

    public init?(root: String = "", parent: String = "corral") {
        self.init(root: root, parent: parent, makeDirectory: { mkdir($0, 0o755) },
                  write: { (value, path) throws(KernelFileError) in try KernelFiles.write(value, to: path) })
    }

    init?(root: String, parent: String, makeDirectory: @escaping @Sendable (String) -> Int32,
          write: @escaping @Sendable (String, String) throws(KernelFileError) -> Void) {
        guard case .available(let hierarchy) = Self.availability(root: root) else { return nil }
        self.hierarchy = hierarchy
        self.parent = parent
        self.makeDirectory = makeDirectory
        self.write = write
    }

    public func path(vm: String) -> String { hierarchy + "/" + parent + "/" + vm }

    /// Creates `PARENT/VM` (reusing one left from before), denies every device, allows `rules` (one write each:
    /// the kernel takes one rule per write), and returns the group's `cgroup.procs`, for QEMU to join.
    public func prepare(vm: String, rules: [DeviceRule]) throws(KernelFileError) -> String {
        var current = hierarchy
        for component in parent.split(separator: "/") + [Substring(vm)] {
            current += "/" + component
            guard makeDirectory(current) == 0 || errno == EEXIST else {
                throw KernelFileError(operation: "mkdir", path: current, errno: errno)
            }
        }
        let group = path(vm: vm)
        try write("a\n", group + "/devices.deny")
        for rule in rules { try write(rule.line + "\n", group + "/devices.allow") }
        return group + "/cgroup.procs"
    }

    /// The rules in force (`devices.list`), one per line.
    public func rules(vm: String) throws(KernelFileError) -> [String] {
        try KernelFiles.read(path(vm: vm) + "/devices.list").split(separator: "\n").map(String.init)
    }

    /// Removes the group (rmdir). Missing is fine; one that still holds a process stays (EBUSY).
    public func remove(vm: String) {
        _ = rmdir(path(vm: vm))
    }
}
