import QEMUCommand

/// Admission control by overcommit ratio: refuse to start a VM (or plug a vCPU or DIMM) when the host
/// would then be committed beyond the daemon's limits.
///
/// What counts as committed, per running VM (and per VM arriving by migration):
/// - vCPUs: the **online** vCPUs — boot count, or the count after vCPU hotplug (`HotplugState.onlineCPUs`);
///   `cpu.max` is only a ceiling and costs nothing until plugged;
/// - memory: boot `memory.size` plus every plugged DIMM. Balloon targets are not subtracted: a deflated
///   balloon gives the memory back at any time, so it stays committed.
///
/// ratio = committed (including the candidate) / host capacity; refused when ratio > limit.
public enum Admission {
    public struct Limits: Sendable, Equatable {
        /// Highest allowed online vCPUs / host CPUs; nil = unlimited.
        public var cpuRatio: Double?
        /// Highest allowed committed guest memory / host MemTotal; nil = unlimited.
        public var memoryRatio: Double?

        public init(cpuRatio: Double? = nil, memoryRatio: Double? = nil) {
            self.cpuRatio = cpuRatio
            self.memoryRatio = memoryRatio
        }
    }

    /// vCPUs and guest memory (bytes), for one VM or a sum.
    public struct Load: Sendable, Equatable {
        public var vcpus: Int
        public var memory: UInt64
        /// The part of `memory` that is pinned in host RAM (VFIO host devices, `memory.lock`): it can never be
        /// overcommitted, whatever the memory ratio allows.
        public var pinnedMemory: UInt64

        public init(vcpus: Int, memory: UInt64, pinnedMemory: UInt64 = 0) {
            self.vcpus = vcpus
            self.memory = memory
            self.pinnedMemory = pinnedMemory
        }

        /// What a VM commits: online vCPUs and boot memory plus plugged DIMMs; all of it pinned when the VM has
        /// host devices bound to vfio-pci (their DMA needs every page resident) or locks its memory.
        public init(_ config: LiveConfig) {
            vcpus = config.hotplugged.onlineCPUs ?? config.profile.cpu.count
            memory = config.hotplugged.memory.reduce(config.profile.memory.size.bytes) { $0 + $1.size.bytes }
            let profile = config.profile
            let pinned = profile.memory.lock || (profile.hostdevs + config.hotplugged.hostdevs.map(\.device))
                .contains { $0.pci != nil || $0.vf != nil }
            pinnedMemory = pinned ? memory : 0
        }

        public static let zero = Load(vcpus: 0, memory: 0)

        public static func + (a: Load, b: Load) -> Load {
            Load(vcpus: a.vcpus + b.vcpus, memory: a.memory + b.memory, pinnedMemory: a.pinnedMemory + b.pinnedMemory)
        }
    }

    public struct Host: Sendable, Equatable {
        public var cpus: Int
        public var memory: UInt64

        public init(cpus: Int, memory: UInt64) {
            self.cpus = cpus
            self.memory = memory
        }
    }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// committed includes the candidate.
        case memory(ratio: Double, limit: Double, committed: UInt64, host: UInt64)
        case cpu(ratio: Double, limit: Double, committed: Int, host: Int)
        /// Pinned memory (host devices, `memory.lock`) past the host's RAM; committed includes the candidate.
        case pinned(committed: UInt64, host: UInt64)

        public var description: String {
            switch self {
            case .memory(let ratio, let limit, let committed, let host):
                return "memory overcommit would be \(fixed(ratio, 2)), limit \(fixed(limit, 2)): "
                    + "\(gib(committed)) committed of \(gib(host))"
            case .pinned(let committed, let host):
                return "memory pinned for host devices or memory.lock would be \(gib(committed)) of the host's "
                    + "\(gib(host)): pinned memory cannot be overcommitted"
            case .cpu(let ratio, let limit, let committed, let host):
                return "cpu overcommit would be \(fixed(ratio, 2)), limit \(fixed(limit, 2)): "
                    + "\(committed) vCPU\(committed == 1 ? "" : "s") committed of "
                    + "\(host) host CPU\(host == 1 ? "" : "s")"
            }
        }
    }

    /// The refusals (pinned memory, then memory, then CPU); empty means admitted.
    public static func check(limits: Limits, host: Host, committed: Load, adding candidate: Load) -> [Refusal] {
        let after = committed + candidate
        var refusals: [Refusal] = []
        if candidate.pinnedMemory > 0, after.pinnedMemory > host.memory {
            refusals.append(.pinned(committed: after.pinnedMemory, host: host.memory))
        }
        if let limit = limits.memoryRatio, candidate.memory > 0 {
            let ratio = host.memory == 0 ? Double.infinity : Double(after.memory) / Double(host.memory)
            if ratio > limit {
                refusals.append(.memory(ratio: ratio, limit: limit, committed: after.memory, host: host.memory))
            }
        }
        if let limit = limits.cpuRatio, candidate.vcpus > 0 {
            let ratio = host.cpus == 0 ? Double.infinity : Double(after.vcpus) / Double(host.cpus)
            if ratio > limit {
                refusals.append(.cpu(ratio: ratio, limit: limit, committed: after.vcpus, host: host.cpus))
            }
        }
        return refusals
    }

    /// `value` with exactly `decimals` digits after the point, rounded half away from zero.
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return value > 0 ? "inf" : "nan" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let whole = scaled / Int64(scale)
        var fraction = String(scaled % Int64(scale))
        while fraction.count < decimals { fraction = "0" + fraction }
        return (value < 0 && scaled != 0 ? "-" : "") + "\(whole)" + (decimals > 0 ? "." + fraction : "")
    }

    /// Bytes as GiB with one decimal: `9.7 GiB`.
    static func gib(_ bytes: UInt64) -> String {
        fixed(Double(bytes) / Double(UInt64(1) << 30), 1) + " GiB"
    }
}
