/// Automatic ballooning, in the spirit of oVirt MoM and Proxmox's auto-ballooning: when the host runs
/// short of memory, inflate guest balloons (lower their targets) step by step, guests with fewer shares
/// first; when memory is plentiful again, give it back.
///
/// A pure value: `decide` takes one observation of the host and the VMs and returns the new balloon
/// targets; the caller sends them (`balloon` over QMP) and calls again on the next tick. Its only state is
/// whether the host is under pressure, which gives the hysteresis:
///
/// - pressure starts when available < `lowWater` × total and lasts until available ≥ `highWater` × total;
///   while it lasts, balloons shrink by the **deficit** `highWater` × total − available;
/// - without pressure, balloons grow only by the **surplus** available − `highWater` × total, so giving
///   memory back never drops the host below `highWater` (well above `lowWater`): no flapping;
/// - between the two thresholds nothing moves.
///
/// Splitting an amount A across the VMs that can move (water-filling, so a VM at its limit passes its
/// part on to the others):
///
/// - shrink: VM *i* gives A × wᵢ / Σw with wᵢ = sizeᵢ / sharesᵢ — bigger VMs give more, and a VM with half
///   the shares gives twice as much as an equal VM;
/// - grow: VM *i* gets A × wᵢ / Σw with wᵢ = sizeᵢ × sharesᵢ — more shares, faster recovery.
///
/// Each change is at most `maxStep` × size per tick and keeps the target within [floor, size], where
/// floor is the profile's balloon `min`, raised — when the guest reports its available memory — to
/// actual − (guestAvailable − `guestReserve` × size), so the balloon never takes what the guest is using.
/// Targets move in whole MiB; a VM whose new target would differ by less than 1 MiB gets no decision.
public struct BalloonPolicy: Sendable, Equatable {
    public struct Config: Sendable, Equatable {
        /// Pressure starts below this fraction of host memory available (default 20 %).
        public var lowWater: Double
        /// Pressure ends at or above this fraction (default 30 %); also the level growth never goes below.
        public var highWater: Double
        /// Largest change of one VM's target per tick, as a fraction of its size (default 5 %).
        public var maxStep: Double
        /// Memory the guest keeps available, as a fraction of its size, when its stats are known (default 5 %).
        public var guestReserve: Double

        public init(lowWater: Double = 0.20, highWater: Double = 0.30, maxStep: Double = 0.05,
                    guestReserve: Double = 0.05) {
            self.lowWater = lowWater
            self.highWater = max(highWater, lowWater)
            self.maxStep = maxStep
            self.guestReserve = guestReserve
        }
    }

    /// One VM as the daemon sees it this tick.
    public struct VM: Sendable, Equatable {
        public var name: String
        /// Guest memory the balloon can give back to: boot size plus plugged DIMMs, in bytes.
        public var size: UInt64
        /// The profile's `memory.balloon.min`.
        public var min: UInt64
        /// The last target corral set; nil when it never set one (the balloon is then at `actual`).
        public var target: UInt64?
        /// `query-balloon` `actual`: memory the guest has now.
        public var actual: UInt64
        /// The guest's own available memory (virtio-balloon stat `stat-available-memory`), when it reports it.
        public var guestAvailable: UInt64?
        /// `overcommit.memoryShares` (≥ 1).
        public var shares: Int
        /// Being migrated: left alone (the balloon must not move under a migration).
        public var migrating: Bool

        public init(name: String, size: UInt64, min: UInt64, target: UInt64? = nil, actual: UInt64,
                    guestAvailable: UInt64? = nil, shares: Int = 1000, migrating: Bool = false) {
            self.name = name
            self.size = size
            self.min = min
            self.target = target
            self.actual = actual
            self.guestAvailable = guestAvailable
            self.shares = shares
            self.migrating = migrating
        }
    }

    public struct Decision: Sendable, Equatable, CustomStringConvertible {
        public var vm: String
        /// New balloon target in bytes (QMP `balloon` `value`).
        public var target: UInt64

        public init(vm: String, target: UInt64) {
            self.vm = vm
            self.target = target
        }

