#if canImport(Glibc)
import HostDevices
import Glibc
#endif

import CorralCore

/// What KSM reports, plus its current settings.
public struct KSMStatus: Sendable, Equatable {
    public var settings: KSMSettings
    /// `pages_shared`: distinct pages that are shared.
    public var pagesShared: Int
    /// `pages_sharing`: sites sharing them, i.e. how many pages merging saved.
    public var pagesSharing: Int

    public init(settings: KSMSettings, pagesShared: Int, pagesSharing: Int) {
        self.settings = settings
        self.pagesShared = pagesShared
        self.pagesSharing = pagesSharing
    }

    /// Memory saved by merging: `pages_sharing` × page size.
    public func savedBytes(pageSize: UInt64 = KSMControl.systemPageSize) -> UInt64 {
        UInt64(max(0, pagesSharing)) * pageSize
    }
}

/// Reads and writes `/sys/kernel/mm/ksm/*` under `root` ("" for the real host, a temporary folder in tests).
public struct KSMControl: Sendable {
    public var root: String

    public init(root: String = "") { self.root = root }

    public var directory: String { root + "/sys/kernel/mm/ksm" }

    public static var systemPageSize: UInt64 { UInt64(max(1, sysconf(Int32(_SC_PAGESIZE)))) }

    /// False when the kernel has no KSM (CONFIG_KSM off).
    public var isAvailable: Bool { KernelFiles.exists(directory + "/run") }

    public func status() throws(KernelFileError) -> KSMStatus {
        KSMStatus(settings: try settings(),
                  pagesShared: try KernelFiles.readInt(directory + "/pages_shared"),
                  pagesSharing: try KernelFiles.readInt(directory + "/pages_sharing"))
    }

    public func settings() throws(KernelFileError) -> KSMSettings {
        KSMSettings(run: try KernelFiles.readInt(directory + "/run") != 0,
                    pagesToScan: try KernelFiles.readInt(directory + "/pages_to_scan"),
                    sleepMillisecs: try KernelFiles.readInt(directory + "/sleep_millisecs"))
    }

    /// Writes the settings that differ from `current` (all of them when `current` is nil). Scan rate
    /// first, then `run`, so a starting scanner starts at the new rate.
    public func apply(_ desired: KSMSettings, current: KSMSettings? = nil) throws(KernelFileError) {
        if desired.pagesToScan != current?.pagesToScan {
            try KernelFiles.write("\(desired.pagesToScan)\n", to: directory + "/pages_to_scan")
        }
        if desired.sleepMillisecs != current?.sleepMillisecs {
            try KernelFiles.write("\(desired.sleepMillisecs)\n", to: directory + "/sleep_millisecs")
        }
        if desired.run != current?.run {
            try KernelFiles.write(desired.run ? "1\n" : "0\n", to: directory + "/run")
        }
    }
}
