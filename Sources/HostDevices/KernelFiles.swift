#if canImport(Glibc)
import Glibc
#endif

/// A failed read or write of a kernel interface file (procfs, sysfs, cgroupfs), with the path and errno.
public struct KernelFileError: Error, Equatable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32
    /// What to do about it, when there is something specific to say.
    public var hint: String?

    public init(operation: String, path: String, errno: Int32, hint: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        let reason = errno == 0 ? "unexpected content" : String(cString: strerror(errno))
        return "\(operation) \(path): \(reason)" + (hint.map { "; " + $0 } ?? "")
    }
}

/// Small reads and writes of kernel interface files. Writes are one `write(2)` of the whole value to the
/// existing file (no temp file and rename, no O_CREAT): that is how sysfs and cgroupfs take a value, and a
/// missing file is an error (e.g. a cgroup controller that is not enabled), not something to create.
public enum KernelFiles {
    public static func read(_ path: String) throws(KernelFileError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelFileError(operation: "read", path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KernelFileError(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The file's content without surrounding whitespace.
    public static func readValue(_ path: String) throws(KernelFileError) -> String {
        try read(path).kernelTrimmed()
    }

    public static func readInt(_ path: String) throws(KernelFileError) -> Int {
        let text = try readValue(path)
        guard let value = Int(text) else { throw KernelFileError(operation: "parse", path: path, errno: 0) }
        return value
    }

    public static func write(_ value: String, to path: String) throws(KernelFileError) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw KernelFileError(operation: "write", path: path, errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw KernelFileError(operation: "write", path: path, errno: errno) }
            if n != bytes.count { throw KernelFileError(operation: "write", path: path, errno: EIO) }
            return
        }
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

extension String {
    public func kernelTrimmed() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
