#if canImport(Glibc)
import HostDevices
import Glibc
#endif

import CorralCore

/// Reads the host's memory and CPU count from procfs/sysfs under `root` ("" for the real host, a temporary
/// folder holding `proc/meminfo` and `sys/devices/system/cpu/online` in tests).
public struct HostMemoryProbe: Sendable {
    public var root: String

    public init(root: String = "") { self.root = root }

    public var meminfoPath: String { root + "/proc/meminfo" }
    public var onlineCPUsPath: String { root + "/sys/devices/system/cpu/online" }

    public func memory() throws(KernelFileError) -> HostMemory {
        let text = try KernelFiles.read(meminfoPath)
        guard let memory = Self.parseMeminfo(text) else {
            throw KernelFileError(operation: "parse", path: meminfoPath, errno: 0,
                                  hint: "MemTotal or MemAvailable is missing (MemAvailable needs Linux 3.14)")
        }
        return memory
    }

    /// Online host CPUs, from the `online` range list (e.g. `0-3,6`).
    public func onlineCPUs() throws(KernelFileError) -> [Int] {
        let text = try KernelFiles.readValue(onlineCPUsPath)
        guard let cpus = Self.parseCPUList(text), !cpus.isEmpty else {
            throw KernelFileError(operation: "parse", path: onlineCPUsPath, errno: 0)
        }
        return cpus
    }

    /// The number of online host CPUs; falls back to `sysconf(_SC_NPROCESSORS_ONLN)` when the sysfs file
    /// cannot be read (only on the real host: a test root must provide the file).
    public func cpuCount() throws(KernelFileError) -> Int {
        do {
            return try onlineCPUs().count
        } catch {
            guard root.isEmpty else { throw error }
            let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
            guard n > 0 else { throw error }
            return n
        }
    }

    /// Parses `/proc/meminfo` lines `Key:   value kB`. nil when MemTotal or MemAvailable is missing.
    public static func parseMeminfo(_ text: String) -> HostMemory? {
        var fields: [Substring: UInt64] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            let words = line[line.index(after: colon)...].split(separator: " ")
            guard let first = words.first, let number = UInt64(first) else { continue }
            let unit = words.count > 1 ? words[1] : ""
            fields[key] = unit == "kB" ? number * 1024 : number
        }
        guard let total = fields["MemTotal"], let available = fields["MemAvailable"] else { return nil }
        return HostMemory(total: total, available: available,
                          hugePagesTotal: Int(fields["HugePages_Total"] ?? 0),
                          hugePagesFree: Int(fields["HugePages_Free"] ?? 0),
                          hugePageSize: fields["Hugepagesize"] ?? 2 << 20)
    }

    /// Parses a kernel CPU list (`0-3,6,8-9`) into sorted CPU numbers; nil when malformed.
    public static func parseCPUList(_ text: String) -> [Int]? {
        let trimmed = text.kernelTrimmed()
        if trimmed.isEmpty { return [] }
        var cpus: Set<Int> = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                  let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
                  low >= 0, low <= high, high - low < 65536 else { return nil }
            cpus.formUnion(low...high)
        }
        return cpus.sorted()
    }

    /// True when a hugetlbfs is mounted at `path` (per `ROOT/proc/mounts`). Check this before starting a
    /// `memory.hugepages` VM: QEMU given a `mem-path` that does not exist creates an ordinary file there
    /// and runs without huge pages.
    public func hugetlbfsMounted(at path: String = "/dev/hugepages") throws(KernelFileError) -> Bool {
        Self.mounts(try KernelFiles.read(root + "/proc/mounts"))
            .contains { $0.mountPoint == path && $0.type == "hugetlbfs" }
    }

    /// `/proc/mounts` lines: device, mount point, type, … (octal escapes such as `\040` left as they are).
    static func mounts(_ text: String) -> [(mountPoint: String, type: String)] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count >= 3 ? (String(fields[1]), String(fields[2])) : nil
        }
    }
}
