// `corral-bench overcommit-host --state-dir DIR --profile PROFILE --count N --ready-file F --stop-file F
//                               [--host-root R] [--ksm] [--auto-balloon] [--policy-interval S]`
//
// scripts/bench-overcommit's stand-in for `corral daemon` when the daemon has no --host-root/--no-ksm/
// --no-auto-balloon flags yet: the same `VMManager` and policy loop in-process, with `DaemonOptions` set from the
// flags. Starts N VMs from PROFILE (named oc0…), writes their QEMU pids to the ready file, keeps supervising
// until the stop file appears, then kills and removes them. The script does the measuring (PSS, KSM counters,
// heartbeats), so it is the same with either host.

import Foundation
import CorralModel
import Logging
import CorralControl
import CorralCore
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

func runOvercommitHost(_ arguments: [String]) async {
    let flags = Flags(arguments, switches: ["--ksm", "--auto-balloon"]) { usage() }
    guard let stateDir = flags.string("--state-dir"), let profile = flags.string("--profile"),
          let readyFile = flags.string("--ready-file"), let stopFile = flags.string("--stop-file")
    else { usage() }
    let count = flags.int("--count", default: 4)
    let interval = flags.double("--policy-interval", default: 5)

    var logger = Logger(label: "corral-bench")
    logger.logLevel = .warning
    let options = DaemonOptions(policyInterval: .milliseconds(Int(interval * 1000)),
                                autoBalloon: flags.has("--auto-balloon"), manageKSM: flags.has("--ksm"),
                                hostRoot: flags.string("--host-root") ?? "", cgroupRoot: nil)
    let manager: VMManager
    do {
        manager = try await VMManager.open(stateRoot: stateDir, logger: logger, options: options)
    } catch {
        fail("cannot open \(stateDir): \(error)")
    }
    let supervision = Task { await manager.run() }

    var names: [String] = []
    var pids: [Int32] = []
    for index in 0..<count {
        let name = "oc\(index)"
        do {
            let status = try await manager.up(UpRequest(profile: profile, name: name, accel: .tcg))
            names.append(name)
            if let pid = status.pid { pids.append(Int32(pid)) }
        } catch {
            note("overcommit-host: up \(name): \(error)")
            break
        }
    }
    let text = pids.map(String.init).joined(separator: "\n") + "\n"
    do {
        try text.write(toFile: readyFile + ".tmp", atomically: false, encoding: .utf8)
        rename(readyFile + ".tmp", readyFile)
    } catch {
        fail("\(readyFile): \(error)")
    }

    while access(stopFile, F_OK) != 0 {
        try? await Task.sleep(for: .milliseconds(200))
    }
    for name in names {
        do { try await manager.remove(name, force: true) } catch { note("overcommit-host: rm \(name): \(error)") }
    }
    supervision.cancel()
    await supervision.value
}
