#if canImport(Glibc)
import HostDevices
import Glibc
#endif

/// CPU limits for one VM's cgroup, in cgroup v2 terms (Documentation/admin-guide/cgroup-v2.rst).
public struct CGroupCPULimits: Sendable, Equatable {
    /// `cpu.weight`, 1…10000 (default 100). On v1 written as `cpu.shares` = weight × 1024 / 100.
    public var weight: Int
    /// Hard limit as a percentage of one CPU (150 = 1.5 CPUs per period); nil = no limit.
    public var quotaPercent: Int?

    public init(weight: Int = 100, quotaPercent: Int? = nil) {
        self.weight = weight
        self.quotaPercent = quotaPercent
    }

    /// CFS bandwidth period used for quotas: 100 ms, the kernel default.
    public static let periodMicros = 100_000

    /// Quota per period in µs: percent × period / 100.
    public var quotaMicros: Int? { quotaPercent.map { $0 * Self.periodMicros / 100 } }

    /// v1 `cpu.shares` for a v2 weight: weight × 1024 / 100 (rounded down), so the default weight 100 is the
    /// default 1024 shares and the ratio between two VMs is the same on both versions; at least 2 (v1's
    /// minimum).
    public static func shares(forWeight weight: Int) -> Int { max(2, weight * 1024 / 100) }

    /// The inverse of `shares(forWeight:)`, rounded to the nearest weight (exact for every weight 1…10000).
    public static func weight(forShares shares: Int) -> Int { max(1, (shares * 100 + 512) / 1024) }
}

/// Which cgroup interface the host has for the cpu controller.
public enum CGroupVersion: String, Sendable, Equatable {
    /// Unified hierarchy at `/sys/fs/cgroup` (`cgroup.controllers` exists there).
    case v2
    /// The cpu controller's own hierarchy at `/sys/fs/cgroup/cpu` (or `cpu,cpuacct`).
    case v1
}

/// Creates one cgroup per VM, `PARENT/VM` (PARENT defaults to `corral`), sets its CPU weight and quota,
/// moves QEMU into it and removes it when the VM is gone. Every path is under `root` ("" for the real host,
/// a temporary folder holding a fake `sys/fs/cgroup` in tests).
///
/// - v2: `+cpu` is enabled in `cgroup.subtree_control` from the hierarchy root down to PARENT, so each VM
///   group has `cpu.weight` and `cpu.max` ("QUOTA PERIOD" or "max PERIOD").
/// - v1: groups live in the cpu controller's hierarchy; weight goes to `cpu.shares`, quota to
///   `cpu.cfs_period_us` and `cpu.cfs_quota_us` (-1 = no limit).
///
/// QEMU is moved by writing its pid to `cgroup.procs` (both versions), which moves every thread of the
/// process (vCPU and I/O threads included). v1's `tasks` would move only the one thread.
public struct CGroupManager: Sendable {
    public let root: String
    public let version: CGroupVersion
    /// The hierarchy the groups live in: `ROOT/sys/fs/cgroup` (v2) or its cpu controller folder (v1).
    public let hierarchy: String
    /// Parent group of the VM groups, relative to `hierarchy` (may contain `/`).
    public let parent: String
    /// Creates a folder; on cgroupfs the kernel fills it with control files. Tests replace it with a fake
    /// kernel that creates those files in a plain folder.
    let makeDirectory: @Sendable (String) -> Int32

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Neither layout found under the root.
        case noCPUController(root: String)
        case file(KernelFileError)

