import Profiles

/// One descriptor QEMU receives in an fd set (`-add-fd`) and opens by the set's path.
public struct FDSetEntry: Sendable, Equatable, Codable {
    public var fd: Int32
    public var set: Int32
    public var path: String { "/dev/fdset/\(set)" }

    public init(fd: Int32, set: Int32) {
        self.fd = fd
        self.set = set
    }
}

/// Pure: what an unprivileged QEMU is handed instead of opening the daemon's files itself, and where it finds each
/// descriptor. A confined QEMU cannot reach the VM's folder (root's) or, usually, the disks' folders; the daemon
/// opens them and hands the descriptors over: the QMP socket already listening, the serial log and every disk as
/// fd sets (opened by `/dev/fdset/N`), the kernel and initrd as `/proc/self/fd/N`. There is no `-pidfile` (the
/// daemon records the pid it spawned). The launcher opens exactly these and places them at these numbers; the argv
/// names the same numbers.
public struct HandOverPlan: Sendable, Equatable {
    public var qmp: Int32
    /// /dev/null in an fd set whose opaque text is the QMP socket's path: the folder stays on QEMU's command line, so a
    /// restarted daemon can still prove which QEMU is this VM's (it never opens the path itself).
    public var marker: FDSetEntry
    /// The guest agent channel's listening socket (`agent: true`).
    public var agent: Int32?
    public var serial: FDSetEntry?
    /// The serial console's listening socket (with `serial`).
    public var console: Int32?
    /// Disk id → its descriptor and set, profile disks then hotplugged ones.
    public var disks: [String: FDSetEntry]
    /// Disk id → its base image's descriptor and set (disks with `backing`), opened read-only.
    public var backings: [String: FDSetEntry] = [:]
    /// Disk id → its frozen snapshot images' descriptors and sets, bottom to top (read-write: a snapshot's removal
    /// commits into them).
    public var layers: [String: [FDSetEntry]] = [:]
    public var kernel: Int32?
    public var initrd: Int32?

    /// fd sets the plan uses start here; sets made by hotplug (`add-fd` without an id) get QEMU's own numbers, which
    /// start above the highest set in use.
    public static let firstSet: Int32 = 1

    /// Descriptors numbered from `firstFD` (after the taps): QMP, marker, agent, serial, disks in order, kernel, initrd.
    public static func make(_ config: LiveConfig, serialLog: Bool, firstFD: Int32) -> HandOverPlan {
        let profile = config.profile
        var next = firstFD
        var set = firstSet
        func take() -> Int32 {
            defer { next += 1 }
            return next
        }
        func takeSet() -> FDSetEntry {
            defer { set += 1 }
            return FDSetEntry(fd: take(), set: set)
        }
        let qmp = take()
        let marker = takeSet()
        let agent = profile.agent ? take() : nil
        let serial = serialLog ? takeSet() : nil
        let console = serialLog ? take() : nil
        var disks: [String: FDSetEntry] = [:]
        for disk in config.allDisks { disks[disk.id] = takeSet() }
        var backings: [String: FDSetEntry] = [:]
        for disk in config.allDisks where disk.backing != nil {
            backings[disk.id] = takeSet()
        }
        var layers: [String: [FDSetEntry]] = [:]
        for disk in config.allDisks {
            guard let chain = disk.chain, !chain.frozen.isEmpty else { continue }
            layers[disk.id] = chain.frozen.map { _ in takeSet() }
        }
        let kernel = profile.boot.kernel.map { _ in take() }
        let initrd = profile.boot.kernel != nil && profile.boot.initrd != nil ? take() : nil
        return HandOverPlan(qmp: qmp, marker: marker, agent: agent, serial: serial, console: console, disks: disks,
                            backings: backings, layers: layers, kernel: kernel, initrd: initrd)
    }

    /// The `-add-fd` arguments: the marker (`markerText`, already escaped for QemuOpts), serial, then the disks in
    /// the profile's order.
    public func addFDArguments(_ config: LiveConfig, markerText: String) -> [String] {
        var entries: [(FDSetEntry, String)] = [(marker, markerText)]
        if let serial { entries.append((serial, "serial")) }
        for disk in config.allDisks {
            if let entry = disks[disk.id] {
                entries.append((entry, DeviceProps.fdSetOpaque(disk, tag: disk.chain?.activeNodeTag)))
            }
        }
        for disk in config.allDisks {
            if let entry = backings[disk.id] { entries.append((entry, "backing-" + disk.id)) }
        }
        for disk in config.allDisks {
            for (layer, entry) in zip(disk.chain?.frozen ?? [], layers[disk.id] ?? []) {
                entries.append((entry, DeviceProps.fdSetOpaque(disk, tag: layer.tag)))
            }
        }
        return entries.flatMap { entry, opaque in
            ["-add-fd", "fd=\(entry.fd),set=\(entry.set),opaque=\(opaque)"]
        }
    }

    /// The highest descriptor the plan uses.
    public var highestFD: Int32 {
        ([qmp, marker.fd, agent, serial?.fd, console, kernel, initrd].compactMap { $0 } + disks.values.map(\.fd)
            + backings.values.map(\.fd) + layers.values.flatMap { $0.map(\.fd) }).max() ?? qmp
    }
}
