import CorralModel
import Foundation
import Supervisor
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The cluster over a real network: three `corral daemon` processes in their own network namespaces and a 3-member
/// etcd in a fourth, joined by a bridge (`scripts/netns-cluster`, harness in ClusterLabHarness.swift). What
/// ClusterHATests shows in one process with a fault-injecting store, here with the link really cut on the switch.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10)),
       .enabled(if: ClusterLab.usable, "needs root, iproute2 and etcd (scripts/install-deps)"))
struct ClusterPartitionTests {
    /// Every poll of the VM's state on all hosts, with the time since the cut.
    final class Samples: @unchecked Sendable {
        struct Sample {
            var at: Duration
            var states: [VMState?]
        }
        private let lock = NSLock()
        private var samples: [Sample] = []
        func add(_ sample: Sample) { lock.withLock { samples.append(sample) } }
        var all: [Sample] { lock.withLock { samples } }
    }

    /// The samples where the states changed, as `time: [host-1, host-2, host-3]` (`-`: not there).
    static func history(_ samples: [Samples.Sample]) -> String {
        var lines: [String] = []
        var last: [VMState?]?
        for sample in samples where sample.states != last {
            last = sample.states
            lines.append("\(sample.at): [\(sample.states.map { $0?.rawValue ?? "-" }.joined(separator: ", "))]")
        }
        return lines.joined(separator: "; ")
    }

