import JSON

/// QEMU's `MigrationStatus` (QEMU 7.2), as in MIGRATION events and `query-migrate`.
public enum MigrationStatus: String, Sendable, Codable, CaseIterable {
    case none, setup, cancelling, cancelled, active
    case postcopyActive = "postcopy-active"
    case postcopyPaused = "postcopy-paused"
    case postcopyRecover = "postcopy-recover"
    case completed, failed, colo
    case preSwitchover = "pre-switchover"
    case device
    case waitUnplug = "wait-unplug"

    /// No further transitions come from QEMU.
    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// One `query-migrate` reply, parsed. Every field is optional: QEMU leaves out what it does not
/// know yet (an early `setup` reply has no `ram`, `downtime` appears only once completed).
///
/// The same value travels end to end: the daemon parses it, `status` shows it, `corral migrate` streams it and the
/// CLI draws its bar from it. On the wire the fields keep their names; `status` is QEMU's text, and `percent` and
/// `mibPerSecond` are added (derived, for scripts; ignored when decoding).
public struct MigrationProgress: Sendable, Equatable, Codable {
    public var status: MigrationStatus?
    /// The status text as QEMU sent it (kept when corral does not know it).
    public var rawStatus: String?
    public var ramTransferred: Int64?
    public var ramRemaining: Int64?
    public var ramTotal: Int64?
    /// QEMU's `ram.mbps`: megabits per second.
    public var mbps: Double?
    public var dirtyPagesRate: Int64?
    /// RAM passes so far (`ram.dirty-sync-count`): 2 or more means the first full pass is done.
    public var dirtySyncCount: Int64?
    public var expectedDowntimeMs: Int64?
    public var totalTimeMs: Int64?
    /// The actual downtime, once completed.
    public var downtimeMs: Int64?
    public var setupTimeMs: Int64?
    public var errorDescription: String?

    public init(status: MigrationStatus? = nil, rawStatus: String? = nil, ramTransferred: Int64? = nil,
                ramRemaining: Int64? = nil, ramTotal: Int64? = nil, mbps: Double? = nil,
                dirtyPagesRate: Int64? = nil, dirtySyncCount: Int64? = nil, expectedDowntimeMs: Int64? = nil,
                totalTimeMs: Int64? = nil, downtimeMs: Int64? = nil, setupTimeMs: Int64? = nil,
                errorDescription: String? = nil) {
        self.status = status
        self.rawStatus = rawStatus ?? status?.rawValue
        self.ramTransferred = ramTransferred
        self.ramRemaining = ramRemaining
        self.ramTotal = ramTotal
        self.mbps = mbps
        self.dirtyPagesRate = dirtyPagesRate
        self.dirtySyncCount = dirtySyncCount
        self.expectedDowntimeMs = expectedDowntimeMs
        self.totalTimeMs = totalTimeMs
        self.downtimeMs = downtimeMs
        self.setupTimeMs = setupTimeMs
        self.errorDescription = errorDescription
    }

    /// Parses the `return` value of `query-migrate`. `{}` (no migration yet) gives all nils.
    public init(queryMigrate reply: JSONValue) {
        let raw = reply["status"]?.stringValue
        let ram = reply["ram"]
        self.init(
            status: raw.flatMap(MigrationStatus.init(rawValue:)),
            rawStatus: raw,
            ramTransferred: ram?["transferred"]?.intValue,
            ramRemaining: ram?["remaining"]?.intValue,
            ramTotal: ram?["total"]?.intValue,
            mbps: ram?["mbps"]?.doubleValue,
            dirtyPagesRate: ram?["dirty-pages-rate"]?.intValue,
            dirtySyncCount: ram?["dirty-sync-count"]?.intValue,
            expectedDowntimeMs: reply["expected-downtime"]?.intValue,
            totalTimeMs: reply["total-time"]?.intValue,
            downtimeMs: reply["downtime"]?.intValue,
            setupTimeMs: reply["setup-time"]?.intValue,
            errorDescription: reply["error-desc"]?.stringValue)
    }

