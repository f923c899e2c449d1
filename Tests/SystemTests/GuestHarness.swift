import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import CorralControl
import CorralCore
import LogTail
import Supervisor
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers for tests that boot the real test guest under TCG.
enum Guest {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `$CORRAL_TEST_GUEST` (a folder built with `scripts/build-test-guest DIR`), else `.build/test-guest`.
    static var folder: String {
        if let dir = ProcessInfo.processInfo.environment["CORRAL_TEST_GUEST"], !dir.isEmpty { return dir }
        return repoRoot + "/.build/test-guest"
    }
    static var kernel: String { folder + "/vmlinuz" }
    static var initrd: String { folder + "/initrd.img" }
    /// The generic-kernel variant (`scripts/build-test-guest --flavor generic`): drives an emulated e1000e.
    static var genericFolder: String {
        if let dir = ProcessInfo.processInfo.environment["CORRAL_TEST_GUEST_GENERIC"], !dir.isEmpty { return dir }
        return repoRoot + "/.build/test-guest-generic"
    }

    /// Fails the test with a hint when the generic-kernel guest has not been built (scripts/test builds it).
    static func requireGenericBuilt() throws {
        guard FileManager.default.fileExists(atPath: genericFolder + "/vmlinuz") else {
            let hint = "run scripts/build-test-guest --flavor generic (scripts/test does)"
            Issue.record("generic test guest missing at \(genericFolder): \(hint)")
            throw GuestMissing()
        }
    }

    /// Fails the test with a hint when the guest has not been built (scripts/test builds it).
    static func requireBuilt() throws {
        guard FileManager.default.fileExists(atPath: kernel), FileManager.default.fileExists(atPath: initrd) else {
            Issue.record("test guest missing at \(folder): run scripts/build-test-guest (scripts/test does)")
            throw GuestMissing()
        }
    }

    struct GuestMissing: Error {}

    /// A small TCG profile booting the test guest.
    static func profile(name: String, cpus: Int = 1, maxCPUs: Int = 2, disks: [Disk] = [], nics: [NIC] = [],
                        hotplugSlots: Int = 2) -> Profile {
        Profile(
            name: name, machine: "q35", accel: .tcg,
            cpu: CPU(count: cpus, max: maxCPUs),
            memory: Memory(size: .mib(256)),
            boot: Boot(kernel: kernel, initrd: initrd, cmdline: "console=ttyS0 panic=-1 quiet no_timer_check"),
            disks: disks, nics: nics, hotplug: Hotplug(slots: hotplugSlots))
    }

    /// How much the guest rewrites, over and over, with `dirtyingCmdline` (docs/test-guest.md): more than a
    /// throttled precopy can send, so only postcopy moves such a guest.
    static let dirtyMiB = 64
    static var dirtyingCmdline: String { "corral.dirty=\(dirtyMiB)" }

    /// Waits for the guest's "dirtying N MiB continuously" line: a guest built before `corral.dirty` existed
    /// ignores it, and a postcopy test on an idle guest would prove nothing.
    static func requireDirtying(_ serialLog: String) async throws {
        let line = await LogFollower.firstLine(in: serialLog, within: .seconds(180)) {
            $0.contains("corral-init: dirtying") || $0.contains("corral-init: ready")
        }
        guard let line, line.contains("corral-init: dirtying \(dirtyMiB) MiB continuously") else {
            Issue.record("the guest does not dirty memory (\(line ?? "no line")): rebuild it with scripts/build-test-guest")
            throw GuestMissing()
        }
    }

