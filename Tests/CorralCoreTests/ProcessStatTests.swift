import CorralCore
import Testing

@Suite struct ProcessStatTests {
    @Test func cpuTimeIsUserPlusSystemAfterTheLastParenthesis() {
        // A command name with spaces and a ')' in it must not shift the fields.
        let line = "4242 (qemu) (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 3 0 100 0 0"
        #expect(ProcessStat.cpuSeconds(statLine: line, ticksPerSecond: 100) == 4.0)
        #expect(ProcessStat.cpuSeconds(statLine: "1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 7 3", ticksPerSecond: 100) == 0.1)
    }

    @Test func aShortOrBrokenLineHasNoCPUTime() {
        #expect(ProcessStat.cpuSeconds(statLine: "4242 (qemu) S 1 2 3", ticksPerSecond: 100) == nil)
        #expect(ProcessStat.cpuSeconds(statLine: "no parenthesis at all", ticksPerSecond: 100) == nil)
        #expect(ProcessStat.cpuSeconds(statLine: "1 (x) S 0 1 1 0 -1 0 1 0 0 0 -5 3", ticksPerSecond: 100) == nil)
        #expect(ProcessStat.cpuSeconds(statLine: "1 (x) S 0 1 1 0 -1 0 1 0 0 0 7 3", ticksPerSecond: 0) == nil)
    }
}
