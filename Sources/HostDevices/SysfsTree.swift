#if canImport(Glibc)
import Glibc
#endif

/// The part of the kernel's file interface device assignment needs: `/sys` (PCI devices, drivers, SR-IOV, net) and
/// `/dev/vfio`. Paths are absolute as on the host (`/sys/bus/pci/drivers_probe`); an implementation decides where
/// they really are. The real one is `HostSysfsTree`; tests use a fake kernel that also reacts to writes.
public protocol SysfsTree: Sendable {
    /// The whole content of a file.
    func read(_ path: String) throws(KernelFileError) -> String
    /// One write of `value` to an existing file (sysfs takes a value per write; a missing file is an error).
    func write(_ value: String, to path: String) throws(KernelFileError)
    /// The names in a folder, sorted, without `.` and `..`.
    func list(_ path: String) throws(KernelFileError) -> [String]
    /// What a symlink points to, as stored (sysfs links are relative: `../../../bus/pci/drivers/ixgbe`).
    func linkTarget(_ path: String) throws(KernelFileError) -> String
    /// True when something (file, folder or symlink) is at `path`.
    func exists(_ path: String) -> Bool
}

extension SysfsTree {
    /// The file's content without surrounding whitespace.
    func value(_ path: String) throws(KernelFileError) -> String {
        try read(path).kernelTrimmed()
    }

    /// The last component of a symlink's target (a driver's or a group's name), nil when there is no link.
    func linkName(_ path: String) throws(KernelFileError) -> String? {
        guard exists(path) else { return nil }
        let target = try linkTarget(path)
        return target.split(separator: "/").last.map(String.init)
    }
}

/// The host's own sysfs and `/dev/vfio`, under `root` (`CORRAL_SYSFS_ROOT`, default `/`: a path like
/// `/sys/bus/pci/devices` is read at `ROOT/sys/bus/pci/devices`).
public struct HostSysfsTree: SysfsTree {
    /// The prefix put before every path; "" for the real host.
    public let root: String

    public init(root: String) {
        var trimmed = root
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
    }

    /// Rooted at `CORRAL_SYSFS_ROOT` when it is set, else at `/`.
    public static func fromEnvironment() -> HostSysfsTree {
        HostSysfsTree(root: getenv("CORRAL_SYSFS_ROOT").map { String(cString: $0) } ?? "/")
    }

    public func read(_ path: String) throws(KernelFileError) -> String {
        try KernelFiles.read(root + path)
    }

    public func write(_ value: String, to path: String) throws(KernelFileError) {
        try KernelFiles.write(value, to: root + path)
    }

    public func list(_ path: String) throws(KernelFileError) -> [String] {
        guard let dir = opendir(root + path) else {
            throw KernelFileError(operation: "list", path: root + path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func linkTarget(_ path: String) throws(KernelFileError) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(root + path, &buffer, buffer.count - 1)
        guard n >= 0 else { throw KernelFileError(operation: "readlink", path: root + path, errno: errno) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(root + path, &info) == 0
    }
}