    /// Writes a YAML profile booting the test guest; `extra` is appended (top-level keys), `cmdline` is added to
    /// the kernel command line.
    static func writeProfile(in folder: String, name: String, cpu: String = "{ count: 1, max: 2 }",
                             memory: String = "{ size: 256M }", cmdline: String = "", extra: String = "") throws -> String {
        let path = folder + "/\(name).yaml"
        try """
            name: \(name)
            accel: tcg
            cpu: \(cpu)
            memory: \(memory)
            boot:
              kernel: \(kernel)
              initrd: \(initrd)
              cmdline: "console=ttyS0 panic=-1 quiet no_timer_check\(cmdline.isEmpty ? "" : " " + cmdline)"
            nics: [ { id: net0 } ]

            """.appending(extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// After a test, passed or failed: kill every process still mentioning `folder` (QEMUs a failed test
    /// left running), then remove the folder.
    static func cleanUp(_ folder: String) {
        for pid in (try? processesMentioning(folder)) ?? [] { kill(pid, SIGKILL) }
        FileOps.removeTree(folder)
    }

    /// How long a file (a serial log) is now: where to read on from for what the guest writes next.
    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// A fresh folder under /tmp (short, so socket paths fit), removed by the caller (`Guest.cleanUp`).
    static func tempFolder(_ tag: String) -> String {
        var template = Array("/tmp/corral-test-\(tag)-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template)!)
    }
}

/// One parsed `CORRAL-HB` heartbeat line printed by the test guest every 0.5 s (docs/test-guest.md).
struct Heartbeat: Equatable {
    var n: Int
    var cpus: Int
    var disks: [String]
    var nics: [String]
    var memKB: Int
    /// The first IPv4 address of each NIC that has one (`ips=eth0:10.0.2.15,eth1:-` gives `["eth0": "10.0.2.15"]`).
    var ips: [String: String]
    /// The last `corral.ping=` result: "ok", "fail", or "-" (no ping asked for, or none finished yet);
    /// nil when the line has no `ping=` field (a guest built before it existed).
    var ping: String?
    /// The first global IPv6 address of each NIC that has one (`ip6=eth0:2001:db8::10,eth1:-`); empty for a guest
    /// built before `ip6=` existed.
    var ip6: [String: String]
    /// Each master interface (a virtio-net failover pair's) and its slaves (`lower=eth0:eth1+eth2`); empty for none
    /// or a guest built before `lower=` existed.
    var lower: [String: [String]]
    /// What the guest read from a cloud-init seed: `instance-id:` and the first 12 hex digits of user-data's SHA-1;
    /// nil without a seed (`seed=-`) or for a guest built before `seed=` existed.
    var seed: String?

    init?(line: String) {
        guard let start = line.range(of: "CORRAL-HB ") else { return nil }
        var fields: [String: String] = [:]
        // A serial log line ends in "\r\n" (the tty's onlcr): the last field must not keep the "\r".
        for part in line[start.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let n = fields["n"].flatMap(Int.init), let cpus = fields["cpus"].flatMap(Int.init),
            let mem = fields["memkb"].flatMap(Int.init)
        else { return nil }
        func list(_ key: String) -> [String] {
            (fields[key] ?? "").split(separator: ",").map(String.init)
        }
        self.n = n
        self.cpus = cpus
        self.disks = list("disks")
        self.nics = list("nics")
        self.memKB = mem
        func addresses(_ key: String) -> [String: String] {
            var out: [String: String] = [:]
            for entry in list(key) {
                let pair = entry.split(separator: ":", maxSplits: 1)
                if pair.count == 2, pair[1] != "-" { out[String(pair[0])] = String(pair[1]) }
            }
            return out
        }
        self.ips = addresses("ips")
        self.ping = fields["ping"]
        self.ip6 = addresses("ip6")
        var lower: [String: [String]] = [:]
        for entry in (fields["lower"] ?? "").split(separator: ";") {
            let pair = entry.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { lower[String(pair[0])] = pair[1].split(separator: "+").map(String.init) }
        }
        self.lower = lower
        self.seed = fields["seed"].flatMap { $0 == "-" ? nil : $0 }
    }
}

enum HeartbeatWait {
    /// The last heartbeat the guest has written so far.
    static func last(in log: String) -> Heartbeat? {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isNewline).reversed().lazy
            .compactMap { Heartbeat(line: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }.first
    }

    struct TimedOut: Error, CustomStringConvertible {
        var log: String
        /// The host's load when the wait ended: an empty log on a host with a load of 30 is starvation, not a hang.
        var load = TimedOut.hostLoad()
        var description: String { "no matching CORRAL-HB line (\(load)); serial log tail:\n\(log)" }

        static func hostLoad() -> String {
            let average = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
                .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
            let pressure = (try? String(contentsOfFile: "/proc/pressure/cpu", encoding: .utf8))?
                .split(separator: "\n").first.map(String.init) ?? "no PSI"
            return "host load \(average), cpu pressure \(pressure)"
        }
    }

    /// Waits for the first heartbeat in `serialLog` that satisfies `predicate`.
    /// `offset`: where to start reading (a restarted QEMU appends to the log the one before it wrote).
    static func first(in serialLog: String, from offset: Int = 0, within limit: Duration = .seconds(180),
                      where predicate: @escaping @Sendable (Heartbeat) -> Bool = { _ in true }) async throws -> Heartbeat {
        let line = await LogFollower.firstLine(in: serialLog, from: offset, within: limit) { line in
            Heartbeat(line: line).map(predicate) ?? false
        }
        let found = line.flatMap { Heartbeat(line: $0) }
        guard let found else {
            let text = (try? String(contentsOfFile: serialLog, encoding: .utf8)) ?? ""
            throw TimedOut(log: String(text.suffix(1500)))
        }
        return found
    }
}

enum EventWait {
    /// The first event in `events` that satisfies `predicate`, or nil when the stream ends or `limit` passes first.
    /// Subscribe (`VMManager.events`) before causing the event, so it cannot be missed.
    static func first(in events: AsyncStream<CorralEvent>, within limit: Duration = .seconds(60),
                      where predicate: @escaping @Sendable (CorralEvent) -> Bool) async -> CorralEvent? {
        await withTaskGroup(of: CorralEvent?.self) { group in
            group.addTask {
                for await event in events where predicate(event) { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// Collects the lines of a growing file (serial log, QMP transcript) from its first one. The follower keeps its
/// descriptor, so what a migration source wrote just before its folder was removed still counts.
final class LineRecorder: Sendable {
    private let follower: LogFollower
    private let collect: Task<[String], Never>

    init(path: String) {
        let follower = LogFollower(path: path)
        self.follower = follower
        collect = Task {
            var lines: [String] = []
            for await line in follower.lines() { lines.append(line) }
            return lines
        }
    }

    /// Stops following; every complete line written so far.
    func finish() async -> [String] {
        follower.stop()
        return await collect.value
    }

    /// A QMP transcript (`qmp.log`) as it is now.
    static func transcript(at path: String) -> [TranscriptLine] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { TranscriptLine(String($0)) }
    }
}

extension [TranscriptLine] {
    /// Arguments of every `command` corral sent, in order.
    func sent(_ command: String) -> [JSONValue] {
        filter { $0.command == command }.map { $0.message["arguments"] ?? .object([:]) }
    }

    /// `data.status` of every MIGRATION event, in order.
    var migrationStatuses: [String] {
        compactMap { $0.event == "MIGRATION" ? $0.message["data"]?["status"]?.stringValue : nil }
    }

    /// The `return` of every reply QEMU sent.
    var replies: [JSONValue] {
        compactMap { $0.direction == .received ? $0.message["return"] : nil }
    }
}

extension JSONValue {
    /// The state of `name` in a `migrate-set-capabilities` argument object.
    func capability(_ name: String) -> Bool? {
        self["capabilities"]?.arrayValue?.first { $0["capability"]?.stringValue == name }?["state"]?.boolValue
    }
}
