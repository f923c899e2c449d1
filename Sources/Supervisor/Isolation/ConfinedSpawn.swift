import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Who a process runs as and what it may do: the unprivileged identity QEMU gets (one uid/gid per VM), with no
/// supplementary groups unless named, no capabilities, `no_new_privs`, no core dumps and a memlock limit.
public struct Confinement: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]
    /// RLIMIT_MEMLOCK: what the profile needs locked (0 unless it asks for locked memory or VFIO).
    public var memlockBytes: UInt64
    /// RLIMIT_NOFILE; 0 keeps the daemon's.
    public var openFiles: UInt64
    /// Folders the process sees empty (its own mount namespace): the daemon's state, home folders, temp folders.
    public var hiddenPaths: [String]
    /// `cgroup.procs` files of the groups the process joins in the child, before exec (the VM's device cgroup).
    public var joinCGroups: [String]

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = [], memlockBytes: UInt64 = 0, openFiles: UInt64 = 0,
                hiddenPaths: [String] = [], joinCGroups: [String] = []) {
        self.hiddenPaths = hiddenPaths
        self.joinCGroups = joinCGroups
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.memlockBytes = memlockBytes
        self.openFiles = openFiles
    }
}

extension ProcessLauncher {
    /// The steps of `corral_spawn_confined`, for the error message.
    static let confinedSteps = [
        1: "setsid", 2: "stdin", 3: "stdout", 4: "passing descriptors", 5: "closing descriptors",
        6: "RLIMIT_CORE", 7: "RLIMIT_MEMLOCK", 8: "RLIMIT_NOFILE", 9: "dropping capabilities", 10: "setgroups",
        11: "setresgid", 12: "setresuid", 13: "no_new_privs", 14: "execve", 15: "unshare(CLONE_NEWNS)",
        16: "making mounts private", 17: "hiding a folder", 18: "joining the VM's cgroup",
    ]

    /// fork + exec under `confinement` (see `corral_spawn_confined`): the identity is changed in the child before
    /// exec, so the program never runs as root.
    static func launchConfined(_ spec: LaunchSpec, _ confinement: Confinement) throws(LaunchError) -> ProcessHandle {
        guard let path = spec.path ?? HostProbe.findExecutable(spec.executable) else {
            throw LaunchError(executable: spec.executable, errno: ENOENT)
        }
        let output = open(spec.outputFile ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw LaunchError(executable: spec.executable, errno: errno) }
        defer { close(output) }
        let highest = max(2, spec.passing.keys.max() ?? 2)
        let placed = try placedCopies(spec)
        defer { for (_, copy) in placed { close(copy) } }
        let targets = placed.map(\.target)
        let sources = placed.map(\.copy)
        // The output descriptor must survive the placing too.
        let outputCopy = fcntl(output, F_DUPFD_CLOEXEC, highest + 1)
        guard outputCopy >= 0 else { throw LaunchError(executable: spec.executable, errno: errno) }
        defer { close(outputCopy) }

        let argv = [spec.executable] + spec.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var joins: [Int32] = []
        defer { for fd in joins { close(fd) } }
        for procs in confinement.joinCGroups {
            let fd = open(procs, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw LaunchError(executable: spec.executable + " (opening \(procs) to join the VM's cgroup)",
                                  errno: errno)
            }
            joins.append(fd)
        }
        var failedStep: Int32 = 0
        let groups = confinement.groups.map { gid_t($0) }
        let hidden: [UnsafePointer<CChar>?] = confinement.hiddenPaths.map { UnsafePointer(strdup($0)) }
        defer { for path in hidden { free(UnsafeMutablePointer(mutating: path)) } }
        let pid: pid_t = path.withCString { cPath in
          joins.withUnsafeBufferPointer { joinBuffer in
          hidden.withUnsafeBufferPointer { hiddenBuffer in
            targets.withUnsafeBufferPointer { targetBuffer in
                sources.withUnsafeBufferPointer { sourceBuffer in
                    groups.withUnsafeBufferPointer { groupBuffer in
                        cArgs.withUnsafeMutableBufferPointer { argBuffer in
                            var request = corral_confined_spawn(
                                path: cPath, argv: argBuffer.baseAddress, envp: environ, output_fd: outputCopy,
                                passing_targets: targetBuffer.baseAddress, passing_sources: sourceBuffer.baseAddress,
                                passing_count: Int32(targets.count), highest_target: highest,
                                new_session: spec.detach ? 1 : 0, uid: confinement.uid, gid: confinement.gid,
                                groups: groupBuffer.baseAddress, group_count: Int32(groups.count),
                                memlock_bytes: UInt(confinement.memlockBytes), nofile: UInt(confinement.openFiles),
                                hide_paths: hiddenBuffer.baseAddress, hide_count: Int32(hidden.count),
                                join_fds: joinBuffer.baseAddress, join_count: Int32(joins.count))
                            return corral_spawn_confined(&request, &failedStep)
                        }
                    }
                }
            }
          }
          }
        }
        guard pid > 0 else {
            let step = Self.confinedSteps[Int(failedStep)].map { " (at \($0))" } ?? ""
            throw LaunchError(executable: spec.executable + step, errno: -pid)
        }
        return ProcessHandle(pid: pid, isChild: true)
    }
}
