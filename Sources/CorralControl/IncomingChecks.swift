import CorralModel
import Profiles
import QEMUCommand

extension IncomingRequest {
    /// What a destination refuses before it looks at its own host: every problem, in order (empty when none).
    /// `VMManager.prepareIncoming` throws them as one `invalid-request`; the `liveconfig` fuzz target applies the
    /// same checks before it builds the argv.
    ///
    /// The profile is checked like one loaded from YAML: the argv builder trusts a validated profile (a topology
    /// with `threads: 0` divided by zero and took the daemon down, found by the fuzzer).
    public func problems() -> [String] {
        let profile = config.profile
        let hotplugged = config.hotplugged
        // The profile is checked with the plugged disks and NICs appended to its lists (`disks[N]` past the profile's
        // own are plugged ones), so they meet the same rules and ids stay unique across both.
        var withPlugged = profile
        withPlugged.disks += hotplugged.disks.map(\.disk)
        withPlugged.nics += hotplugged.nics.map(\.nic)
        var problems = withPlugged.problems().map { "config.profile." + $0 }
        if !Self.isUUID(config.uuid) {
            problems.append("config.uuid: '\(config.uuid)' is not a UUID like 00000000-0000-4000-8000-000000000001")
        }
        if let online = hotplugged.onlineCPUs, !(1...max(1, profile.cpu.max)).contains(online) {
            problems.append("config.hotplugged.onlineCPUs: \(online) is outside 1…\(profile.cpu.max) (cpu.max)")
        }
        // Each plugged device sits on one of the profile's hotplug ports, one device per port.
        let ports = Set(DeviceProps.hotplugPortIDs(count: profile.hotplug.slots))
        var used: Set<String> = []
        for port in hotplugged.disks.map(\.port) + hotplugged.nics.map(\.port) {
            if !ports.contains(port) || !used.insert(port).inserted {
                problems.append("config.hotplugged: port '\(port)' is not a free hotplug port of the profile")
            }
        }
        for dimm in hotplugged.memory {
            if let problem = DeviceID.problem(dimm.id, flag: "config.hotplugged.memory[].id") { problems.append(problem) }
        }
        problems += options.problems()
        do { _ = try HostPort(host: listenHost, port: 0) } catch { problems.append("listenHost: \(error.description)") }
        return problems
    }

    /// `8-4-4-4-12` hexadecimal digits.
    static func isUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.utf8.count) == [8, 4, 4, 4, 12]
            && groups.allSatisfy { $0.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) } }
    }
}
