#if canImport(Glibc)
import Glibc
#endif

/// Number and time formatting for the CLI's tables, without Foundation's formatters (the client links only
/// FoundationEssentials, which has none).
enum TextFormat {
    /// `value` with exactly `digits` decimals, rounded half away from zero: `fixed(1.25, 1)` is `1.3`,
    /// `fixed(-0.04, 1)` is `0.0`, `fixed(12, 0)` is `12`.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<max(0, digits) { scale *= 10 }
        let scaled = (abs(value) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9e15 else { return "\(value)" }
        let units = Int64(scaled)
        let divisor = Int64(scale)
        let sign = value < 0 && units != 0 ? "-" : ""
        guard digits > 0 else { return sign + "\(units)" }
        return sign + "\(units / divisor)." + zeroPadded(Int(units % divisor), digits)
    }

    /// `n` in at least `width` digits: `zeroPadded(5, 2)` is `05`.
    static func zeroPadded(_ n: Int, _ width: Int) -> String {
        let digits = String(abs(n))
        return (n < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// `text` followed by spaces up to `width` characters (never cut).
    static func padded(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// Seconds since the epoch as local time to the millisecond: `2026-11-28 23:41:44.123`.
    static func localTimestamp(_ seconds: Double) -> String {
        let whole = seconds.rounded(.down)
        var time = time_t(whole)
        var parts = tm()
        guard localtime_r(&time, &parts) != nil else { return fixed(seconds, 3) }
        let millis = min(999, max(0, Int(((seconds - whole) * 1000).rounded(.down))))
        return "\(parts.tm_year + 1900)-\(zeroPadded(Int(parts.tm_mon) + 1, 2))-\(zeroPadded(Int(parts.tm_mday), 2)) "
            + "\(zeroPadded(Int(parts.tm_hour), 2)):\(zeroPadded(Int(parts.tm_min), 2)):"
            + "\(zeroPadded(Int(parts.tm_sec), 2)).\(zeroPadded(millis, 3))"
    }
}