    @Test func aCutOffHostPausesItsHAVMAnotherRunsItAndTheOldCopyIsDroppedWhenTheLinkReturns() async throws {
        try await ClusterLab.withLab { lab in
            let vm = "ha"
            let booting = ContinuousClock.now
            let first = try await lab.up(vm, on: 1, extra: "ha: true\nrestart: no\n")
            let bootTime = ContinuousClock.now - booting
            let oldPid = try #require(first.pid)
            #expect(first.state == .running)
            #expect(try await lab.cluster(on: 2).hosts.first { $0.name == "host-1" }?.vms == [vm])

            // Watch all three hosts from now on: never two running copies.
            let samples = Samples()
            let cutAt = ContinuousClock.now
            let watcher = Task {
                while !Task.isCancelled {
                    let states = await lab.states(vm)
                    samples.add(.init(at: ContinuousClock.now - cutAt, states: states))
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { watcher.cancel() }
            try await lab.link("cut", 1)

            // Another host runs it: the reconciler gave it away once host-1's lease expired (~10 s), then it booted.
            func elsewhere(_ sample: Samples.Sample) -> Int? {
                sample.states.indices.dropFirst().first { sample.states[$0] == .running }.map { $0 + 1 }
            }
            let moved = await ClusterLab.eventually(within: .seconds(60) + bootTime * 3) {
                samples.all.contains { elsewhere($0) != nil }
            }
            try #require(moved, "no other host ran the HA VM within \(Duration.seconds(60) + bootTime * 3) of the cut")
            let all = samples.all
            let movedIndex = try #require(all.firstIndex { elsewhere($0) != nil })
            let newHost = try #require(elsewhere(all[movedIndex]))
            let twoRunningSoFar = all.filter { $0.states.filter { $0 == .running }.count > 1 }
            #expect(twoRunningSoFar.count == 0, "two running copies; states after the cut: \(Self.history(all))")
            let pausedIndex = all.firstIndex { $0.states[0] == .paused }
            #expect(pausedIndex.map { $0 < movedIndex } == true,
                    "host-1 paused the VM before another host ran it; states after the cut: \(Self.history(all))")
            if let pausedIndex { #expect(all[pausedIndex].at < .seconds(20), "paused \(all[pausedIndex].at) after the cut") }
            #expect(all[movedIndex].at < .seconds(25) + bootTime * 3 + .seconds(15),
                    "running on host-\(newHost) \(all[movedIndex].at) after the cut (boot took \(bootTime))")

            // Its guest runs there: heartbeats advancing in that host's serial log (a fresh boot).
            let serial = lab.serialLog(newHost, vm: vm)
            let firstBeat = try await TwoHostMigrationTests.heartbeat(in: serial, within: .seconds(60) + bootTime * 3) { _ in true }
            let firstBeatAt = ContinuousClock.now - cutAt
            _ = try await TwoHostMigrationTests.heartbeat(in: serial, within: .seconds(60)) { $0 >= firstBeat + 3 }
            let listed = try await lab.list(on: newHost)
            #expect(listed.map(\.name) == [vm] && listed.first?.state == .running, "\(listed.map { ($0.name, $0.state) })")
            #expect(try await lab.cluster(on: newHost).hosts.first { $0.name == "host-\(newHost)" }?.vms == [vm])

            // The link returns: host-1 rejoins, finds the VM owned by the other host, and drops its paused copy
            // instead of resuming it.
            try await lab.link("mend", 1)
            let dropped = await ClusterLab.eventually(within: .seconds(60)) {
                (try? await lab.list(on: 1))?.isEmpty == true
            }
            let left = (try? await lab.list(on: 1).map { "\($0.name): \($0.state)" }) ?? []
            #expect(dropped, "host-1 still lists its copy: \(left)")
            let qemuGone = await ClusterLab.eventually(within: .seconds(10)) {
                kill(oldPid, 0) != 0 && BinaryTCPTests.processes(mentioning: first.qmpSocket).isEmpty
            }
            #expect(qemuGone, "host-1's QEMU (pid \(oldPid)) is gone")
            #expect(await lab.status(vm, on: newHost)?.state == .running, "host-\(newHost)'s copy runs on")
            try await Task.sleep(for: .seconds(1))
            watcher.cancel()
            _ = await watcher.value

            let seen = samples.all
            let twoRunning = seen.filter { $0.states.filter { $0 == .running }.count > 1 }
            #expect(twoRunning.count == 0, "two running copies in \(twoRunning.count) of \(seen.count) polls; states: \(Self.history(seen))")
            let resumed = seen[(pausedIndex ?? seen.endIndex)...].filter { $0.states[0] == .running }
            #expect(resumed.count == 0, "host-1 resumed its copy at \(resumed.map(\.at))")
            print("""
                ClusterPartitionTests: boot \(bootTime); after the cut: paused on host-1 seen at \
                \(pausedIndex.map { "\(all[$0].at)" } ?? "never"), running on host-\(newHost) at \(all[movedIndex].at), first heartbeat \
                there at \(firstBeatAt); \(seen.count) polls of 3 hosts, \(twoRunning.count) with two running
                """)
        }
    }

    @Test func withEtcdGoneANonHAVMRunsOnAndTheClusterIsReportedUnreachable() async throws {
        try await ClusterLab.withLab { lab in
            let vm = "plain"
            let started = try await lab.up(vm, on: 2)
            #expect(started.state == .running)
            let healthy = try await lab.cluster(on: 2)
            #expect(healthy.state == "alive" && healthy.problem == nil && healthy.hosts.count == 3, "\(healthy)")

            // One member of three killed: the cluster still answers and a new VM can still be claimed and started.
            try await lab.killEtcdMember(1)
            var report: ClusterReport?
            var attempts = 0
            let answers = await ClusterLab.eventually(within: .seconds(20)) {
                attempts += 1
                report = try? await lab.cluster(on: 2)
                return report?.problem == nil && report?.hosts.count == 3
            }
            #expect(answers, "cluster ls with one etcd member down: \(String(describing: report))")
            let other = try await lab.up("other", on: 3)
            #expect(other.state == .running)
            let owners = try await lab.cluster(on: 1)
            #expect(owners.hosts.first { $0.name == "host-3" }?.vms == ["other"], "\(owners)")
            let removed = try await lab.corral(["rm", "other", "--force"], on: 3)
            #expect(removed.status == .exited(0), "\(removed)")

            // The other two killed: no etcd at all. The non-HA VM runs on (it is not fenced).
            try await lab.killEtcdMember(2)
            try await lab.killEtcdMember(3)
            let serial = lab.serialLog(2, vm: vm)
            var highest = TwoHostMigrationTests.heartbeats(in: serial).max() ?? -1
            var states: [VMState?] = []
            for _ in 0..<4 {
                try await Task.sleep(for: .seconds(5))
                let now = TwoHostMigrationTests.heartbeats(in: serial).max() ?? -1
                #expect(now > highest, "heartbeats stalled at \(highest) with etcd down")
                highest = now
                states.append(await lab.status(vm, on: 2)?.state)
            }
            #expect(states.allSatisfy { $0 == .running }, "states with etcd down: \(states)")

            let unreachable = await ClusterLab.eventually(within: .seconds(30)) {
                report = try? await lab.cluster(on: 2)
                return report?.state == "unreachable" || report?.problem != nil
            }
            #expect(unreachable, "cluster ls with etcd down: \(String(describing: report))")
            print("""
                ClusterPartitionTests: one etcd member down: cluster ls answered on attempt \(attempts); all down: \
                state \(report?.state ?? "nil"), problem \(report?.problem ?? "nil")
                """)
            #expect(await lab.status(vm, on: 2)?.state == .running)
        }
    }
}
