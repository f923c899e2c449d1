/// What a request must satisfy before anything is done with it, checked the same way by the CLI (before it
/// calls the daemon) and by the daemon (for every caller). Each `validate()` looks at the request alone — what
/// depends on the VM or the host (a free slot, an existing file, `cpu.max`) stays with the daemon — and reports
/// every problem at once, each naming the CLI flag (or argument) and what it allows.

/// Every problem with one request, in a fixed order.
public struct RequestProblems: Error, Sendable, Equatable, CustomStringConvertible {
    public var messages: [String]

    public init(_ messages: [String]) { self.messages = messages }

    /// The messages joined with "; " (one line, as an error body carries it).
    public var description: String { messages.joined(separator: "; ") }

    /// Throws when there is any problem.
    static func check(_ messages: [String]) throws(RequestProblems) {
        guard messages.isEmpty else { throw RequestProblems(messages) }
    }
}

extension ControlError {
    /// A request that failed `validate()`: `invalid-request`, every problem in one message.
    public init(_ problems: RequestProblems) {
        self = .invalidRequest(problems.description)
    }
}

/// Limits of the live overcommit settings, shared by profiles (`overcommit:`), `corral set` and the daemon.
public enum OvercommitLimits {
    /// cgroup v2 `cpu.weight` (v1 `cpu.shares` is derived from it); 100 is the default.
    public static let cpuWeight = 1...10_000
    /// Percent of one host CPU: up to 255 CPUs (the vCPU limit) × 100 %.
    public static let cpuQuotaPercent = 1...25_500
    /// A VM's weight when the balloon policy shares memory out.
    public static let minMemoryShares = 1
}

extension UpRequest {
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if !profile.hasPrefix("/") {
            problems.append("PROFILE: '\(profile)' must be an absolute path on the daemon's host")
        }
        if let name, !VMName.isValid(name) {
            problems.append("--name: '\(name)' is not a valid VM name (\(VMName.rule))")
        }
        try RequestProblems.check(problems)
    }
}

extension MigrateRequest {
    /// The destination can be connected to, and the options can work together (`MigrationOptions.problems()`).
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if !HostPort.connectablePorts.contains(to.port) {
            problems.append("--to: port \(to.port) cannot be connected to: give the destination daemon's port "
                + "(\(HostPort.connectablePorts.lowerBound)…\(HostPort.connectablePorts.upperBound))")
        }
        problems += options.problems()
        try RequestProblems.check(problems)
    }
}

extension TuningRequest {
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if self == TuningRequest() {
            problems.append(
                "give at least one of --cpu-weight, --cpu-quota, --balloon-min, --memory-shares, --auto-balloon")
        }
        let weights = OvercommitLimits.cpuWeight
        if let cpuWeight, !weights.contains(cpuWeight) {
            problems.append("--cpu-weight: \(cpuWeight) is outside \(weights.lowerBound)…\(weights.upperBound)")
        }
        let quotas = OvercommitLimits.cpuQuotaPercent
        if let cpuQuotaPercent, cpuQuotaPercent != 0, !quotas.contains(cpuQuotaPercent) {
            problems.append("--cpu-quota: \(cpuQuotaPercent)% is outside \(quotas.lowerBound)…\(quotas.upperBound)% "
                + "(none removes the quota)")
        }
        if let memoryShares, memoryShares < OvercommitLimits.minMemoryShares {
            problems.append("--memory-shares: \(memoryShares) is less than \(OvercommitLimits.minMemoryShares)")
        }
        if let balloonMin {
            do { _ = try ByteSize(parsing: balloonMin) } catch { problems.append("--balloon-min: \(error.description)") }
        }
        try RequestProblems.check(problems)
    }
}

extension DiskAddRequest {
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if let problem = DeviceID.problem(id, flag: "--id") { problems.append(problem) }
        if let file, !file.hasPrefix("/") {
            problems.append("--file: '\(file)' must be an absolute path (on the daemon's host)")
        }
        if file == nil, size == nil, backing == nil {
            problems.append("give --file (an image), --size (a new volume corral keeps in the VM's folder), "
                + "--backing (a new overlay on a base image), or --file with one of them")
        }
        if let backing {
            if !backing.hasPrefix("/") {
                problems.append("--backing: '\(backing)' must be an absolute path (on the daemon's host)")
            }
            if format == .raw { problems.append("--backing makes a qcow2 overlay: --format raw cannot have one") }
            if readonly { problems.append("--readonly with --backing would create an overlay nothing can write") }
        }
        if let size {
            do { _ = try ByteSize(parsing: size) } catch { problems.append("--size: \(error.description)") }
            if readonly { problems.append("--readonly with --size would create an empty read-only disk") }
        }
        try RequestProblems.check(problems)
    }
}

extension NICAddRequest {
    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        if let problem = DeviceID.problem(id, flag: "--id") { problems.append(problem) }
        let mode = self.mode ?? .user
        if bridge != nil, mode != .bridge { problems.append("--bridge needs --mode bridge") }
        if ifname != nil, mode != .tap { problems.append("--ifname needs --mode tap") }
        if mode == .bridge, bridge == nil { problems.append("--mode bridge needs --bridge BRIDGE") }
        if network != nil, mode != .network { problems.append("--network needs --mode network") }
        if mode == .network, network == nil { problems.append("--mode network needs --network NAME") }
        if let network, !NetworkName.isValid(network) {
            problems.append("--network: '\(network)' is not a network name (\(NetworkName.rule))")
        }
        if parent != nil, mode != .macvtap { problems.append("--parent needs --mode macvtap") }
        if macvtapMode != nil, mode != .macvtap { problems.append("--macvtap-mode needs --mode macvtap") }
        if mode == .macvtap, parent == nil { problems.append("--mode macvtap needs --parent INTERFACE") }
        for (flag, name) in [("--bridge", bridge), ("--ifname", ifname), ("--parent", parent)] {
            if let name, !InterfaceName.isValid(name) {
                problems.append("\(flag): '\(name)' is not a valid interface name (\(InterfaceName.rule))")
            }
        }
        if let mac {
            if !MACAddress.isValid(mac) {
                problems.append("--mac: '\(mac)' is not a MAC address like 52:54:00:12:34:56")
            } else if !MACAddress.isUnicast(mac) {
                problems.append("--mac: '\(mac)' is a multicast address; the first octet must be even")
            }
        }
        try RequestProblems.check(problems)
    }
}

extension MemoryAddRequest {
    /// Linux onlines hotplugged memory in blocks of this size on x86-64: a DIMM must be a multiple of it.
    public static let blockSize = ByteSize.mib(128)

    public func validate() throws(RequestProblems) {
        var problems: [String] = []
        do {
            let bytes = try ByteSize(parsing: size)
            if bytes.bytes == 0 || bytes.bytes % Self.blockSize.bytes != 0 {
                problems.append("--add: \(bytes) is not a multiple of \(Self.blockSize) "
                    + "(the guest's memory block size)")
            }
        } catch {
            problems.append("--add: \(error.description)")
        }
        if let id, let problem = DeviceID.problem(id, flag: "--id") { problems.append(problem) }
        try RequestProblems.check(problems)
    }
}

extension DeviceID {
    /// `FLAG: 'ID' is not a valid device id (…)`, or nil for a valid id.
    public static func problem(_ id: String, flag: String) -> String? {
        isValid(id) ? nil : "\(flag): '\(id)' is not a valid device id (\(rule))"
    }
}
