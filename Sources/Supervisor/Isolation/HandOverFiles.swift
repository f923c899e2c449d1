import Profiles
import QEMUCommand
import UnixSockets
#if canImport(Glibc)
import Glibc
#endif

/// The descriptors of a `HandOverPlan`, opened by the daemon (as root) for an unprivileged QEMU: the QMP and agent
/// sockets already listening at their paths, the serial log, every disk (claimed for the VM's uid unless the claim
/// waits for a migration's commit), the kernel and initrd.
struct HandOverFiles {
    /// The number QEMU finds each at → ours.
    var descriptors: [Int32: Int32] = [:]
    /// Disk files claimed here (given back if the start fails).
    var claimed: [String] = []

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func open(_ plan: HandOverPlan, config: LiveConfig, paths: VMPaths, uid: UInt32,
                     claimDisks: Bool) throws(Failure) -> HandOverFiles {
        var files = HandOverFiles()
        do {
            try files.openAll(plan, config: config, paths: paths, uid: uid, claimDisks: claimDisks)
        } catch {
            files.undo(vm: config.profile.name, paths: paths)
            throw error
        }
        return files
    }

    private mutating func openAll(_ plan: HandOverPlan, config: LiveConfig, paths: VMPaths, uid: UInt32,
                                  claimDisks: Bool) throws(Failure) {
        let profile = config.profile
        func listen(_ path: String) throws(Failure) -> Int32 {
            FileOps.remove(path)
            do {
                let fd = try UnixStreamListen.listen(path: path, backlog: 16)
                chmod(path, 0o600)
                return fd
            } catch {
                throw Failure(description: "cannot listen on \(path): \(error)")
            }
        }
        func openFile(_ path: String, _ flags: Int32, what: String) throws(Failure) -> Int32 {
            let fd = Glibc.open(path, flags | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw Failure(description: "\(what): cannot open \(path): \(String(cString: strerror(errno)))") }
            return fd
        }
        descriptors[plan.qmp] = try listen(paths.qmpSocket)
        descriptors[plan.marker.fd] = try openFile("/dev/null", O_RDONLY, what: "marker")
        if let agent = plan.agent { descriptors[agent] = try listen(paths.agentSocket) }
        if let serial = plan.serial {
            descriptors[serial.fd] = try openFile(paths.serialLog, O_WRONLY | O_CREAT | O_APPEND, what: "serial log")
        }
        if let console = plan.console { descriptors[console] = try listen(paths.consoleSocket) }
        for disk in config.allDisks {
            guard let entry = plan.disks[disk.id] else { continue }
            do {
                let (fd, wasClaimed) = try FileClaims.handOver(disk.file, vm: profile.name, uid: uid,
                                                               readonly: disk.readonly, claim: claimDisks)
                if wasClaimed { claimed.append(disk.file) }
                descriptors[entry.fd] = fd
            } catch {
                throw Failure(description: "disks.\(disk.id): \(error.description)")
            }
        }
        for disk in config.allDisks {
            // A base image is shared by VMs: opened read-only here and never given to the VM's uid.
            guard let base = disk.backing, let entry = plan.backings[disk.id] else { continue }
            descriptors[entry.fd] = try openFile(base, O_RDONLY, what: "disks.\(disk.id).backing")
        }
        for disk in config.allDisks {
            // Snapshot images are the VM's own, like its disk: given to its uid, opened read-write.
            for (layer, entry) in zip(disk.chain?.frozen ?? [], plan.layers[disk.id] ?? []) {
                do {
                    let (fd, wasClaimed) = try FileClaims.handOver(layer.file, vm: profile.name, uid: uid,
                                                                   readonly: false, claim: claimDisks)
                    if wasClaimed { claimed.append(layer.file) }
                    descriptors[entry.fd] = fd
                } catch {
                    throw Failure(description: "disks.\(disk.id) snapshot \(layer.snapshot): \(error.description)")
                }
            }
        }
        for (field, path, fd) in [("boot.kernel", profile.boot.kernel, plan.kernel),
                                  ("boot.initrd", profile.boot.initrd, plan.initrd)] {
            guard let path, let fd else { continue }
            // QEMU opens it again through /proc/self/fd, which checks the file's mode for QEMU's uid.
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw Failure(description: "\(field): \(path): \(String(cString: strerror(errno)))")
            }
            guard info.st_mode & 0o004 != 0 else {
                throw Failure(description: "\(field): \(path) is not readable by others (mode "
                    + "\(String(info.st_mode & 0o777, radix: 8))); an unprivileged QEMU needs it world-readable "
                    + "(chmod o+r), or run the daemon with --qemu-user root")
            }
            descriptors[fd] = try openFile(path, O_RDONLY, what: field)
        }
    }

    /// Closes our copies (QEMU has its own once it runs).
    func closeAll() {
        for fd in descriptors.values { close(fd) }
    }

    /// A failed start: descriptors closed, sockets removed, claims given back.
    func undo(vm: String, paths: VMPaths) {
        closeAll()
        paths.removeSockets()
        for file in claimed { FileClaims.release(file, vm: vm) }
    }
}
