import CorralModel

/// Where a VM may go in a cluster (`corral migrate --to NAME|auto`, `corral host evacuate`): pure, over what the
/// hosts published (`HostCapacity`).
///
/// A host can take the VM when it is live and not the source, not draining, has published its capacity, its own
/// admission limits admit the VM's load on top of what it has committed, it runs a QEMU at least as new as the
/// source's (QEMU migrates forwards, not backwards), and, for a VM that passes the host CPU through
/// (`cpu.model: host`), its CPU is the source's model. Among those, `auto` takes the one with the most memory left
/// after the move, then the fewest VMs, then the name.
public enum ClusterPlacement {
    /// The VM to place.
    public struct Demand: Sendable, Equatable {
        public var vm: String
        public var load: Admission.Load
        /// The source host's CPU model when the VM passes the host CPU through; nil: any CPU.
        public var hostCPU: String?
        /// The source's QEMU version; nil: unknown (not checked).
        public var qemuVersion: String?

        public init(vm: String, load: Admission.Load, hostCPU: String? = nil, qemuVersion: String? = nil) {
            self.vm = vm
            self.load = load
            self.hostCPU = hostCPU
            self.qemuVersion = qemuVersion
        }
    }

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Why `host` cannot take `demand`; empty: it can.
    public static func refusals(_ demand: Demand, on host: ClusterReport.Host, source: String) -> [String] {
        if host.name == source { return ["it is the VM's own host"] }
        if host.draining { return ["it is draining (corral host restore \(host.name) ends that)"] }
        if host.address.isEmpty { return ["it published no API address"] }
        guard let capacity = host.capacity else { return ["it has not published its capacity yet"] }
        var reasons = Admission.check(
            limits: .init(cpuRatio: capacity.cpuRatioLimit, memoryRatio: capacity.memoryRatioLimit),
            host: .init(cpus: capacity.cpus, memory: capacity.memoryBytes),
            committed: .init(vcpus: capacity.committedVCPUs, memory: capacity.committedMemoryBytes),
            adding: demand.load
        ).map(\.description)
        if let wanted = demand.qemuVersion, let offered = capacity.qemuVersion, older(offered, than: wanted) {
            reasons.append("its QEMU \(offered) is older than the source's \(wanted)")
        }
        if let cpu = demand.hostCPU, capacity.cpuModel != cpu {
            reasons.append("the VM passes the host CPU through (cpu.model: host) and its CPU is '\(capacity.cpuModel)', not '\(cpu)'")
        }
        return reasons
    }

    /// `to` a host's name, or `auto`: the host the VM goes to, or why none can take it.
    public static func choose(_ demand: Demand, to: String, in report: ClusterReport) -> Result<ClusterReport.Host, Problem> {
        guard report.enabled, let source = report.host else {
            return .failure(Problem("--to \(to): this daemon is not in a cluster; give the destination as HOST:PORT"))
        }
        if let problem = report.problem { return .failure(Problem("--to \(to): the cluster cannot be read: \(problem)")) }
        if to != "auto" {
            guard let host = report.hosts.first(where: { $0.name == to }) else {
                let live = report.hosts.map(\.name).joined(separator: ", ")
                return .failure(Problem("--to \(to): no live host of that name in the cluster (live: \(live.isEmpty ? "none" : live))"))
            }
            let reasons = refusals(demand, on: host, source: source)
            guard reasons.isEmpty else {
                return .failure(Problem("--to \(to): host \(to) cannot take \(demand.vm): " + reasons.joined(separator: "; ")))
            }
            return .success(host)
        }
        let fit = report.hosts.filter { refusals(demand, on: $0, source: source).isEmpty }
        guard let best = fit.min(by: { rank($0, demand) < rank($1, demand) }) else {
            let why = report.hosts.filter { $0.name != source }.map { host in
                "\(host.name): " + refusals(demand, on: host, source: source).joined(separator: "; ")
            }
            return .failure(Problem("--to auto: no host can take \(demand.vm)"
                + (why.isEmpty ? " (no other live host in the cluster)" : " (" + why.joined(separator: " | ") + ")")))
        }
        return .success(best)
    }

    /// Places several VMs at once (an evacuation), each seeing the load of the ones placed before it. A VM no host
    /// can take gets its problem.
    public static func plan(_ demands: [Demand], in report: ClusterReport) -> [(vm: String, outcome: Result<ClusterReport.Host, Problem>)] {
        var report = report
        var plan: [(vm: String, outcome: Result<ClusterReport.Host, Problem>)] = []
        // Largest first: the big ones have the fewest choices.
        for demand in demands.sorted(by: { ($0.load.memory, $1.vm) > ($1.load.memory, $0.vm) }) {
            let outcome = choose(demand, to: "auto", in: report)
            if case .success(let host) = outcome, let index = report.hosts.firstIndex(where: { $0.name == host.name }) {
                report.hosts[index].vms.append(demand.vm)
                report.hosts[index].capacity?.committedVCPUs += demand.load.vcpus
                report.hosts[index].capacity?.committedMemoryBytes += demand.load.memory
            }
            plan.append((demand.vm, outcome))
        }
        return plan
    }

    /// Smaller is better: most memory left after the move, then fewest VMs, then the name.
    private static func rank(_ host: ClusterReport.Host, _ demand: Demand) -> (Int64, Int, String) {
        let capacity = host.capacity
        let total = Double(capacity?.memoryBytes ?? 0) * (capacity?.memoryRatioLimit ?? 1)
        let left = Int64(total) - Int64(capacity?.committedMemoryBytes ?? 0) - Int64(demand.load.memory)
        return (-left, host.vms.count, host.name)
    }

    /// Dotted versions compared numerically (`7.2.15` < `8.0`); a non-numeric part counts as 0.
    static func older(_ a: String, than b: String) -> Bool {
        func parts(_ v: String) -> [Int] { v.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 } }
        let (x, y) = (parts(a), parts(b))
        for i in 0..<max(x.count, y.count) {
            let (p, q) = (i < x.count ? x[i] : 0, i < y.count ? y[i] : 0)
            if p != q { return p < q }
        }
        return false
    }
}
