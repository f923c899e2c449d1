#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system effects used by the supervisor, each one small and explicit.
public enum FileOps {
    public struct Failure: Error, CustomStringConvertible {
        public var operation: String
        public var path: String
        public var errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same folder,
    /// fsync, rename over the target, fsync the folder. Readers see the old or the
    /// new content, never a torn one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(Failure) {
        try writeAtomically([(path, bytes)], mode: mode)
    }

    /// Writes several files the same way, each atomically: every temporary file written and fsync-ed, then each
    /// renamed over its target, then each folder fsync-ed once. A failure before the renames changes nothing.
    /// `alsoSyncing`: files put in place earlier by `stage`, made durable in the same pass (their folders share
    /// the one folder fsync).
    public static func writeAtomically(_ files: [(path: String, bytes: [UInt8])], alsoSyncing staged: [String] = [],
                                       mode: mode_t = 0o600) throws(Failure) {
        for path in staged {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(operation: "open", path: path, errno: errno) }
            defer { close(fd) }
            if fsync(fd) != 0 { throw Failure(operation: "fsync", path: path, errno: errno) }
        }
        try replace(files, mode: mode, durable: true, folderSyncAlso: staged)
    }

    /// Puts new files in place the way `writeAtomically` does (temporary file, rename), but without any fsync:
    /// other processes see the whole new content or the old one, and a crash of this process loses nothing (the
    /// data is in the page cache), but a power loss may. Only for files that nobody has been told about yet, and
    /// that a later `writeAtomically(_:alsoSyncing:)` makes durable before anyone is (the daemon stages a new VM's
    /// folder this way before QEMU starts and syncs it while QEMU boots).
    public static func stage(_ files: [(path: String, bytes: [UInt8])], mode: mode_t = 0o600) throws(Failure) {
        try replace(files, mode: mode, durable: false, folderSyncAlso: [])
    }

    private static func replace(_ files: [(path: String, bytes: [UInt8])], mode: mode_t, durable: Bool,
                                folderSyncAlso: [String]) throws(Failure) {
        var temps: [String] = []
        func discard() { for temp in temps { unlink(temp) } }
        for (path, bytes) in files {
            let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            do throws(Failure) {
                try writeNew(bytes, to: temp, mode: mode, sync: durable)
            } catch {
                discard()
                throw error
            }
            temps.append(temp)
        }
        for (index, (path, _)) in files.enumerated() where rename(temps[index], path) != 0 {
            let e = errno
            discard()
            throw Failure(operation: "rename", path: path, errno: e)
        }
        if durable { syncFolders(of: files.map(\.path) + folderSyncAlso) }
    }

    private static func syncFolders(of paths: [String]) {
        var folders: [String] = []
        for path in paths where !folders.contains(parentFolder(of: path)) { folders.append(parentFolder(of: path)) }
        for folder in folders {
            let dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dirfd >= 0 {
                fsync(dirfd)
                close(dirfd)
            }
        }
    }

    /// Creates `path` (which must not exist) with `bytes`, fsync-ed when `sync`; removes it again on failure.
    private static func writeNew(_ bytes: [UInt8], to path: String, mode: mode_t, sync: Bool) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(operation: "create", path: path, errno: errno) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                unlink(path)
                throw Failure(operation: "write", path: path, errno: e)
            }
            offset += n
        }
        if sync && fsync(fd) != 0 {
            let e = errno
            close(fd)
            unlink(path)
            throw Failure(operation: "fsync", path: path, errno: e)
        }
        close(fd)
    }

    public static func writeAtomically(_ text: String, to path: String, mode: mode_t = 0o600) throws(Failure) {
        try writeAtomically(Array(text.utf8), to: path, mode: mode)
    }

    /// Reads a whole file; nil when it does not exist.
    public static func read(_ path: String) throws(Failure) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw Failure(operation: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    public static func readText(_ path: String) throws(Failure) -> String? {
        guard let bytes = try read(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Creates a folder and its parents with `mode`; fine when it exists.
    public static func makeFolder(_ path: String, mode: mode_t = 0o700) throws(Failure) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, mode) != 0 && errno != EEXIST {
                throw Failure(operation: "mkdir", path: partial, errno: errno)
            }
        }
        chmod(path, mode)
    }

    /// Removes a file; fine when it does not exist.
    public static func remove(_ path: String) {
        unlink(path)
    }

    /// Removes a folder and everything in it (no symlinks followed).
    public static func removeTree(_ path: String) {
        guard let dir = opendir(path) else {
            unlink(path)
            return
        }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let child = path + "/" + name
            var info = stat()
            if lstat(child, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
                removeTree(child)
            } else {
                unlink(child)
            }
        }
        closedir(dir)
        rmdir(path)
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }
}