    private enum CodingKeys: String, CodingKey {
        case status, ramTransferred, ramRemaining, ramTotal, mbps, dirtyPagesRate, dirtySyncCount,
             expectedDowntimeMs, totalTimeMs, downtimeMs, setupTimeMs, errorDescription, percent, mibPerSecond
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let raw = try c.decodeIfPresent(String.self, forKey: .status)
        self.init(
            status: raw.flatMap(MigrationStatus.init(rawValue:)), rawStatus: raw,
            ramTransferred: try c.decodeIfPresent(Int64.self, forKey: .ramTransferred),
            ramRemaining: try c.decodeIfPresent(Int64.self, forKey: .ramRemaining),
            ramTotal: try c.decodeIfPresent(Int64.self, forKey: .ramTotal),
            mbps: try c.decodeIfPresent(Double.self, forKey: .mbps),
            dirtyPagesRate: try c.decodeIfPresent(Int64.self, forKey: .dirtyPagesRate),
            dirtySyncCount: try c.decodeIfPresent(Int64.self, forKey: .dirtySyncCount),
            expectedDowntimeMs: try c.decodeIfPresent(Int64.self, forKey: .expectedDowntimeMs),
            totalTimeMs: try c.decodeIfPresent(Int64.self, forKey: .totalTimeMs),
            downtimeMs: try c.decodeIfPresent(Int64.self, forKey: .downtimeMs),
            setupTimeMs: try c.decodeIfPresent(Int64.self, forKey: .setupTimeMs),
            errorDescription: try c.decodeIfPresent(String.self, forKey: .errorDescription))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(rawStatus, forKey: .status)
        try c.encodeIfPresent(ramTransferred, forKey: .ramTransferred)
        try c.encodeIfPresent(ramRemaining, forKey: .ramRemaining)
        try c.encodeIfPresent(ramTotal, forKey: .ramTotal)
        try c.encodeIfPresent(mbps, forKey: .mbps)
        try c.encodeIfPresent(dirtyPagesRate, forKey: .dirtyPagesRate)
        try c.encodeIfPresent(dirtySyncCount, forKey: .dirtySyncCount)
        try c.encodeIfPresent(expectedDowntimeMs, forKey: .expectedDowntimeMs)
        try c.encodeIfPresent(totalTimeMs, forKey: .totalTimeMs)
        try c.encodeIfPresent(downtimeMs, forKey: .downtimeMs)
        try c.encodeIfPresent(setupTimeMs, forKey: .setupTimeMs)
        try c.encodeIfPresent(errorDescription, forKey: .errorDescription)
        try c.encodeIfPresent(percent, forKey: .percent)
        try c.encodeIfPresent(mibPerSecond, forKey: .mibPerSecond)
    }

    /// transferred ÷ (transferred + remaining), 0…100; 100 once completed; nil before RAM figures exist.
    /// `transferred` counts re-sent pages too, so this is an estimate that can stall, never a promise.
    public var percent: Double? {
        if status == .completed { return 100 }
        guard let done = ramTransferred, let left = ramRemaining else { return nil }
        let sum = Double(max(0, done)) + Double(max(0, left))
        guard sum > 0 else { return 0 }
        return min(100, max(0, Double(max(0, done)) / sum * 100))
    }

    /// Throughput in MiB/s: from `ram.mbps` (megabits/s), else transferred bytes over total time.
    public var mibPerSecond: Double? {
        if let mbps, mbps >= 0 { return mbps * 1_000_000 / 8 / 1_048_576 }
        guard let done = ramTransferred, let ms = totalTimeMs, ms > 0 else { return nil }
        return Double(done) / (Double(ms) / 1000) / 1_048_576
    }

    /// One line: `[#####-----]  52%  phase active  118.3 MiB/s  remaining 40.1 MiB  dirty 1200 pages/s`.
    /// `width` is the number of cells between the brackets (at least 1). Unknown figures are left out.
    public func renderBar(width: Int) -> String {
        var line = ProgressBar.render(percent: percent ?? 0, width: width)
        line += "  phase " + (rawStatus ?? "unknown")
        if let speed = mibPerSecond { line += "  " + Self.oneDecimal(speed) + " MiB/s" }
        if let left = ramRemaining { line += "  remaining " + Self.bytes(left) }
        if let dirty = dirtyPagesRate { line += "  dirty \(dirty) pages/s" }
        if status == .completed, let downtimeMs { line += "  downtime \(downtimeMs) ms" }
        if let errorDescription { line += "  error: " + errorDescription }
        return line
    }

    /// `12.3` — one decimal, rounded half up, without Foundation.
    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int64((max(0, value) * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// `512 B`, `4.0 KiB`, `40.1 MiB`, `1.5 GiB`.
    static func bytes(_ count: Int64) -> String {
        let n = Double(max(0, count))
        if n < 1024 { return "\(max(0, count)) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = n / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return oneDecimal(value) + " " + units[unit]
    }
}

/// The bar every progress display draws: `[#####-----]  52%`.
public enum ProgressBar {
    /// `width` cells between the brackets (at least 1), filled in proportion to `percent` (clamped to 0…100), then
    /// the whole percent right-aligned in four columns.
    public static func render(percent: Double, width: Int) -> String {
        let cells = max(1, width)
        let pct = percent.isFinite ? min(100, max(0, percent)) : 0
        let filled = min(cells, Int((pct / 100 * Double(cells)).rounded(.down)))
        let whole = Int(pct.rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: cells - filled) + "] "
            + String(repeating: " ", count: max(0, 3 - String(whole).count)) + "\(whole)%"
    }
}
