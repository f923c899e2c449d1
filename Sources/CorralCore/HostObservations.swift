// What the host-side probes observe and the pure policies decide on.

/// Host memory as `/proc/meminfo` reports it, in bytes.
public struct HostMemory: Sendable, Equatable {
    /// `MemTotal`.
    public var total: UInt64
    /// `MemAvailable`: what can be given to new allocations without swapping (page cache that can be
    /// dropped included). This, not `MemFree`, is what the balloon and KSM policies watch.
    public var available: UInt64
    /// `HugePages_Total` / `HugePages_Free` (pages of the default huge page size) and `Hugepagesize`.
    public var hugePagesTotal: Int
    public var hugePagesFree: Int
    public var hugePageSize: UInt64

    public init(total: UInt64, available: UInt64, hugePagesTotal: Int = 0, hugePagesFree: Int = 0,
                hugePageSize: UInt64 = 2 << 20) {
        self.total = total
        self.available = available
        self.hugePagesTotal = hugePagesTotal
        self.hugePagesFree = hugePagesFree
        self.hugePageSize = hugePageSize
    }

    /// `available` as a fraction of `total` (0 when total is 0).
    public var availableFraction: Double {
        total == 0 ? 0 : Double(available) / Double(total)
    }
}

/// The KSM knobs corral tunes (Documentation/admin-guide/mm/ksm.rst).
public struct KSMSettings: Sendable, Equatable, CustomStringConvertible {
    /// `run`: false = stop scanning but keep merged pages (`0`); true = scan (`1`). corral never writes `2`
    /// (unmerge everything), which can need a lot of memory at once.
    public var run: Bool
    /// `pages_to_scan`: pages scanned per wake-up.
    public var pagesToScan: Int
    /// `sleep_millisecs`: pause between wake-ups.
    public var sleepMillisecs: Int

    public init(run: Bool, pagesToScan: Int, sleepMillisecs: Int) {
        self.run = run
        self.pagesToScan = pagesToScan
        self.sleepMillisecs = sleepMillisecs
    }

    public var description: String {
        "run=\(run ? 1 : 0) pages_to_scan=\(pagesToScan) sleep_millisecs=\(sleepMillisecs)"
    }
}
