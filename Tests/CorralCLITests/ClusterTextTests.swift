@testable import CorralCLI
import CorralModel
import Testing

struct ClusterTextTests {
    @Test func hostsTheirVMsAndThisHostMarked() {
        let capacity = HostCapacity(cpus: 8, memoryBytes: 16 << 30, committedVCPUs: 3, committedMemoryBytes: 1536 << 20,
                                    cpuModel: "x", qemuVersion: "7.2.15")
        let report = ClusterReport(enabled: true, host: "b", state: "alive",
                                   hosts: [.init(name: "a", address: "192.0.2.1:7070", vms: ["db", "web"], capacity: capacity),
                                           .init(name: "b", address: "", vms: [], draining: true,
                                                 moved: ["mail": "a", "app": "a"])],
                                   orphans: ["lost"])
        #expect(ClusterText.lines(report) == [
            "host b (alive)",
            "HOST  ADDRESS         STATE     VCPUS  MEMORY          VMS  NAMES",
            "a     192.0.2.1:7070  ready     3/8    1.5 GiB/16 GiB  2    db,web",
            "b *   -               draining  -      -               0    -",
            "b evacuated: app→a, mail→a (corral host restore b brings them back)",
            "owned by no live host: lost",
        ])
        #expect(ClusterText.lines(ClusterReport(enabled: false)).first?.contains("--cluster URLS --host NAME") == true)
        #expect(ClusterText.lines(ClusterReport(enabled: true, host: "a", state: "unreachable", problem: "etcd down"))
            == ["host a (unreachable)", "cluster unreadable: etcd down"])
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
