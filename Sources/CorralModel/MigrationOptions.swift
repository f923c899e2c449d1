/// What the user asked `corral migrate` for. Pure data: the plan, the state machine and the
/// peer request all read it; `problems()` refuses combinations that cannot work on QEMU 7.2
/// before anything is started on either host.
public struct MigrationOptions: Codable, Sendable, Equatable {
    /// `--bandwidth SIZE/s`: QEMU's `max-bandwidth` (bytes per second). nil leaves QEMU's default, 128 MiB/s.
    public var bandwidthBytesPerSecond: Int64?
    /// `--downtime-ms N`: QEMU's `downtime-limit`. nil leaves QEMU's default, 300 ms.
    public var downtimeMs: Int?
    /// `--postcopy`: switch to postcopy once the first RAM pass is done. A failure after the switch loses the guest.
    public var postcopy: Bool
    /// `--multifd N`: N parallel migration channels (capability `multifd`, parameter `multifd-channels`).
    public var multifdChannels: Int?
    /// `--auto-converge`: throttle the guest's vCPUs when RAM does not converge.
    public var autoConverge: Bool
    /// `--xbzrle`: send deltas of re-dirtied pages.
    public var xbzrle: Bool
    /// `--with-storage`: mirror every disk to the destination over NBD (non-shared storage).
    public var withStorage: Bool
    /// `--tls`: migration stream (and NBD) over TLS with x509 credentials from each daemon's cert dir.
    public var tls: Bool
    /// `--timeout S`: give up (and roll back) when not completed after S seconds.
    public var timeoutSeconds: Int?

    public init(bandwidthBytesPerSecond: Int64? = nil, downtimeMs: Int? = nil, postcopy: Bool = false,
                multifdChannels: Int? = nil, autoConverge: Bool = false, xbzrle: Bool = false,
                withStorage: Bool = false, tls: Bool = false, timeoutSeconds: Int? = nil) {
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        self.downtimeMs = downtimeMs
        self.postcopy = postcopy
        self.multifdChannels = multifdChannels
        self.autoConverge = autoConverge
        self.xbzrle = xbzrle
        self.withStorage = withStorage
        self.tls = tls
        self.timeoutSeconds = timeoutSeconds
    }

    /// corral's accepted range for `--multifd` (QEMU itself takes 1…255; more than 64 only costs sockets).
    public static let multifdChannelRange = 1...64
    /// corral's accepted range for `--downtime-ms` (QEMU itself takes up to 2,000,000 ms; a limit past
    /// 2 s is a pause, not a live migration).
    public static let downtimeRange = 1...2000

    /// Every reason these options cannot work, in a fixed order; empty when they can.
    public func problems() -> [String] {
        var out: [String] = []
        if let bandwidth = bandwidthBytesPerSecond, bandwidth <= 0 {
            out.append("--bandwidth must be more than 0 bytes/s (got \(bandwidth)); leave it out for QEMU's default of 128 MiB/s")
        }
        if let downtime = downtimeMs, !Self.downtimeRange.contains(downtime) {
            out.append("--downtime-ms must be between \(Self.downtimeRange.lowerBound) and \(Self.downtimeRange.upperBound) (got \(downtime))")
        }
        if let channels = multifdChannels, !Self.multifdChannelRange.contains(channels) {
            out.append("--multifd must be between \(Self.multifdChannelRange.lowerBound) and \(Self.multifdChannelRange.upperBound) channels (got \(channels))")
        }
        if let timeout = timeoutSeconds, timeout <= 0 {
            out.append("--timeout must be more than 0 seconds (got \(timeout))")
        }
        if postcopy && multifdChannels != nil {
            out.append("--postcopy cannot be combined with --multifd on QEMU 7.2: the destination QEMU aborts "
                + "(yank_unregister_instance assertion) when such a migration completes, and the guest is lost")
        }
        if postcopy && withStorage {
            out.append("--postcopy cannot be combined with --with-storage: the disk mirrors are switched over at "
                + "pause-before-switchover, and a postcopy failure after that point loses the guest and its disks")
        }
        if xbzrle && multifdChannels != nil {
            out.append("--xbzrle cannot be combined with --multifd on QEMU 7.2: multifd sends whole pages and "
                + "never consults the XBZRLE cache, so --xbzrle would be silently ignored")
        }
        return out
    }

    // Missing keys decode as "not asked for", so an older peer's request still decodes.
    private enum CodingKeys: String, CodingKey {
        case bandwidthBytesPerSecond, downtimeMs, postcopy, multifdChannels, autoConverge, xbzrle, withStorage, tls,
             timeoutSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bandwidthBytesPerSecond = try c.decodeIfPresent(Int64.self, forKey: .bandwidthBytesPerSecond)
        downtimeMs = try c.decodeIfPresent(Int.self, forKey: .downtimeMs)
        postcopy = try c.decodeIfPresent(Bool.self, forKey: .postcopy) ?? false
        multifdChannels = try c.decodeIfPresent(Int.self, forKey: .multifdChannels)
        autoConverge = try c.decodeIfPresent(Bool.self, forKey: .autoConverge) ?? false
        xbzrle = try c.decodeIfPresent(Bool.self, forKey: .xbzrle) ?? false
        withStorage = try c.decodeIfPresent(Bool.self, forKey: .withStorage) ?? false
        tls = try c.decodeIfPresent(Bool.self, forKey: .tls) ?? false
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds)
    }
}
