import Foundation
import JSON
import Profiles
import QEMUCommand

/// Shared fixtures and argv readers for the QEMUCommand tests.
enum Fixture {
    static func runtime(_ accel: ResolvedAccel = .kvm, name: String = "vm") -> RuntimeOptions {
        RuntimeOptions(accel: accel, qmpSocket: "/run/corral/vms/\(name)/qmp.sock",
                       serialLog: "/var/lib/corral/vms/\(name)/serial.log")
    }

    static func minimal(name: String = "vm", machine: String = "q35") -> Profile {
        Profile(name: name, machine: machine, memory: Memory(size: .mib(512)))
    }

    /// A profile that exercises every device kind. `dir` holds the disk images.
    static func rich(dir: String = "/images", machine: String = "q35", slots: Int = 9) -> Profile {
        Profile(
            name: "rich",
            machine: machine,
            accel: .tcg,
            cpu: CPU(count: 2, max: 4, sockets: 2, cores: 2, threads: 1),
            memory: Memory(size: .mib(256), max: .gib(1), slots: 2, balloon: Balloon(freePageReporting: true)),
            boot: Boot(firmware: machine == "q35" ? .uefi : .bios),
            disks: [
                Disk(id: "root", file: dir + "/root.qcow2", format: .qcow2, bus: .virtioBlk, cache: .none),
                Disk(id: "data", file: dir + "/da ta,x=1\"y.raw", format: .raw, bus: .virtioSCSI,
                     cache: .writeback, readonly: true),
                Disk(id: "fast", file: dir + "/fast.qcow2", format: .qcow2, bus: .nvme, cache: .unsafe,
                     discard: true),
            ],
            nics: [
                NIC(id: "lan", mode: .user, model: .virtioNet),
                NIC(id: "mgmt", mode: .user, mac: "52:54:00:aa:bb:cc", model: .e1000e),
            ],
            hotplug: Hotplug(slots: slots)
        )
    }

    /// Runtime devices on `rich`: a disk on hp1, a NIC on hp3, one DIMM, three online vCPUs.
    static func richHotplugged(dir: String = "/images") -> HotplugState {
        HotplugState(
            disks: [PluggedDisk(disk: Disk(id: "extra", file: dir + "/extra.qcow2", bus: .virtioSCSI,
                                           cache: .directsync), port: "hp1")],
            nics: [PluggedNIC(nic: NIC(id: "late", model: .virtioNet), port: "hp3")],
            onlineCPUs: 3,
            memory: [PluggedMemory(id: "m0", size: .mib(128))]
        )
    }
}

extension Array where Element == String {
    /// Values that follow each occurrence of `flag`.
    func values(of flag: String) -> [String] {
        indices.compactMap { i in self[i] == flag && i + 1 < count ? self[i + 1] : nil }
    }

    /// The single value of `flag`, or nil when it is absent or repeated.
    func value(of flag: String) -> String? {
        let all = values(of: flag)
        return all.count == 1 ? all[0] : nil
    }

    /// JSON objects given to `flag` (`-device`, `-blockdev`…), parsed independently with Foundation.
    func objects(of flag: String) -> [[String: TestJSON]] {
        values(of: flag).map(parseObject)
    }

    /// The `-device` objects with this driver.
    func devices(driver: String) -> [[String: TestJSON]] {
        objects(of: "-device").filter { $0["driver"] == .string(driver) }
    }

    func device(id: String) -> [String: TestJSON]? {
        objects(of: "-device").first { $0["id"] == .string(id) }
    }
}

/// A JSON value decoded by Foundation's JSONDecoder: an implementation independent of ours, strict
/// about booleans versus numbers.
enum TestJSON: Decodable, Equatable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral
{
    case null, bool(Bool), int(Int64), double(Double), string(String)
    case array([TestJSON]), object([String: TestJSON])

    init(stringLiteral value: String) { self = .string(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(integerLiteral value: Int64) { self = .int(value) }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([TestJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: TestJSON].self)) }
    }

    subscript(key: String) -> TestJSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}

/// Parses one JSON object; an unparsable text yields a marker that no expectation matches.
func parseObject(_ text: String) -> [String: TestJSON] {
    (try? JSONDecoder().decode([String: TestJSON].self, from: Data(text.utf8))) ?? ["__unparsable__": .string(text)]
}
