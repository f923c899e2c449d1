// `corral-bench hotplug --state-dir DIR --profile PROFILE [--rounds N] [--cpu-vms M]`
//
// Boots one test-guest VM through an in-process `VMManager` and times hotplug, two ways on the same VM:
//   A  the Supervisor: `VMManager.addDisk` / `addNIC` / `setCPUs` (validation, plan, executor, live.json, event);
//   B  the same QMP commands written out by hand, sent through `VMManager.qmp` (QEMU serves one QMP client, which
//      the manager holds) on other hotplug ports and with other ids.
// A and B alternate (ABAB…, then BABA… on the next round). Each operation gets two times, both from just before it
// is issued: until its QMP sequence has returned, and until the guest's heartbeat line shows the device. Disks and
// NICs are removed (not timed) between rounds. vCPUs are only plugged (QEMU 7.2 under TCG crashes when a device is
// plugged after a vCPU unplug), so each VM gives max−count plugs and further rounds boot a fresh VM.

import Foundation
import CorralModel
import JSON
import Logging
import Profiles
import CorralControl
import CorralCore
import Supervisor

enum HotplugMethod: String, CaseIterable {
    case corral = "A"
    case raw = "B"
}

struct HotplugSample {
    var device: String
    var method: HotplugMethod
    /// Milliseconds until the QMP sequence (A: the VMManager call) returned.
    var returned: Double
    /// Milliseconds until a heartbeat showed the device.
    var visible: Double
}

final class HotplugBench {
    let manager: VMManager
    let profile: String
    let imageDir: String
    let name = "hotplug"
    var watcher: HeartbeatWatcher
    var samples: [HotplugSample] = []
    var rawCounter = 0
    /// The last port is B's disk port, the one before it B's NIC port; A gets the first free one from the daemon.
    let rawDiskPort: String
    let rawNICPort: String
    let guestTimeout = 60.0

    init(manager: VMManager, profile: String, imageDir: String, ports: Int) {
        self.manager = manager
        self.profile = profile
        self.imageDir = imageDir
        self.watcher = HeartbeatWatcher(path: "/dev/null")
        rawDiskPort = "hp\(ports - 1)"
        rawNICPort = "hp\(ports - 2)"
    }

    // MARK: VM

    /// Boots (or re-boots) the VM and waits for its first heartbeat.
    func boot() async -> Heartbeat {
        let serial = manager.stateRoot + "/vms/\(name)/serial.log"
        let start = monotonicNanoseconds()
        do {
            _ = try await manager.up(UpRequest(profile: profile, name: name, accel: .tcg))
        } catch {
            fail("up \(profile): \(error)")
        }
        watcher = HeartbeatWatcher(path: serial)
        watcher.skipToEnd()
        guard let (beat, _) = await watcher.wait(timeout: 120, until: { _ in true }) else {
            fail("no heartbeat from the guest within 120 s (see \(serial))")
        }
        note("hotplug: guest up in \(decimal(seconds(since: start))) s: cpus=\(beat.cpus) disks=\(beat.disks) nics=\(beat.nics)")
        return beat
    }

    func destroy() async {
        let start = monotonicNanoseconds()
        defer { note("hotplug: VM removed in \(decimal(seconds(since: start))) s") }
        do { try await manager.remove(name, force: true) } catch { note("hotplug: rm \(name): \(error)") }
    }

    // MARK: Raw QMP

    @discardableResult
    func qmp(_ command: String, _ arguments: JSONObject?) async -> JSONValue {
        do {
            return try await manager.qmp(name, command: command, arguments: arguments)
        } catch {
            fail("\(command) \(arguments.map { JSONValue.object($0).compactText } ?? ""): \(error)")
        }
    }

    /// device_del, then waits for QEMU's DEVICE_DELETED (the guest released it).
    func rawUnplug(_ id: String) async {
        let events = await manager.events(vm: name, history: 0)
        await qmp("device_del", ["id": .string(id)])
        let deadline = monotonicNanoseconds() + UInt64(guestTimeout * 1e9)
        let deleted = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await event in events where event.name == .qmp("DEVICE_DELETED") {
                    if event.data?["device"]?.stringValue == id { return true }
                }
                return false
            }
            group.addTask {
                while monotonicNanoseconds() < deadline {
                    do { try await Task.sleep(for: .milliseconds(50)) } catch { break }
                }
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !deleted { fail("guest did not release \(id) within \(guestTimeout) s") }
    }

