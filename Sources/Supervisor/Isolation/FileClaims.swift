import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Ownership of a VM's files while its unprivileged QEMU runs (what libvirt's DAC driver does): the file is given
/// to the VM's uid with mode 0600 (0400 read-only), so no other VM's QEMU can open it; its original owner and mode
/// are remembered in an extended attribute the first time and given back when the VM lets go. The holder (the VM's
/// name) is recorded too, so another VM's start can see the file is taken.
///
/// QEMU itself gets the file as a descriptor the daemon opened (it need not reach the file's folder); the claim is
/// what keeps the other VMs out.
public enum FileClaims {
    static let originalKey = "trusted.corral.original"
    static let holderKey = "trusted.corral.vm"

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        /// The VM that holds the file, when that is why.
        public var heldBy: String?
    }

    /// The VM that holds `path`, if any.
    public static func holder(_ path: String) -> String? { attribute(path, holderKey) }

    /// Gives `path` to `uid` (its gid too) for `vm`. False when the file system has no extended attributes (the file
    /// is then left as it is: nothing could give it back).
    @discardableResult
    public static func claim(_ path: String, vm: String, uid: UInt32, readonly: Bool) throws(Failure) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Failure(description: "\(path): \(String(cString: strerror(errno)))") }
        if attribute(path, originalKey) == nil {
            let original = "\(info.st_uid):\(info.st_gid):\(String(info.st_mode & 0o7777, radix: 8))"
            guard setAttribute(path, originalKey, original) else {
                if errno == ENOTSUP || errno == EOPNOTSUPP { return false }
                throw Failure(description: "cannot remember the owner of \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard setAttribute(path, holderKey, vm) else {
            throw Failure(description: "cannot mark \(path) as \(vm)'s: \(String(cString: strerror(errno)))")
        }
        guard chown(path, uid, uid) == 0, chmod(path, readonly ? 0o400 : 0o600) == 0 else {
            let why = String(cString: strerror(errno))
            release(path, vm: vm)
            throw Failure(description: "cannot give \(path) to uid \(uid): \(why)")
        }
        return true
    }

    /// A disk for VM `vm`'s unprivileged QEMU: refused when another VM holds it, given to `uid`, opened by the daemon
    /// (read-only or read-write); the descriptor (close-on-exec) and whether it was claimed (to give back on failure).
    public static func handOver(_ path: String, vm: String, uid: UInt32, readonly: Bool,
                                claim: Bool = true) throws(Failure) -> (fd: Int32, claimed: Bool) {
        var claimed = false
        if claim {
            if let holder = holder(path), holder != vm {
                throw Failure(description: "\(path) is in use by VM \(holder) (if \(holder) no longer runs anywhere: "
                    + "setfattr -x \(holderKey) \(path))", heldBy: holder)
            }
            claimed = try self.claim(path, vm: vm, uid: uid, readonly: readonly)
        }
        let fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else {
            let why = String(cString: strerror(errno))
            if claimed { release(path, vm: vm) }
            throw Failure(description: "cannot open \(path): \(why)")
        }
        return (fd, claimed)
    }

    /// Gives `path` back its original owner and mode if `vm` holds it (another VM's claim is left alone).
    public static func release(_ path: String, vm: String) {
        guard holder(path) == vm else { return }
        if let original = attribute(path, originalKey) {
            let parts = original.split(separator: ":")
            if parts.count == 3, let uid = UInt32(parts[0]), let gid = UInt32(parts[1]), let mode = UInt32(parts[2], radix: 8) {
                _ = chown(path, uid, gid)
                _ = chmod(path, mode_t(mode))
            }
        }
        _ = corral_removexattr(path, originalKey)
        _ = corral_removexattr(path, holderKey)
    }

    private static func attribute(_ path: String, _ key: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = corral_getxattr(path, key, &buffer, UInt(buffer.count))
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n), as: UTF8.self)
    }

    private static func setAttribute(_ path: String, _ key: String, _ value: String) -> Bool {
        let bytes = Array(value.utf8)
        return corral_setxattr(path, key, bytes, UInt(bytes.count)) == 0
    }
}
