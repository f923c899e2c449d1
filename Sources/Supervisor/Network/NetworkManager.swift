import CorralCore
import CorralModel
import CSupport
import Foundation
import Logging

/// Managed networks: each is a bridge with the gateway address (rtnetlink), dnsmasq for DHCP and DNS (one
/// supervised process per network, restarted when it dies), and with NAT an nftables table corral owns. Stored in
/// `STATE/networks/NAME/network.json` and made real again when the daemon starts; like QEMU, dnsmasq outlives the
/// daemon and is found again by its pid file.
public actor NetworkManager {
    struct Managed {
        var spec: NetworkSpec
        var dnsmasq: ProcessHandle?
        var monitor: Task<Void, Never>?
        var problem: String?
        var restarts: [ContinuousClock.Instant] = []
    }

    let stateRoot: String
    let logger: Logger
    private var networks: [String: Managed] = [:]
    private var shuttingDown = false

    init(stateRoot: String, logger: Logger) {
        self.stateRoot = stateRoot
        self.logger = logger
    }

    /// Loads every stored network and makes it real (bridge, NAT, dnsmasq); a network that cannot be is kept and
    /// reported `degraded` with the reason.
    static func open(stateRoot: String, logger: Logger) async -> NetworkManager {
        let manager = NetworkManager(stateRoot: stateRoot, logger: logger)
        await manager.loadExisting()
        return manager
    }

    private func loadExisting() async {
        let folder = stateRoot + "/networks"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
            let files = NetworkPlan.Files(stateRoot: stateRoot, name: name)
            guard let text = (try? FileOps.readText(files.spec)) ?? nil,
                let spec = try? JSONDecoder().decode(NetworkSpec.self, from: Data(text.utf8))
            else {
                logger.warning("skipping a network folder without a readable network.json", metadata: ["folder": "\(files.folder)"])
                continue
            }
            networks[name] = Managed(spec: spec)
            do throws(ControlError) { try await realize(name) } catch {
                networks[name]?.problem = error.message
                logger.error("network not up", metadata: ["network": "\(name)", "error": "\(error.message)"])
            }
        }
    }

    // MARK: Operations

    func create(_ request: NetworkCreateRequest) async throws(ControlError) -> NetworkInfo {
        do { try request.validate() } catch { throw ControlError(error) }
        guard let spec = request.resolved() else { throw .invalidRequest("--subnet: '\(request.subnet)' is not a subnet") }
        let routes = NetworkPlan.routes(procNetRoute: ((try? FileOps.readText("/proc/net/route")) ?? nil) ?? "")
        if let conflict = NetworkPlan.conflict(spec, existing: networks.values.map(\.spec), routes: routes) {
            throw .conflict(conflict)
        }
        if corral_if_index(spec.bridge) > 0 {
            throw .conflict("an interface named \(spec.bridge) already exists on this host (the bridge network \(spec.name) would use)")
        }
        let files = NetworkPlan.Files(stateRoot: stateRoot, name: spec.name)
        do {
            try FileOps.makeFolder(files.folder)
            try FileOps.writeAtomically(Array(try JSONEncoder.corral.encode(spec)), to: files.spec)
        } catch {
            FileOps.removeTree(files.folder)
            throw .internalError("cannot write \(files.spec): \(error)")
        }
        networks[spec.name] = Managed(spec: spec)
        do {
            try await realize(spec.name)
        } catch {
            // Nothing left behind: no dnsmasq, no table, no bridge, no folder.
            await tearDown(spec.name)
            throw error
        }
        return info(spec.name, vms: [])
    }

    func remove(_ name: String, usedBy vms: [String]) async throws(ControlError) {
        guard networks[name] != nil else { throw notFound(name) }
        guard vms.isEmpty else {
            throw .conflict("network \(name) is used by \(vms.joined(separator: ", ")): remove their NICs or the VMs first")
        }
        await tearDown(name)
    }

    func info(_ name: String, vms: [String]) -> NetworkInfo {
        let managed = networks[name]!
        let spec = managed.spec
        var problem = managed.problem
        if problem == nil, corral_if_index(spec.bridge) <= 0 { problem = "bridge \(spec.bridge) is missing" }
        if problem == nil, managed.dnsmasq?.exitStatus != nil || managed.dnsmasq == nil { problem = "dnsmasq is not running" }
        return NetworkInfo(name: name, bridge: spec.bridge, subnet: spec.subnet.description,
                           gateway: spec.gateway.description, nat: spec.nat, dhcpRange: spec.dhcpRange.description,
                           dnsmasqPid: managed.dnsmasq?.exitStatus == nil ? managed.dnsmasq?.pid : nil,
                           state: problem == nil ? "up" : "degraded", problem: problem, vms: vms,
                           leases: leases(name))
    }

    var names: [String] { networks.keys.sorted() }

    func exists(_ name: String) -> Bool { networks[name] != nil }

    /// The network's current DHCP leases: MAC → IPv4 address.
    func leases(_ name: String) -> [String: String] {
        let text = (try? FileOps.readText(NetworkPlan.Files(stateRoot: stateRoot, name: name).leases)) ?? nil
        return DHCPLeases.parse(text ?? "")
    }

    /// Stops supervising dnsmasq without stopping it (daemon shutdown).
    func shutdown() {
        shuttingDown = true
        for name in networks.keys {
            networks[name]?.monitor?.cancel()
            networks[name]?.monitor = nil
        }
    }

    func notFound(_ name: String) -> ControlError {
        .notFound("no network named \(name)\(networks.isEmpty ? "" : " (known: \(names.joined(separator: ", ")))")")
    }

    // MARK: Making it real

    /// Bridge with the gateway address, up; the NAT table; dnsmasq (found again, or started).
    private func realize(_ name: String) async throws(ControlError) {
        guard let spec = networks[name]?.spec else { return }
        let files = NetworkPlan.Files(stateRoot: stateRoot, name: name)
        func text(_ code: Int32) -> String { String(cString: strerror(-code)) }
        if corral_if_index(spec.bridge) <= 0 {
            let made = corral_bridge_create(spec.bridge)
            guard made == 0 || made == -EEXIST else { throw .refused("cannot create bridge \(spec.bridge): \(text(made))") }
        }
        let added = corral_addr_add4(spec.bridge, spec.gateway.value, Int32(spec.subnet.prefix))
        guard added == 0 || added == -EEXIST else {
            throw .refused("cannot give \(spec.bridge) the address \(spec.gateway)/\(spec.subnet.prefix): \(text(added))")
        }
        let up = corral_if_up(spec.bridge)
        guard up == 0 else { throw .refused("cannot bring \(spec.bridge) up: \(text(up))") }
        if spec.nat { try await applyNAT(spec, files: files) }
        if let found = Self.runningDnsmasq(files, bridge: spec.bridge) {
            supervise(name, found)
        } else {
            supervise(name, try await startDnsmasq(spec, files: files))
        }
        networks[name]?.problem = nil
    }

    private func applyNAT(_ spec: NetworkSpec, files: NetworkPlan.Files) async throws(ControlError) {
        guard let nft = HostProbe.findExecutable("nft") else {
            throw .refused("--nat needs nftables: install the nftables package (nft not found)")
        }
        do {
            try FileOps.writeAtomically(NetworkPlan.natRuleset(spec), to: files.ruleset)
        } catch {
            throw .internalError("cannot write \(files.ruleset): \(error)")
        }
        let result: (status: ExitStatus, output: String)
        do { result = try await ProcessLauncher.run(nft, ["-f", files.ruleset]) } catch {
            throw .refused("cannot run nft: \(error.description)")
        }
        guard result.status.isSuccess else {
            throw .refused("nft refused the NAT rules of \(spec.name): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        // Routing between the bridge and the rest is what NAT is for (this network namespace's setting).
        let fd = Glibc.open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = write(fd, "1\n", 2)
            close(fd)
        }
    }

    /// Starts dnsmasq and waits until it runs (its pid file appears) or fails (its own words).
    private func startDnsmasq(_ spec: NetworkSpec, files: NetworkPlan.Files) async throws(ControlError) -> ProcessHandle {
        guard let dnsmasq = HostProbe.findExecutable("dnsmasq") else {
            throw .refused("managed networks need dnsmasq: install the dnsmasq package (dnsmasq not found)")
        }
        FileOps.remove(files.pidFile)
        var spec0 = LaunchSpec(executable: dnsmasq, arguments: NetworkPlan.dnsmasqArguments(spec, files: files),
                               outputFile: files.log, detach: true)
        spec0.path = dnsmasq
        let process: ProcessHandle
        do { process = try ProcessLauncher.launch(spec0) } catch { throw .refused(error.description) }
        for _ in 0..<100 {
            if let status = process.exitStatus {
                let output = ((try? FileOps.readText(files.log)) ?? nil)?
                    .split(separator: "\n").suffix(3).joined(separator: " | ") ?? ""
                throw .refused("dnsmasq for network \(spec.name) \(status): \(output)")
            }
            if FileOps.exists(files.pidFile) { return process }
            try? await Task.sleep(for: .milliseconds(50))
        }
        await process.terminate(grace: .seconds(1))
        throw .refused("dnsmasq for network \(spec.name) did not start within 5 s (see \(files.log))")
    }

    /// The dnsmasq a previous daemon started for this network, if it still runs.
    static func runningDnsmasq(_ files: NetworkPlan.Files, bridge: String) -> ProcessHandle? {
        guard let text = (try? FileOps.readText(files.pidFile)) ?? nil,
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            VMLauncher.commandLine(of: pid).contains("--interface=\(bridge) ")
        else { return nil }
        return ProcessHandle.adopt(pid: pid)
    }

    /// Watches dnsmasq; when it dies (and the daemon is not shutting down) it is started again, at most 5 times a
    /// minute.
    private func supervise(_ name: String, _ process: ProcessHandle) {
        networks[name]?.monitor?.cancel()
        networks[name]?.dnsmasq = process
        networks[name]?.monitor = Task { [weak self] in
            guard let status = await process.waitForExitOrCancel() else { return }
            await self?.dnsmasqExited(name, pid: process.pid, status: status)
        }
    }

    private func dnsmasqExited(_ name: String, pid: Int32, status: ExitStatus) async {
        guard !shuttingDown, let managed = networks[name], managed.dnsmasq?.pid == pid else { return }
        let now = ContinuousClock.now
        let recent = managed.restarts.filter { now - $0 < .seconds(60) }
        logger.warning("dnsmasq exited", metadata: ["network": "\(name)", "status": "\(status)"])
        guard recent.count < 5 else {
            networks[name]?.problem = "dnsmasq keeps exiting (\(status)); not restarted again"
            return
        }
        networks[name]?.restarts = recent + [now]
        try? await Task.sleep(for: .milliseconds(200))
        do throws(ControlError) {
            supervise(name, try await startDnsmasq(managed.spec, files: NetworkPlan.Files(stateRoot: stateRoot, name: name)))
        } catch {
            networks[name]?.problem = error.message
        }
    }

    /// Undoes everything a network is: dnsmasq stopped, the NAT table deleted, the bridge deleted, its folder gone.
    private func tearDown(_ name: String) async {
        guard let managed = networks.removeValue(forKey: name) else { return }
        managed.monitor?.cancel()
        if let dnsmasq = managed.dnsmasq { await dnsmasq.terminate(grace: .seconds(2)) }
        let files = NetworkPlan.Files(stateRoot: stateRoot, name: name)
        if let dnsmasq = Self.runningDnsmasq(files, bridge: managed.spec.bridge) { await dnsmasq.terminate(grace: .seconds(2)) }
        if managed.spec.nat, let nft = HostProbe.findExecutable("nft") {
            _ = try? await ProcessLauncher.run(nft, ["delete", "table", "ip", NetworkName.nftTable(name)])
        }
        _ = corral_link_delete(managed.spec.bridge)
        FileOps.removeTree(files.folder)
    }
}