    /// Retries a delete that QEMU may refuse for a moment after the unplug.
    func rawDelete(_ command: String, _ arguments: JSONObject) async {
        for attempt in 1...20 {
            do {
                _ = try await manager.qmp(name, command: command, arguments: arguments)
                return
            } catch {
                if attempt == 20 { fail("\(command): \(error)") }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    // MARK: Timing

    /// Runs `operation`, then waits until a heartbeat satisfies `visible`.
    func time(_ device: String, _ method: HotplugMethod, operation: () async -> Void,
              visible: (Heartbeat) -> Bool) async {
        // The guest prints a heartbeat every ~0.5 s. Issuing right after the previous wait ended (i.e. right after a
        // heartbeat) would lock every operation to the same phase of that cycle; a random delay spreads it out.
        try? await Task.sleep(for: .milliseconds(Int.random(in: 0..<500)))
        watcher.skipToEnd()
        let start = monotonicNanoseconds()
        await operation()
        let returned = Double(monotonicNanoseconds() - start) / 1e6
        guard let (_, seen) = await watcher.wait(timeout: guestTimeout, until: visible) else {
            fail("\(device) \(method.rawValue): the guest did not show it within \(guestTimeout) s")
        }
        let shown = Double(seen - start) / 1e6
        samples.append(HotplugSample(device: device, method: method, returned: returned, visible: shown))
        note("hotplug: \(device) \(method.rawValue): returned \(decimal(returned)) ms, visible \(decimal(shown)) ms")
    }

    func waitUntil(_ what: String, since start: UInt64, _ condition: (Heartbeat) -> Bool) async {
        watcher.skipToEnd()
        guard await watcher.wait(timeout: guestTimeout, until: condition) != nil else {
            fail("the guest did not show \(what) within \(guestTimeout) s")
        }
        note("hotplug:   \(what) after \(decimal(seconds(since: start))) s (not timed)")
    }

    // MARK: Disks

    func disk(_ method: HotplugMethod, base: Heartbeat) async {
        rawCounter += 1
        let n = rawCounter
        let image = imageDir + "/" + (method == .corral ? "a.qcow2" : "b.qcow2")
        let grown: (Heartbeat) -> Bool = { $0.disks.count > base.disks.count }
        var removal: UInt64 = 0
        switch method {
        case .corral:
            let id = "bench\(n)"
            await time("disk", method, operation: {
                do {
                    _ = try await manager.addDisk(name, DiskAddRequest(id: id, file: image, format: .qcow2))
                } catch {
                    fail("addDisk: \(error)")
                }
            }, visible: grown)
            removal = monotonicNanoseconds()
            do {
                _ = try await manager.removeDisk(name, id: id, deleteImage: false)
            } catch {
                fail("removeDisk: \(error)")
            }
        case .raw:
            // What DeviceProps builds for a qcow2 disk with cache: none, written out by hand.
            let cache: JSONValue = ["direct": true, "no-flush": false]
            let file = "rawf\(n)", format = "rawq\(n)", device = "rawdisk\(n)"
            await time("disk", method, operation: {
                await qmp("blockdev-add", [
                    "driver": "file", "node-name": .string(file), "filename": .string(image), "aio": "threads",
                    "cache": cache, "discard": "ignore", "read-only": false,
                ])
                await qmp("blockdev-add", [
                    "driver": "qcow2", "node-name": .string(format), "file": .string(file), "cache": cache,
                    "discard": "ignore", "read-only": false,
                ])
                await qmp("device_add", [
                    "driver": "virtio-blk-pci", "id": .string(device), "bus": .string(rawDiskPort),
                    "drive": .string(format), "serial": .string("raw\(n)"), "write-cache": "on",
                ])
            }, visible: grown)
            removal = monotonicNanoseconds()
            await rawUnplug(device)
            await rawDelete("blockdev-del", ["node-name": .string(format)])
            await rawDelete("blockdev-del", ["node-name": .string(file)])
        }
        await waitUntil("disk removed", since: removal) { $0.disks.count == base.disks.count }
    }

    // MARK: NICs

    func nic(_ method: HotplugMethod, base: Heartbeat) async {
        rawCounter += 1
        let n = rawCounter
        let grown: (Heartbeat) -> Bool = { $0.nics.count > base.nics.count }
        var removal: UInt64 = 0
        switch method {
        case .corral:
            let id = "bench\(n)"
            await time("nic", method, operation: {
                do {
                    _ = try await manager.addNIC(name, NICAddRequest(id: id, mode: .user))
                } catch {
                    fail("addNIC: \(error)")
                }
            }, visible: grown)
            removal = monotonicNanoseconds()
            do {
                _ = try await manager.removeNIC(name, id: id)
            } catch {
                fail("removeNIC: \(error)")
            }
        case .raw:
            let netdev = "rawnet\(n)", device = "rawnic\(n)"
            let mac = "52:54:00:be:00:" + String(format: "%02x", n % 256)
            await time("nic", method, operation: {
                await qmp("netdev_add", ["type": "user", "id": .string(netdev)])
                await qmp("device_add", [
                    "driver": "virtio-net-pci", "id": .string(device), "bus": .string(rawNICPort),
                    "netdev": .string(netdev), "mac": .string(mac),
                ])
            }, visible: grown)
            removal = monotonicNanoseconds()
            await rawUnplug(device)
            await rawDelete("netdev_del", ["id": .string(netdev)])
        }
        await waitUntil("NIC removed", since: removal) { $0.nics.count == base.nics.count }
    }

    // MARK: vCPUs

    func cpu(_ method: HotplugMethod, online: Int) async {
        rawCounter += 1
        let n = rawCounter
        let grown: (Heartbeat) -> Bool = { $0.cpus > online }
        switch method {
        case .corral:
            await time("vcpu", method, operation: {
                do {
                    _ = try await manager.setCPUs(name, count: online + 1)
                } catch {
                    fail("setCPUs: \(error)")
                }
            }, visible: grown)
        case .raw:
            await time("vcpu", method, operation: {
                let reply = await qmp("query-hotpluggable-cpus", nil)
                // The free slot with the lowest core id: plugging out of order freezes the guest (docs/test-guest.md).
                let free = (reply.arrayValue ?? []).filter { $0["qom-path"] == nil }.min {
                    ($0["props"]?["core-id"]?.intValue ?? 0) < ($1["props"]?["core-id"]?.intValue ?? 0)
                }
                guard let slot = free, let type = slot["type"]?.stringValue, let props = slot["props"]?.objectValue
                else { fail("no free vCPU slot") }
                var device: JSONObject = ["driver": .string(type), "id": .string("rawcpu\(n)")]
                for (key, value) in props where key != "node-id" { device[key] = value }
                await qmp("device_add", device)
            }, visible: grown)
        }
    }
}

func runHotplugBench(_ arguments: [String]) async {
    let flags = Flags(arguments) { usage() }
    guard let stateDir = flags.string("--state-dir"), let profilePath = flags.string("--profile") else { usage() }
    let rounds = flags.int("--rounds", default: 8)
    let cpuVMs = flags.int("--cpu-vms", default: 4)

    let profile: Profile
    do { profile = try ProfileLoader().load(path: profilePath) } catch { fail("\(profilePath): \(error)") }
    guard profile.hotplug.slots >= 4 else { fail("\(profilePath): needs hotplug.slots ≥ 4") }
    guard profile.cpu.max > profile.cpu.count else { fail("\(profilePath): needs cpu.max > cpu.count") }

    var logger = Logger(label: "corral-bench")
    logger.logLevel = .error
    let manager: VMManager
    do {
        manager = try await VMManager.open(
            stateRoot: stateDir, logger: logger,
            options: DaemonOptions(autoBalloon: false, manageKSM: false, cgroupRoot: nil))
    } catch {
        fail("cannot open \(stateDir): \(error)")
    }
    let imageDir = stateDir + "/images"
    do { try FileManager.default.createDirectory(atPath: imageDir, withIntermediateDirectories: true) } catch {
        fail("\(imageDir): \(error)")
    }
    for image in ["a.qcow2", "b.qcow2"] {
        do {
            let result = try await ProcessLauncher.run("qemu-img", ["create", "-q", "-f", "qcow2", imageDir + "/" + image, "16M"])
            guard result.status.isSuccess else { fail("qemu-img: \(result.output)") }
        } catch {
            fail("qemu-img: \(error)")
        }
    }

    let bench = HotplugBench(manager: manager, profile: profilePath, imageDir: imageDir, ports: profile.hotplug.slots)
    var base = await bench.boot()
    for round in 0..<rounds {
        let order: [HotplugMethod] = round % 2 == 0 ? [.corral, .raw] : [.raw, .corral]
        for method in order { await bench.disk(method, base: base) }
        for method in order { await bench.nic(method, base: base) }
    }

    // vCPUs: each VM takes max − count plugs, alternating A and B; the next VM starts with the other method.
    let plugsPerVM = profile.cpu.max - profile.cpu.count
    var next: HotplugMethod = .corral
    for vm in 0..<max(1, cpuVMs) {
        if vm > 0 {
            await bench.destroy()
            base = await bench.boot()
            next = vm % 2 == 0 ? .corral : .raw
        }
        var online = base.cpus
        for _ in 0..<plugsPerVM {
            await bench.cpu(next, online: online)
            online += 1
            next = next == .corral ? .raw : .corral
        }
    }
    await bench.destroy()
    await manager.shutdown()

    print("| device | n (A/B) | A returned ms | B returned ms | A−B returned ms | A visible ms | B visible ms | A−B visible ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for device in ["disk", "nic", "vcpu"] {
        let a = bench.samples.filter { $0.device == device && $0.method == .corral }
        let b = bench.samples.filter { $0.device == device && $0.method == .raw }
        guard let ar = Spread(a.map(\.returned)), let br = Spread(b.map(\.returned)),
              let av = Spread(a.map(\.visible)), let bv = Spread(b.map(\.visible))
        else { continue }
        print("| \(device) | \(a.count)/\(b.count) | \(ar.cell) | \(br.cell) | \(decimal(ar.median - br.median)) "
            + "| \(av.cell) | \(bv.cell) | \(decimal(av.median - bv.median)) |")
    }
    print("")
    print("Cells: median (min–max) over the rounds. *returned*: until the VMManager call (A) or the last hand-written "
        + "QMP command (B) returned. *visible*: until a `CORRAL-HB` line showed the device (polled every 5 ms). The guest "
        + "prints one every ~0.5 s, so *visible* carries 0–0.5 s of quantisation; each operation starts after a random "
        + "0–0.5 s delay so that this is spread evenly over A and B rather than locked to one phase.")
}
