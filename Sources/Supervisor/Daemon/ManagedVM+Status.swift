import CorralCore
import CorralModel
import Foundation
import Profiles
import QEMUCommand

/// What `corral status` shows of a VM: its live config, QEMU's figures, the guest's addresses and its confinement.
extension ManagedVM {
    func status() async -> VMStatus {
        let profile = config.profile
        var balloon: UInt64?
        if let vm = running, profile.memory.balloon != nil {
            balloon = try? await vm.qmp.queryBalloon(timeout: .seconds(2))
        }
        let disks = config.allDisks
        let nics = profile.nics + config.hotplugged.nics.map(\.nic)
        let agentAnswer = await run?.agent?.answer()
        var guestInterfaces: [GuestInterface]?
        if case .interfaces(let interfaces) = agentAnswer { guestInterfaces = interfaces }
        let now = Date().timeIntervalSince1970
        let up = running != nil && (state == .running || state == .paused)
        return VMStatus(
            name: name, state: state, pid: running?.process.pid, accel: record.accel.rawValue,
            uptimeSeconds: up ? record.startedAt.map { max(0, now - $0) } : nil,
            cpus: .init(online: config.hotplugged.onlineCPUs ?? profile.cpu.count, max: profile.cpu.max),
            memory: .init(
                sizeBytes: profile.memory.size.bytes + config.hotplugged.memory.reduce(0) { $0 + $1.size.bytes },
                maxBytes: (profile.memory.max ?? profile.memory.size).bytes, balloonBytes: balloon),
            disks: disks.map {
                .init(id: $0.id, file: $0.file, format: $0.format.rawValue, readonly: $0.readonly, bus: $0.bus.rawValue)
            },
            nics: nics.map { nic in
                let mac = nic.mac ?? DeviceProps.stableMAC(vmName: name, nicID: nic.id)
                let lease = nic.network.flatMap { leases(of: $0)[mac.lowercased()] }
                let (addresses, source) = GuestAddresses.forNIC(mac: mac, agent: guestInterfaces, lease: lease)
                return .init(id: nic.id, mac: mac, mode: nic.mode.rawValue, network: nic.network,
                             addresses: addresses, addressSource: source?.rawValue)
            },
            qmpSocket: paths.qmpSocket, serialLog: paths.serialLog,
            restartCount: lifecycle.restartCount, lastExit: lifecycle.lastExit,
            unplugPending: pendingUnplugs.keys.sorted(),
            problem: uncommittedIncoming ?? (run?.monitorLost == true
                ? "the QMP monitor was lost while QEMU runs (see qmp.log); stop or kill the VM to recover" : nil),
            migration: outgoing.map { OutgoingMigrationInfo(to: $0.destination, progress: $0.progress) },
            agent: agentAnswer?.label,
            uid: record.uid,
            confinement: confinementSummary,
            hostdevs: hostDeviceInfo,
            cpuSeconds: running.flatMap { Self.cpuSeconds(pid: $0.process.pid) },
            display: profile.display.map { .init(vga: $0.vga.rawValue, vnc: $0.vnc) })
    }

    /// QEMU's CPU time so far (`/proc/PID/stat`); nil when it cannot be read (the process just went).
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let line = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return ProcessStat.cpuSeconds(statLine: line, ticksPerSecond: sysconf(Int32(_SC_CLK_TCK)))
    }

    var confinementSummary: String {
        guard let uid = record.uid else { return "none: QEMU runs as root (--qemu-user root)" }
        return "uid \(uid), no capabilities, no_new_privs, seccomp sandbox, descriptors only, " + deviceRulesSummary
    }

    /// A managed network's DHCP leases (MAC → address), read from its lease file.
    func leases(of network: String) -> [String: String] {
        let text = (try? FileOps.readText(NetworkPlan.Files(stateRoot: paths.stateRoot, name: network).leases)) ?? nil
        return DHCPLeases.parse(text ?? "")
    }
}
