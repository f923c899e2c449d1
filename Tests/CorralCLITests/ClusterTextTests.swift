@testable import CorralCLI
import CorralModel
import Testing

struct ClusterTextTests {
    @Test func hostsTheirVMsAndThisHostMarked() {
        let report = ClusterReport(enabled: true, host: "b", state: "alive",
                                   hosts: [.init(name: "a", address: "192.0.2.1:7070", vms: ["db", "web"]),
                                           .init(name: "b", address: "", vms: [])],
                                   orphans: ["lost"])
        #expect(ClusterText.lines(report) == [
            "host b (alive)",
            "HOST  ADDRESS         VMS  NAMES",
            "a     192.0.2.1:7070  2    db,web",
            "b *   -               0    -",
            "owned by no live host: lost",
        ])
        #expect(ClusterText.lines(ClusterReport(enabled: false)).first?.contains("--cluster URLS --host NAME") == true)
        #expect(ClusterText.lines(ClusterReport(enabled: true, host: "a", state: "unreachable", problem: "etcd down"))
            == ["host a (unreachable)", "cluster unreadable: etcd down"])
    }
}

/// `corral migrate --to NAME|auto` in a cluster: the address comes from the cluster report.
struct ClusterDestinationTests {
    static let report = ClusterReport(enabled: true, host: "a", state: "alive", hosts: [
        .init(name: "a", address: "192.0.2.1:7070", vms: []),
        .init(name: "b", address: "192.0.2.2:7070", vms: ["x", "y"]),
        .init(name: "c", address: "192.0.2.3:7070", vms: ["z"]),
        .init(name: "d", address: "192.0.2.4:7070", vms: ["w"]),
        .init(name: "silent", address: "", vms: []),
    ])

    func problem(_ result: Result<String, ClusterReport.DestinationProblem>) -> String? {
        if case .failure(let problem) = result { return problem.description }
        return nil
    }

    @Test func aNameIsThatHostsAddressAndAutoTheLeastLoadedOtherHost() throws {
        #expect(try Self.report.destination("b").get() == "192.0.2.2:7070")
        // auto: not this host (a, with none), fewest VMs, ties by name (c before d); a host without an address
        // ("silent", with none) would be chosen, so auto says why it cannot be used.
        #expect(problem(Self.report.destination("auto"))?.contains("host silent published no API address") == true)
        var reachable = Self.report
        reachable.hosts.removeAll { $0.name == "silent" }
        #expect(try reachable.destination("auto").get() == "192.0.2.3:7070")
    }

    @Test func refusalsSayWhy() {
        #expect(problem(Self.report.destination("a")) == "--to a: that is this host")
        #expect(problem(Self.report.destination("zz"))
            == "--to zz: no live host of that name in the cluster (live: a, b, c, d, silent)")
        #expect(problem(ClusterReport(enabled: false).destination("b"))?.contains("not in a cluster") == true)
        let alone = ClusterReport(enabled: true, host: "a", state: "alive", hosts: [.init(name: "a", address: "x:1", vms: [])])
        #expect(problem(alone.destination("auto")) == "--to auto: no other live host in the cluster")
    }
}

struct ListAllTests {
    static func status(_ name: String, _ state: VMState) -> VMStatus {
        VMStatus(name: name, state: state, pid: nil, accel: "tcg", uptimeSeconds: nil, cpus: .init(online: 1, max: 1),
                 memory: .init(sizeBytes: 0, maxBytes: 0, balloonBytes: nil), disks: [], nics: [], qmpSocket: "",
                 serialLog: "", restartCount: 0, lastExit: nil)
    }

    @Test func everyVMWithItsHostAndThisHostsStates() {
        let report = ClusterReport(enabled: true, host: "a", state: "alive", hosts: [
            .init(name: "a", address: "", vms: ["web"]),
            .init(name: "b", address: "", vms: ["db", "stale"]),
        ], orphans: ["lost"])
        // "stale" is defined here too (a copy host b took over): owned by b, state from here.
        let rows = ClusterText.allVMs(local: [Self.status("web", .running), Self.status("stale", .paused),
                                              Self.status("local-only", .stopped)], report: report)
        #expect(ClusterText.allTable(rows) == [
            "NAME        HOST  STATE",
            "db          b     (on its host)",
            "local-only  a     stopped",
            "lost        -     (on its host)",
            "stale       b     paused",
            "web         a     running",
        ])
    }
}
