#if canImport(Glibc)
import Glibc
#endif

/// x509 credentials for an unprivileged QEMU's migration TLS. QEMU reads `tls-creds-x509`'s folder itself (by path)
/// and cannot reach the daemon's TLS folder (root's, and hidden in QEMU's mount namespace), so the files it needs are
/// copied into a folder only that QEMU's uid can read, outside everything hidden, for as long as the migration runs.
enum TLSHandOver {
    static let root = "/run/corral-qemu"
    /// What `tls-creds-x509` reads (dh-params.pem spares a listener generating DH parameters; ca-crl.pem is optional).
    static let files = ["ca-cert.pem", "ca-crl.pem", "client-cert.pem", "client-key.pem", "server-cert.pem",
                        "server-key.pem", "dh-params.pem"]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The folder for QEMU `pid` (pids are unique on the host; several daemons may give the same uid).
    static func folder(pid: Int32) -> String { "\(root)/tls-\(pid)" }

    /// Copies the credentials of `directory` for QEMU `pid` running as `uid`; the folder to name in `tls-creds-x509`.
    static func stage(_ directory: String, pid: Int32, uid: UInt32) throws(Failure) -> String {
        let target = folder(pid: pid)
        remove(pid: pid)
        guard mkdir(root, 0o711) == 0 || errno == EEXIST, mkdir(target, 0o700) == 0 else {
            throw Failure(description: "cannot make \(target): \(String(cString: strerror(errno)))")
        }
        for file in files {
            guard let bytes = (try? FileOps.read(directory + "/" + file)) ?? nil else { continue }
            let path = target + "/" + file
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o400)
            guard fd >= 0 else {
                remove(pid: pid)
                throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count, chown(path, uid, uid) == 0 else {
                remove(pid: pid)
                throw Failure(description: "cannot hand \(path) to uid \(uid)")
            }
        }
        guard chown(target, uid, uid) == 0, chmod(target, 0o500) == 0 else {
            remove(pid: pid)
            throw Failure(description: "cannot hand \(target) to uid \(uid)")
        }
        return target
    }

    /// Removes QEMU `pid`'s copies (after the migration, and when that QEMU ends).
    static func remove(pid: Int32) {
        FileOps.removeTree(folder(pid: pid))
    }
}
