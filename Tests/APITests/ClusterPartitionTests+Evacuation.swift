import CorralModel
import CorralWire
import Foundation
import Supervisor
import Testing

/// Evacuate and restore over a real network (`scripts/netns-cluster`): three daemons in their own namespaces, a
/// 3-member etcd in a fourth. Host 1 runs three guests; `corral host evacuate host-1`, given to host 2's daemon (and
/// so forwarded to host 1's), live-migrates them to hosts 2 and 3, two at a time; host 1 drains (a new VM is refused
/// there); a VM on another host answers `status` through any daemon; `corral host restore host-1` brings all three
/// back. Each guest keeps counting (no reboot) through both moves. Part of ClusterPartitionTests's suite, so that
/// no two labs run at once (each boots guests and times leases on the same two cores).
extension ClusterPartitionTests {
    static let evacuees = ["ev-a", "ev-b", "ev-c"]

    /// The NDJSON lines of `corral host ACTION host-1 --json` run on host `via`, decoded.
    static func hostAction(_ lab: ClusterLab.Lab, _ action: String, via k: Int) async throws -> [EvacuationStreamMessage] {
        let result = try await lab.corral(["host", action, "host-1", "--parallel", "2", "--json"], on: k)
        try #require(result.status == .exited(0), "\(result)")
        return try result.output.split(separator: "\n").map {
            try JSONDecoder().decode(EvacuationStreamMessage.self, from: Data($0.utf8))
        }
    }

    /// The host (1-based) each VM runs on now; nil for one not running anywhere or running twice.
    static func evacueePlacement(_ lab: ClusterLab.Lab) async -> [String: Int?] {
        var found: [String: Int?] = [:]
        for vm in evacuees {
            let states = await lab.states(vm)
            let running = states.indices.filter { states[$0] == .running }
            found[vm] = running.count == 1 ? running[0] + 1 : nil
        }
        return found
    }

    @Test func evacuateAHostWithThreeVMsToTheOthersAndRestoreIt() async throws {
        try await ClusterLab.withLab { lab in
            var beats: [String: Int] = [:]
            for vm in Self.evacuees {
                let status = try await lab.up(vm, on: 1)
                beats[vm] = try await TwoHostMigrationTests.heartbeat(in: status.serialLog) { _ in true }
            }
            // The hosts publish their capacity with their key (refreshed every second).
            let published = await ClusterLab.eventually(within: .seconds(15)) {
                guard let report = try? await lab.cluster(on: 2) else { return false }
                return report.hosts.count == 3 && report.hosts.allSatisfy { $0.capacity != nil }
                    && report.hosts.first { $0.name == "host-1" }?.capacity?.committedMemoryBytes == 3 * (256 << 20)
            }
            #expect(published, "every host published its capacity and host-1 its three guests' memory")

            // Asked of host 2: forwarded to host 1, which moves its own VMs.
            let lines = try await Self.hostAction(lab, "evacuate", via: 2)
            let plan = try #require(lines.first?.plan, "the first line is the plan: \(lines)")
            #expect(plan.map(\.vm).sorted() == Self.evacuees && plan.allSatisfy { ["host-2", "host-3"].contains($0.to ?? "") },
                    "\(plan)")
            let summary = try #require(lines.last?.summary, "the last line is the summary")
            #expect(summary.host == "host-1" && summary.moved.count == 3 && summary.failed.isEmpty && summary.stayed.isEmpty,
                    "\(summary)")
            #expect(Set(lines.compactMap { $0.result?.name }) == Set(Self.evacuees), "one result line per VM")
            // Spread by memory left: both destinations got some.
            #expect(Set(summary.moved.values) == ["host-2", "host-3"], "\(summary.moved)")

            // Where the summary says, running once, and the same guest (its heartbeat count went on).
            let placed = await Self.evacueePlacement(lab)
            for vm in Self.evacuees {
                let k = try #require(placed[vm] ?? nil, "\(vm) runs on exactly one host: \(placed)")
                #expect("host-\(k)" == summary.moved[vm])
                let log = lab.serialLog(k, vm: vm)
                let before = beats[vm]!
                beats[vm] = try await TwoHostMigrationTests.heartbeat(in: log) { $0 > before }
            }
            #expect(try await lab.list(on: 1).isEmpty, "host-1 kept nothing")

