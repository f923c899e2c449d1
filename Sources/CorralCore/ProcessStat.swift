/// A process's CPU time from its `/proc/PID/stat` line (proc(5)): the fields after the command name, which sits
/// in parentheses and may itself hold spaces and parentheses, so the line is split after its *last* `)`.
public enum ProcessStat {
    /// utime + stime (fields 14 and 15) in seconds; nil for a line that does not have them.
    public static func cpuSeconds(statLine: String, ticksPerSecond: Int) -> Double? {
        guard ticksPerSecond > 0, let close = statLine.lastIndex(of: ")") else { return nil }
        // After the command: field 3 (state) onwards, so utime (14) and stime (15) are at 11 and 12.
        let fields = statLine[statLine.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return Double(user + system) / Double(ticksPerSecond)
    }
}
