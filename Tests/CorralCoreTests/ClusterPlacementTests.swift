import CorralCore
import CorralModel
import Testing

/// `corral migrate --to NAME|auto` and evacuation plans: which host takes a VM, and why another cannot.
struct ClusterPlacementTests {
    static let gib: UInt64 = 1 << 30

    static func host(_ name: String, memory: UInt64 = 16, committed: UInt64 = 0, vms: Int = 0, limit: Double? = 1.0,
                     cpu: String = "EPYC", qemu: String? = "8.2.2", draining: Bool = false) -> ClusterReport.Host {
        ClusterReport.Host(
            name: name, address: "192.0.2.\(name.unicodeScalars.last!.value % 200):7070",
            vms: (0..<vms).map { "\(name)-vm\($0)" },
            capacity: HostCapacity(cpus: 8, memoryBytes: memory * gib, memoryRatioLimit: limit, committedVCPUs: 0,
                                   committedMemoryBytes: committed * gib, cpuModel: cpu, qemuVersion: qemu),
            draining: draining)
    }

    static func report(_ hosts: [ClusterReport.Host]) -> ClusterReport {
        ClusterReport(enabled: true, host: "a", state: "alive", hosts: [host("a")] + hosts)
    }

    static func demand(_ gib: UInt64, hostCPU: String? = nil, qemu: String? = nil) -> ClusterPlacement.Demand {
        ClusterPlacement.Demand(vm: "web", load: .init(vcpus: 2, memory: gib * Self.gib), hostCPU: hostCPU, qemuVersion: qemu)
    }

    static func chosen(_ result: Result<ClusterReport.Host, ClusterPlacement.Problem>) -> String? {
        if case .success(let host) = result { return host.name }
        return nil
    }

    static func problem(_ result: Result<ClusterReport.Host, ClusterPlacement.Problem>) -> String? {
        if case .failure(let problem) = result { return problem.description }
        return nil
    }

    @Test func autoTakesTheHostWithTheMostMemoryLeftThenFewestVMsThenName() {
        let report = Self.report([Self.host("b", committed: 8), Self.host("c", committed: 2, vms: 5),
                                  Self.host("d", committed: 2, vms: 1), Self.host("e", committed: 2, vms: 1)])
        // c, d and e have 14 GiB left; d and e have one VM; d before e by name. The source (a) is never chosen.
        #expect(Self.chosen(ClusterPlacement.choose(Self.demand(4), to: "auto", in: report)) == "d")
    }

    @Test func admissionLimitsQEMUVersionCPUModelAndDrainingRuleHostsOut() {
        let report = Self.report([
            Self.host("full", committed: 14),
            Self.host("old", qemu: "7.2.15"),
            Self.host("intel", cpu: "Xeon"),
            Self.host("drain", draining: true),
            Self.host("ok", committed: 10),
        ])
        let demand = Self.demand(4, hostCPU: "EPYC", qemu: "8.2.2")
        #expect(Self.chosen(ClusterPlacement.choose(demand, to: "auto", in: report)) == "ok")
        let refusals = { (name: String) in
            ClusterPlacement.refusals(demand, on: report.hosts.first { $0.name == name }!, source: "a").joined()
        }
        #expect(refusals("full").contains("memory overcommit would be 1.13, limit 1.00: 18.0 GiB committed"))
        #expect(refusals("old") == "its QEMU 7.2.15 is older than the source's 8.2.2")
        #expect(refusals("intel").contains("its CPU is 'Xeon', not 'EPYC'"))
        #expect(refusals("drain").contains("draining"))
        #expect(refusals("a") == "it is the VM's own host")
        // Without host CPU passthrough the CPU model does not matter; a newer QEMU is fine.
        #expect(ClusterPlacement.refusals(Self.demand(4, qemu: "8.1"), on: Self.host("intel", cpu: "Xeon"), source: "a").isEmpty)
    }

    @Test func aNamedHostThatCannotTakeTheVMSaysWhy() {
        let report = Self.report([Self.host("b", committed: 15), Self.host("c")])
        #expect(Self.problem(ClusterPlacement.choose(Self.demand(4), to: "b", in: report))?
            .hasPrefix("--to b: host b cannot take web: memory overcommit would be 1.19") == true)
        #expect(Self.chosen(ClusterPlacement.choose(Self.demand(4), to: "c", in: report)) == "c")
        #expect(Self.problem(ClusterPlacement.choose(Self.demand(4), to: "zz", in: report))
            == "--to zz: no live host of that name in the cluster (live: a, b, c)")
        #expect(Self.problem(ClusterPlacement.choose(Self.demand(4), to: "a", in: report)) == "--to a: host a cannot take web: it is the VM's own host")
        #expect(Self.problem(ClusterPlacement.choose(Self.demand(4), to: "b", in: ClusterReport(enabled: false)))?
            .contains("not in a cluster") == true)
        let alone = ClusterReport(enabled: true, host: "a", state: "alive", hosts: [Self.host("a")])
        #expect(Self.problem(ClusterPlacement.choose(Self.demand(4), to: "auto", in: alone))
            == "--to auto: no host can take web (no other live host in the cluster)")
        let noFit = Self.report([Self.host("b", committed: 15)])
        #expect(Self.problem(ClusterPlacement.choose(Self.demand(4), to: "auto", in: noFit))?
            .hasPrefix("--to auto: no host can take web (b: memory overcommit") == true)
    }

    @Test func anEvacuationPlanCountsTheVMsPlacedBeforeEach() {
        // b and c each have room for 6 GiB; three 4 GiB VMs: two fit (one on each), the third fits nowhere.
        let report = Self.report([Self.host("b", memory: 8, committed: 2), Self.host("c", memory: 8, committed: 2)])
        let demands = ["x", "y", "z"].map { ClusterPlacement.Demand(vm: $0, load: .init(vcpus: 1, memory: 4 * Self.gib)) }
        let plan = ClusterPlacement.plan(demands, in: report)
        let placed = plan.compactMap { step in Self.chosen(step.outcome).map { (step.vm, $0) } }
        #expect(placed.map(\.1).sorted() == ["b", "c"])
        #expect(plan.filter { Self.problem($0.outcome) != nil }.count == 1)
        // Without limits the memory left still ranks them: one each, the third on the emptier again.
        let unlimited = Self.report([Self.host("b", memory: 8, committed: 2, limit: nil), Self.host("c", memory: 8, committed: 3, limit: nil)])
        let spread = ClusterPlacement.plan(demands, in: unlimited).compactMap { Self.chosen($0.outcome) }
        #expect(spread == ["b", "c", "b"])
    }

    @Test func versionsCompareNumerically() {
        #expect(ClusterPlacement.refusals(Self.demand(1, qemu: "10.0"), on: Self.host("b", qemu: "9.2.1"), source: "a")
            == ["its QEMU 9.2.1 is older than the source's 10.0"])
        #expect(ClusterPlacement.refusals(Self.demand(1, qemu: "8.2"), on: Self.host("b", qemu: "8.2.0"), source: "a").isEmpty)
    }
}