            // Draining: host 1 takes no new VM; the cluster view says so and lists what moved.
            let report = try await lab.cluster(on: 3)
            let host1 = try #require(report.hosts.first { $0.name == "host-1" })
            #expect(host1.draining && host1.moved == summary.moved, "\(host1)")
            let refused = try await lab.corral(["up", lab.root + "/ev-a.yaml", "--name", "newcomer"], on: 1)
            #expect(refused.status != .exited(0) && refused.output.contains("draining"), "\(refused)")

            // Any daemon answers about a VM on another host (forwarded to its owner with the admin token).
            let away = Self.evacuees[0], owner = placed[away]!!
            let other = [1, 2, 3].first { $0 != owner }!
            let forwarded = await lab.status(away, on: other)
            #expect(forwarded?.state == .running && forwarded?.serialLog == lab.serialLog(owner, vm: away),
                    "status of \(away) asked of host-\(other) came from host-\(owner): \(String(describing: forwarded))")

            // Restore: all three come back to host 1, still the same guests.
            let back = try await Self.hostAction(lab, "restore", via: 1)
            let restored = try #require(back.last?.summary)
            #expect(Set(restored.moved.keys) == Set(Self.evacuees) && restored.failed.isEmpty, "\(restored)")
            let home = await Self.evacueePlacement(lab)
            #expect(home.values.allSatisfy { $0 == 1 }, "every VM is back on host-1 and only there: \(home)")
            for vm in Self.evacuees {
                let before = beats[vm]!
                _ = try await TwoHostMigrationTests.heartbeat(in: lab.serialLog(1, vm: vm)) { $0 > before }
            }
            let after = try await lab.cluster(on: 1)
            let host1After = try #require(after.hosts.first { $0.name == "host-1" })
            #expect(!host1After.draining && host1After.moved.isEmpty && host1After.vms == Self.evacuees, "\(host1After)")
            // One owner per VM across real daemons: the same profile `up` on hosts 2 and 3 at once runs on one; the
            // other is refused naming it and keeps nothing.
            let twin = lab.root + "/ev-a.yaml"
            async let onTwo = lab.corral(["up", twin, "--name", "twin"], on: 2)
            async let onThree = lab.corral(["up", twin, "--name", "twin"], on: 3)
            let outcomes = [2: try await onTwo, 3: try await onThree]
            let winners = outcomes.filter { $0.value.status == .exited(0) }.map(\.key)
            #expect(winners.count == 1, "exactly one host runs twin: \(outcomes)")
            if let winner = winners.first, let loser = [2, 3].first(where: { $0 != winner }) {
                #expect(outcomes[loser]!.output.contains("twin is owned by host host-\(winner)"), "\(outcomes[loser]!)")
                #expect(await lab.ownState("twin", on: loser) == nil)
                _ = try await lab.corral(["rm", "twin", "--force"], on: winner)
            }

            let second = try await lab.corral(["host", "restore", "host-1"], on: 1)
            #expect(second.status != .exited(0) && second.output.contains("not draining"), "\(second)")

            // Migrate by host name, and by placement: host-3 has one VM then, host-2 none, so auto picks host-2.
            let named = try await lab.corral(["migrate", "ev-a", "--to", "host-3"], on: 1)
            #expect(named.status == .exited(0) && named.output.contains("ev-a: to host host-3 (192.0.2.13:7070)"), "\(named)")
            let _ = await ClusterLab.eventually(within: .seconds(5)) {
                (try? await lab.cluster(on: 1))?.hosts.first { $0.name == "host-3" }?.capacity?.committedMemoryBytes ?? 0 > 0
            }
            let auto = try await lab.corral(["migrate", "ev-b", "--to", "auto"], on: 1)
            #expect(auto.status == .exited(0) && auto.output.contains("ev-b: to host host-2"), "\(auto)")
            let self_ = try await lab.corral(["migrate", "ev-c", "--to", "host-1"], on: 1)
            #expect(self_.status != .exited(0) && self_.output.contains("it is the VM's own host"), "\(self_)")
            let statesA = await lab.states("ev-a"), statesB = await lab.states("ev-b")
            #expect(statesA == [nil, nil, .running] && statesB == [nil, .running, nil], "\(statesA) \(statesB)")
            // rm through host-1 reaches each VM's owner.
            for vm in Self.evacuees {
                let removed = try await lab.corral(["rm", vm, "--force"], on: 1)
                #expect(removed.status == .exited(0), "\(removed)")
            }
            for k in 1...3 { #expect(try await lab.list(on: k).isEmpty, "host-\(k) has nothing left") }
        }
    }
}