        public var description: String { "\(vm) → \(target >> 20) MiB" }
    }

    public var config: Config
    /// True from the tick available fell below `lowWater` until the tick it is back at `highWater`.
    public private(set) var underPressure: Bool

    public init(config: Config = Config(), underPressure: Bool = false) {
        self.config = config
        self.underPressure = underPressure
    }

    static let mib: UInt64 = 1 << 20

    public mutating func decide(host: HostMemory, vms: [VM]) -> [Decision] {
        guard host.total > 0 else { return [] }
        let total = Double(host.total)
        let available = Double(host.available)
        if underPressure {
            if available >= config.highWater * total { underPressure = false }
        } else if available < config.lowWater * total {
            underPressure = true
        }

        var movable: [(vm: VM, base: UInt64, room: Double, weight: Double)] = []
        for vm in vms where !vm.migrating && vm.size > 0 {
            let base = vm.target ?? vm.actual
            let step = config.maxStep * Double(vm.size)
            // A balloon still more than a step away from its last target is not following (no driver,
            // guest busy): asking for more would only pile up.
            if vm.target != nil, Double(base.distance(to: vm.actual).magnitude) > step { continue }
            let shares = Double(Swift.max(1, vm.shares))
            if underPressure {
                let room = Double(base) - Double(floor(of: vm))
                if room >= Double(Self.mib) {
                    movable.append((vm, base, Swift.min(room, step), Double(vm.size) / shares))
                }
            } else {
                let room = Double(vm.size) - Double(base)
                if room >= Double(Self.mib) {
                    movable.append((vm, base, Swift.min(room, step), Double(vm.size) * shares))
                }
            }
        }

        let amount = underPressure ? config.highWater * total - available : available - config.highWater * total
        guard amount >= Double(Self.mib), !movable.isEmpty else { return [] }
        let parts = Self.waterFill(amount, rooms: movable.map(\.room), weights: movable.map(\.weight))

        var decisions: [Decision] = []
        for (entry, part) in zip(movable, parts) {
            // Whole MiB; the extra byte absorbs floating-point error in the split (100 MiB must not become 99).
            let delta = UInt64(part + 1) / Self.mib * Self.mib
            guard delta > 0 else { continue }
            let target: UInt64
            if underPressure {
                target = Swift.max(entry.base - Swift.min(delta, entry.base), floor(of: entry.vm))
            } else {
                target = Swift.min(entry.base + delta, entry.vm.size)
            }
            if target != entry.base { decisions.append(Decision(vm: entry.vm.name, target: target)) }
        }
        return decisions
    }

    /// The lowest target for a VM: its `min`, raised so that the guest keeps `guestReserve` × size of what
    /// it reports available; never above its size.
    func floor(of vm: VM) -> UInt64 {
        var lowest = vm.min
        if let guestAvailable = vm.guestAvailable {
            let reserve = UInt64(config.guestReserve * Double(vm.size))
            let givable = guestAvailable > reserve ? guestAvailable - reserve : 0
            let keep = vm.actual > givable ? vm.actual - givable : 0
            lowest = Swift.max(lowest, keep)
        }
        return Swift.min(lowest, vm.size)
    }

    /// Splits `amount` in proportion to `weights`, no part above its room; what a capped part cannot take
    /// goes to the others. The parts add up to min(amount, Σ rooms).
    static func waterFill(_ amount: Double, rooms: [Double], weights: [Double]) -> [Double] {
        var parts = [Double](repeating: 0, count: rooms.count)
        var open = Set(rooms.indices.filter { rooms[$0] > 0 && weights[$0] > 0 })
        var left = amount
        while left > 0.5, !open.isEmpty {
            let totalWeight = open.reduce(0) { $0 + weights[$1] }
            var capped: [Int] = []
            for i in open where left * weights[i] / totalWeight >= rooms[i] - parts[i] {
                capped.append(i)
            }
            if capped.isEmpty {
                for i in open { parts[i] += left * weights[i] / totalWeight }
                break
            }
            for i in capped {
                left -= rooms[i] - parts[i]
                parts[i] = rooms[i]
                open.remove(i)
            }
        }
        return parts
    }
}
