import CorralModel
import Supervisor
import Testing

@Suite struct VMRecordTests {
    /// What the daemon writes while QEMU starts: the pid, the spawn time, the state it expects, meant to run;
    /// everything else (restart count, last exit, …) as it was.
    @Test func spawnedRecordNamesTheProcess() {
        var record = VMRecord(name: "a", profilePath: "/p.yaml", accel: .tcg, now: 100)
        record.restartCount = 2
        record.lastExit = "killed by corral"
        let spawned = record.spawned(pid: 4242, at: 150.5, expecting: .paused)
        #expect(spawned.pid == 4242 && spawned.startedAt == 150.5)
        #expect(spawned.state == .paused && spawned.desiredRunning)
        #expect(spawned.restartCount == 2 && spawned.lastExit == "killed by corral" && spawned.createdAt == 100)
        #expect(record.pid == nil && !record.desiredRunning, "the original is unchanged")
    }
}
