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
