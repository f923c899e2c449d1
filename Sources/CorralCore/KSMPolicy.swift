/// KSM tuning in the spirit of ksmtuned: scan harder while the host is short of memory, ease off when
/// it is not, and stop scanning after a while without pressure or when no VM has mergeable memory.
///
/// A pure value: `decide` takes one observation and returns the settings KSM should have; the caller writes
/// them (`KSMControl.apply(_:current:)`, which skips unchanged values). Rules, per tick:
///
/// - no mergeable VM (every running VM has `memory.merge: false`, or none runs): `run` 0, scan rate reset
///   to `minPages`;
/// - pressure (available < `threshold` × total): `run` 1, `pages_to_scan` += `boost` (at most `maxPages`);
/// - no pressure: `pages_to_scan` −= `decay` (at least `minPages`); `run` stays as it was until
///   `idleTicksToStop` ticks in a row have passed without pressure, then 0 (merged pages stay merged);
/// - `sleep_millisecs` = `baseSleep` × 16 GiB / total, at least `minSleep`: a smaller host wakes the
///   scanner less often (ksmtuned's scaling).
public struct KSMPolicy: Sendable, Equatable {
    public struct Config: Sendable, Equatable {
        public var threshold: Double
        public var boost: Int
        public var decay: Int
        public var minPages: Int
        public var maxPages: Int
        public var baseSleepMillisecs: Int
        public var minSleepMillisecs: Int
        public var idleTicksToStop: Int

        /// ksmtuned's defaults (threshold 20 %, +300 / −50 pages, 64…1250 pages, 10 ms per 16 GiB).
        public init(threshold: Double = 0.20, boost: Int = 300, decay: Int = 50, minPages: Int = 64,
                    maxPages: Int = 1250, baseSleepMillisecs: Int = 10, minSleepMillisecs: Int = 10,
                    idleTicksToStop: Int = 5) {
            self.threshold = threshold
            self.boost = boost
            self.decay = decay
            self.minPages = minPages
            self.maxPages = max(maxPages, minPages)
            self.baseSleepMillisecs = baseSleepMillisecs
            self.minSleepMillisecs = minSleepMillisecs
            self.idleTicksToStop = idleTicksToStop
        }
    }

    public var config: Config
    /// Ticks in a row without pressure.
    public private(set) var idleTicks: Int

    public init(config: Config = Config(), idleTicks: Int = 0) {
        self.config = config
        self.idleTicks = idleTicks
    }

    /// - Parameters:
    ///   - current: KSM's settings now (from `KSMControl.settings()`).
    ///   - mergeableVMs: running VMs with `memory.merge: true`.
    public mutating func decide(host: HostMemory, current: KSMSettings, mergeableVMs: Int) -> KSMSettings {
        let sleep = sleepMillisecs(total: host.total)
        let pages = Swift.min(Swift.max(current.pagesToScan, config.minPages), config.maxPages)
        guard mergeableVMs > 0 else {
            idleTicks = 0
            return KSMSettings(run: false, pagesToScan: config.minPages, sleepMillisecs: sleep)
        }
        if host.total > 0, Double(host.available) < config.threshold * Double(host.total) {
            idleTicks = 0
            return KSMSettings(run: true, pagesToScan: Swift.min(pages + config.boost, config.maxPages),
                               sleepMillisecs: sleep)
        }
        idleTicks += 1
        return KSMSettings(run: current.run && idleTicks < config.idleTicksToStop,
                           pagesToScan: Swift.max(pages - config.decay, config.minPages), sleepMillisecs: sleep)
    }

    func sleepMillisecs(total: UInt64) -> Int {
        guard total > 0 else { return config.minSleepMillisecs }
        let scaled = Double(config.baseSleepMillisecs) * Double(UInt64(16) << 30) / Double(total)
        return Swift.max(config.minSleepMillisecs, Int(scaled.rounded()))
    }
}
