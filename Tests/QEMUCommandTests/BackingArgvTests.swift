import CorralModel
import JSON
import Profiles
import QEMUCommand
import Testing

/// A disk on a base image: the base's nodes come first, read-only, and the overlay's format node names them as its
/// backing; an unprivileged QEMU gets the base as one more fd set.
struct BackingArgvTests {
    static let disk = Disk(id: "root", file: "/var/lib/corral/vms/web/disks/root.qcow2",
                           backing: "/srv/images/debian-12.qcow2", backingFormat: .qcow2)

    @Test func theBaseIsAReadOnlyNodeTheOverlayNames() {
        let nodes = DeviceProps.diskNodes(Self.disk).map { JSONValue.object($0).compactText }
        #expect(nodes == [
            #"{"driver":"file","node-name":"file-root-base","filename":"/srv/images/debian-12.qcow2","aio":"threads","cache":{"direct":true,"no-flush":false},"read-only":true}"#,
            #"{"driver":"qcow2","node-name":"fmt-root-base","file":"file-root-base","cache":{"direct":true,"no-flush":false},"read-only":true}"#,
            #"{"driver":"file","node-name":"file-root","filename":"/var/lib/corral/vms/web/disks/root.qcow2","aio":"threads","cache":{"direct":true,"no-flush":false},"discard":"ignore","read-only":false}"#,
            #"{"driver":"qcow2","node-name":"fmt-root","file":"file-root","cache":{"direct":true,"no-flush":false},"discard":"ignore","read-only":false,"backing":"fmt-root-base"}"#,
        ])
    }

    @Test func anUnprivilegedQEMUGetsTheBaseAsAnFDSet() {
        let profile = Profile(name: "web", memory: Memory(size: .gib(1)), disks: [Self.disk, Disk(id: "data", file: "/d.raw", format: .raw)])
        let config = LiveConfig(profile: profile)
        let plan = HandOverPlan.make(config, serialLog: true, firstFD: 3)
        let base = try! #require(plan.backings["root"])
        #expect(plan.backings.count == 1, "only the disk with a base")
        #expect(plan.highestFD >= base.fd)
        let addFD = plan.addFDArguments(config, markerText: "m")
        #expect(addFD.contains("fd=\(base.fd),set=\(base.set),opaque=backing-root"))
        var runtime = RuntimeOptions(accel: .tcg, qmpSocket: "/q.sock")
        runtime.handOver = plan
        let argv = QEMUArgv.build(config, runtime)
        #expect(argv.contains { $0.contains(#""node-name":"file-root-base","filename":"/dev/fdset/\#(base.set)""#) }, "\(argv)")
    }
}