        public var description: String {
            switch self {
            case .noCPUController(let root):
                return "no cgroup cpu controller under \(root)/sys/fs/cgroup: neither v2 "
                    + "(cgroup.controllers) nor a v1 cpu hierarchy (cpu/ or cpu,cpuacct/); mount cgroups first"
            case .file(let error):
                return error.description
            }
        }
    }

    public init(root: String = "", parent: String = "corral") throws(Failure) {
        try self.init(root: root, parent: parent, makeDirectory: { mkdir($0, 0o755) })
    }

    init(root: String, parent: String, makeDirectory: @escaping @Sendable (String) -> Int32) throws(Failure) {
        guard let (version, hierarchy) = Self.detect(root: root) else { throw .noCPUController(root: root) }
        self.root = root
        self.version = version
        self.hierarchy = hierarchy
        self.parent = parent
        self.makeDirectory = makeDirectory
    }

    /// v2 when `sys/fs/cgroup/cgroup.controllers` exists; else v1 when `sys/fs/cgroup/cpu` or
    /// `sys/fs/cgroup/cpu,cpuacct` has `cpu.shares`. A hybrid host (v1 controllers plus an empty v2 tree at
    /// `unified/`) is v1, since that is where the cpu controller is.
    public static func detect(root: String) -> (CGroupVersion, String)? {
        let base = root + "/sys/fs/cgroup"
        if KernelFiles.exists(base + "/cgroup.controllers") { return (.v2, base) }
        for name in ["cpu", "cpu,cpuacct"] where KernelFiles.exists(base + "/" + name + "/cpu.shares") {
            return (.v1, base + "/" + name)
        }
        return nil
    }

    public var parentPath: String { hierarchy + "/" + parent }

    /// The VM's group folder.
    public func path(vm: String) -> String { parentPath + "/" + vm }

    /// Creates PARENT (if needed) and PARENT/VM (an existing one is reused) and, on v2, enables the cpu
    /// controller on the way down.
    public func create(vm: String) throws(Failure) {
        var current = hierarchy
        if version == .v2 { try enableCPU(in: current) }
        for component in parent.split(separator: "/") {
            current += "/" + component
            try makeFolder(current)
            if version == .v2 { try enableCPU(in: current) }
        }
        try makeFolder(path(vm: vm))
    }

    /// Sets weight and quota.
    public func apply(_ limits: CGroupCPULimits, vm: String) throws(Failure) {
        let group = path(vm: vm)
        let period = CGroupCPULimits.periodMicros
        try wrap { () throws(KernelFileError) in
            switch version {
            case .v2:
                try KernelFiles.write("\(limits.weight)\n", to: group + "/cpu.weight")
                let quota = limits.quotaMicros.map(String.init) ?? "max"
                try KernelFiles.write("\(quota) \(period)\n", to: group + "/cpu.max")
            case .v1:
                try KernelFiles.write("\(CGroupCPULimits.shares(forWeight: limits.weight))\n", to: group + "/cpu.shares")
                // Period first: a quota is checked against the period in force.
                try KernelFiles.write("\(period)\n", to: group + "/cpu.cfs_period_us")
                try KernelFiles.write("\(limits.quotaMicros ?? -1)\n", to: group + "/cpu.cfs_quota_us")
            }
        }
    }

    /// Reads weight and quota back (v1 shares converted to a weight).
    public func limits(vm: String) throws(Failure) -> CGroupCPULimits {
        let group = path(vm: vm)
        return try wrap { () throws(KernelFileError) -> CGroupCPULimits in
            switch version {
            case .v2:
                let weight = try KernelFiles.readInt(group + "/cpu.weight")
                let fields = try KernelFiles.readValue(group + "/cpu.max").split(separator: " ")
                guard fields.count == 2, let period = Int(fields[1]), period > 0 else {
                    throw KernelFileError(operation: "parse", path: group + "/cpu.max", errno: 0)
                }
                let quota = fields[0] == "max" ? nil : Int(fields[0])
                return CGroupCPULimits(weight: weight, quotaPercent: quota.map { $0 * 100 / period })
            case .v1:
                let shares = try KernelFiles.readInt(group + "/cpu.shares")
                let quota = try KernelFiles.readInt(group + "/cpu.cfs_quota_us")
                let period = try KernelFiles.readInt(group + "/cpu.cfs_period_us")
                return CGroupCPULimits(weight: CGroupCPULimits.weight(forShares: shares),
                                       quotaPercent: quota < 0 || period <= 0 ? nil : quota * 100 / period)
            }
        }
    }

    /// Moves the whole process `pid` (all its threads) into the VM's group.
    public func move(pid: pid_t, vm: String) throws(Failure) {
        try wrap { () throws(KernelFileError) in try KernelFiles.write("\(pid)\n", to: path(vm: vm) + "/cgroup.procs") }
    }

    /// Pids in the VM's group.
    public func pids(vm: String) throws(Failure) -> [pid_t] {
        try wrap { () throws(KernelFileError) in try KernelFiles.read(path(vm: vm) + "/cgroup.procs") }
            .split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
    }

    /// Removes the VM's group (rmdir). Missing is fine; a group that still holds processes fails with EBUSY.
    public func remove(vm: String) throws(Failure) {
        let group = path(vm: vm)
        guard rmdir(group) == 0 || errno == ENOENT else {
            let e = errno
            throw .file(KernelFileError(operation: "rmdir", path: group, errno: e,
                                        hint: e == EBUSY ? "processes are still in the group" : nil))
        }
    }

    // MARK: -

    private func makeFolder(_ path: String) throws(Failure) {
        if makeDirectory(path) == 0 || errno == EEXIST { return }
        throw .file(KernelFileError(operation: "mkdir", path: path, errno: errno))
    }

    /// v2: `+cpu` in the folder's `cgroup.subtree_control`, unless it is already there.
    private func enableCPU(in folder: String) throws(Failure) {
        let control = folder + "/cgroup.subtree_control"
        try wrap { () throws(KernelFileError) in
            let enabled = try KernelFiles.readValue(control).split(separator: " ")
            if enabled.contains("cpu") { return }
            do throws(KernelFileError) {
                try KernelFiles.write("+cpu\n", to: control)
            } catch {
                var error = error
                error.hint = "is the cpu controller listed in \(folder)/cgroup.controllers, "
                    + "and is no process in \(folder) itself (cgroup v2's no-internal-process rule)?"
                throw error
            }
        }
    }

    private func wrap<T>(_ body: () throws(KernelFileError) -> T) throws(Failure) -> T {
        do {
            return try body()
        } catch {
            throw .file(error)
        }
    }
}
