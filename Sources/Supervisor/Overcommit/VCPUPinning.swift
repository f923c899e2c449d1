import HostDevices
import JSON

#if canImport(Glibc)
import Glibc
#endif

/// One vCPU's host thread, from QMP `query-cpus-fast`.
public struct VCPUThread: Sendable, Equatable {
    /// `cpu-index`: the vCPU number (0-based, in `-smp`/hotplug order).
    public var cpuIndex: Int
    /// `thread-id`: the host thread (TID) running the vCPU.
    public var threadID: pid_t

    public init(cpuIndex: Int, threadID: pid_t) {
        self.cpuIndex = cpuIndex
        self.threadID = threadID
    }
}

/// A vCPU thread to pin and the host CPU it goes on.
public struct VCPUPin: Sendable, Equatable {
    public var cpuIndex: Int
    public var threadID: pid_t
    public var hostCPU: Int

    public init(cpuIndex: Int, threadID: pid_t, hostCPU: Int) {
        self.cpuIndex = cpuIndex
        self.threadID = threadID
        self.hostCPU = hostCPU
    }
}

/// vCPU pinning (`cpu.pinning`): vCPU *i* runs only on host CPU `pinning[i]`. The plan is pure; `apply`
/// calls `sched_setaffinity(2)` on each vCPU thread from outside QEMU (QEMU's own sandbox denies it
/// the call with `resourcecontrol=deny`, which does not affect us).
public enum VCPUPinning {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The `query-cpus-fast` reply is not a list of objects with integer `cpu-index` and `thread-id`.
        case malformedReply(String)
        case affinity(threadID: pid_t, hostCPU: Int, errno: Int32)
        case unsupported

        public var description: String {
            switch self {
            case .malformedReply(let why):
                return "query-cpus-fast reply: \(why)"
            case .affinity(let tid, let cpu, let e):
                return "sched_setaffinity thread \(tid) to CPU \(cpu): \(String(cString: strerror(e)))"
                    + (e == EINVAL ? " (is CPU \(cpu) online and in this process's cpuset?)" : "")
            case .unsupported:
                return "sched_setaffinity is not available in this C library"
            }
        }
    }

    /// Reads the `return` value of `query-cpus-fast`: `[{"cpu-index": 0, "thread-id": 1234, …}, …]`.
    public static func threads(fromQueryCPUsFast reply: JSONValue) throws(Failure) -> [VCPUThread] {
        guard let items = reply.arrayValue else { throw .malformedReply("expected a list, got \(reply)") }
        var threads: [VCPUThread] = []
        for (position, item) in items.enumerated() {
            guard let index = item["cpu-index"]?.intValue, let tid = item["thread-id"]?.intValue,
                  index >= 0, tid > 0, tid <= Int64(Int32.max) else {
                throw .malformedReply("entry \(position) has no integer cpu-index and thread-id: \(item)")
            }
            threads.append(VCPUThread(cpuIndex: Int(index), threadID: pid_t(tid)))
        }
        return threads
    }

    /// The pins for the vCPUs that have a host CPU in `pinning`, in vCPU order. vCPUs past the end of the
    /// list (e.g. plugged later than the profile planned for) are left unpinned.
    public static func plan(threads: [VCPUThread], pinning: [Int]) -> [VCPUPin] {
        threads.sorted { $0.cpuIndex < $1.cpuIndex }.compactMap { thread in
            guard thread.cpuIndex < pinning.count else { return nil }
            return VCPUPin(cpuIndex: thread.cpuIndex, threadID: thread.threadID, hostCPU: pinning[thread.cpuIndex])
        }
    }

    /// Pins each thread. Stops at the first failure (the threads before it stay pinned; pinning again
    /// after a fix is harmless).
    public static func apply(_ pins: [VCPUPin]) throws(Failure) {
        for pin in pins {
            try setAffinity(threadID: pin.threadID, cpus: [pin.hostCPU])
        }
    }

    /// `sched_setaffinity(tid, cpus)`. Swift does not import it (it sits behind `_GNU_SOURCE`), so it is
    /// looked up in the C library at run time.
    public static func setAffinity(threadID: pid_t, cpus: [Int]) throws(Failure) {
        guard let call = schedSetAffinity else { throw .unsupported }
        var set = cpu_set_t()
        let bitsPerWord = MemoryLayout<UInt>.size * 8
        let capacity = MemoryLayout<cpu_set_t>.size * 8
        for cpu in cpus {
            guard cpu >= 0, cpu < capacity else { throw .affinity(threadID: threadID, hostCPU: cpu, errno: EINVAL) }
            withUnsafeMutableBytes(of: &set) { raw in
                let words = raw.bindMemory(to: UInt.self)
                words[cpu / bitsPerWord] |= 1 << UInt(cpu % bitsPerWord)
            }
        }
        if call(threadID, MemoryLayout<cpu_set_t>.size, &set) != 0 {
            throw .affinity(threadID: threadID, hostCPU: cpus.first ?? -1, errno: errno)
        }
    }

    private typealias SchedSetAffinity = @convention(c) (pid_t, Int, UnsafePointer<cpu_set_t>) -> Int32

    private static let schedSetAffinity: SchedSetAffinity? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sched_setaffinity") else { return nil }
        return unsafeBitCast(symbol, to: SchedSetAffinity.self)
    }()

    /// The CPUs a thread may run on, from `/proc/PID/task/TID/status` (`Cpus_allowed_list`).
    public static func allowedCPUs(pid: pid_t, threadID: pid_t? = nil, procRoot: String = "/proc") throws(KernelFileError) -> [Int] {
        let path = "\(procRoot)/\(pid)/task/\(threadID ?? pid)/status"
        for line in try KernelFiles.read(path).split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            if let cpus = HostMemoryProbe.parseCPUList(String(line.dropFirst("Cpus_allowed_list:".count))) {
                return cpus
            }
        }
        throw KernelFileError(operation: "parse", path: path, errno: 0, hint: "no Cpus_allowed_list line")
    }
}
