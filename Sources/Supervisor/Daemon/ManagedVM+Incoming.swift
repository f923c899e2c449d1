import CorralControl
import CorralCore
import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import QMP

/// Live migration, destination side: QEMU waits with `-incoming defer -S`; the guest runs here only
/// once the source says it is done (`commitIncoming`).
extension ManagedVM {
    func setOnIncomingLost(_ handler: @escaping @Sendable (String) async -> Void) {
        onIncomingLost = handler
    }

    /// Sets capabilities, starts listening for the stream (and, with storage, the NBD exports) on `listen`'s host;
    /// `listen.port` is 0, QEMU picks the stream's port.
    func listenForIncoming(_ request: IncomingRequest, listen: HostPort,
                           tlsDirectory: String) async throws(ControlError) -> IncomingReply {
        guard let vm = running else { throw .internalError("the incoming QEMU is not running") }
        let qmp = vm.qmp
        func send(_ step: QMPStep) async throws(ControlError) {
            do { try await qmp.send(step) } catch {
                throw .qmpFailed(error, command: step.command)
            }
        }
        var tlsID: String?
        if request.options.tls {
            guard FileOps.exists(tlsDirectory + "/server-cert.pem") else {
                throw .refused("--tls: this daemon has no certificates in \(tlsDirectory)")
            }
            tlsID = MigrationPlan.tlsCredsID
            var folder = tlsDirectory
            if let uid = record.uid {
                // Removed when this QEMU ends (`endRun`) or is committed.
                do { folder = try TLSHandOver.stage(tlsDirectory, pid: vm.process.pid, uid: uid) } catch {
                    throw .internalError(error.description)
                }
            }
            try await send(MigrationPlan.objectAdd(
                MigrationPlan.tlsCredsObject(id: MigrationPlan.tlsCredsID, endpoint: .server, dir: folder)))
        }
        var reply = IncomingReply(uri: "")
        if request.options.withStorage {
            let nbd = try Self.freeTCPPort(on: listen)
            try await send(MigrationPlan.nbdServerStart(nbd, tlsCredsID: tlsID))
            let disks = allDisks().map(MigrationDisk.init)
            for step in MigrationPlan.exportDisks(disks) { try await send(step) }
            reply.nbdHost = nbd.host
            reply.nbdPort = nbd.port
            for disk in allDisks() { reply.exports[disk.id] = MigrationDisk(disk).exportName }
        }
        for step in MigrationPlan.destinationSetup(options: request.options, listen: listen, tlsCredsID: tlsID) {
            try await send(step)
        }
        // Port 0: QEMU picked one; query-migrate tells which.
        let info: JSONValue
        do { info = try await qmp.queryMigrate() } catch { throw .qmpFailed(error) }
        guard let address = info["socket-address"]?[0],
            let port = address["port"]?.stringValue.flatMap({ Int($0) }) ?? address["port"]?.intValue.map({ Int($0) }),
            let stream = try? listen.with(port: port)
        else { throw .internalError("QEMU did not report its incoming migration port") }
        reply.uri = stream.migrationURI
        await hub.publish(vm: name, .incomingReady, ["uri": .string(reply.uri)])
        return reply
    }

    /// The source finished (or, for postcopy, switched over): run the guest here and own it.
    func commitIncoming() async throws(ControlError) {
        guard state == .incoming, let vm = running else {
            throw .conflict("cannot commit \(name): it is \(state.rawValue) (commit needs incoming)")
        }
        // Precopy: wait until this side has loaded the whole state (usually already so when the source's
        // `completed` arrives). Subscribe first, then ask once, so a MIGRATION event in between is not missed.
        let events = vm.qmp.events(["MIGRATION"])
        let progress = (try? await vm.qmp.migrationProgress(timeout: .seconds(5))) ?? MigrationProgress()
        if let status = try Self.incomingSettled(progress.status, name: name), !status {
            try await Self.waitForIncomingEnd(events, name: name, timeout: .seconds(30))
        }
        _ = try? await vm.qmp.send(MigrationPlan.nbdServerStop())
        do { try await vm.qmp.send(MigrationPlan.resume()) } catch { throw .qmpFailed(error) }
        // The guest runs here now: tell the network (best effort; a failure changes nothing about who owns it).
        if (try? await vm.qmp.send(MigrationPlan.announce())) == nil {
            logger.warning("announce-self failed after the migration; switches learn the new port when the guest speaks")
        }
        record.startedAt = Date().timeIntervalSince1970
        // The guest is this host's now, and so are its disks.
        claimDisks()
        TLSHandOver.remove(pid: vm.process.pid)
        incomingDeadline?.cancel()
        incomingDeadline = nil
        uncommittedIncoming = nil
        await feed(.incomingCommitted)
    }

    func armIncomingDeadline(_ timer: Task<Void, Never>) {
        incomingDeadline?.cancel()
        incomingDeadline = timer
    }

    /// Past the deadline without a commit: `IncomingDeadline` decides from how far the stream got. `.remove` has
    /// already stopped this QEMU (the caller removes the folder); `.keep` leaves it paused with a `problem`.
    func settleUncommitted(after deadline: Duration) async -> IncomingDeadline.Decision? {
        guard state == .incoming, let vm = running else { return nil }
        let progress = try? await vm.qmp.migrationProgress(timeout: .seconds(5))
        let decision = IncomingDeadline.decide(status: progress?.status, queried: progress != nil)
        let reached = progress.map { $0.rawStatus ?? $0.status?.rawValue ?? "no migration" } ?? "unknown: QEMU did not answer"
        switch decision {
        case .wait:
            break
        case .keep:
            uncommittedIncoming = "the migration's source did not commit this copy within \(deadline) (stream: \(reached)); "
                + "if the source no longer has the guest this paused copy may be the only one, else "
                + "`corral rm --force \(name)` removes it"
            logger.warning("incoming migration not committed in time; kept", metadata: ["vm": "\(name)"])
            await hub.publish(vm: name, .migrationFailed, ["reason": .string(uncommittedIncoming ?? "")])
        case .remove:
            let reason = "the migration's source did not commit this copy within \(deadline) and the guest never "
                + "fully arrived (stream: \(reached)); the source keeps it, this copy is removed"
            await hub.publish(vm: name, .migrationFailed, ["reason": .string(reason)])
            await abortIncoming()
        }
        return decision
    }

    /// Whether an incoming migration in `status` can be committed now (true), needs waiting (false), or
    /// failed (throws). nil status (no migration state): nothing to wait for.
    static func incomingSettled(_ status: MigrationStatus?, name: String) throws(ControlError) -> Bool? {
        switch status {
        case .completed?, .postcopyActive?, nil: return true
        case .failed?, .cancelled?: throw .qmpState("the incoming migration of \(name) \(status!.rawValue)", command: "query-migrate")
        default: return false
        }
    }

    /// Waits for the destination's own MIGRATION event that ends the incoming stream (or switches to postcopy).
    static func waitForIncomingEnd(_ events: AsyncStream<QMPEvent>, name: String,
                                   timeout: Duration) async throws(ControlError) {
        let outcome: Result<Void, ControlError>? = await withTaskGroup(of: Result<Void, ControlError>?.self) { group in
            group.addTask {
                for await event in events {
                    let status = event.data["status"]?.stringValue.flatMap(MigrationStatus.init(rawValue:))
                    do throws(ControlError) {
                        if try incomingSettled(status, name: name) == true, status != nil { return .success(()) }
                    } catch {
                        return .failure(error)
                    }
                }
                return .failure(.qmpState("the incoming QEMU of \(name) went away before the migration completed"))
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        switch outcome {
        case .success?: return
        case .failure(let error)?: throw error
        case nil: throw .qmpState("the incoming migration of \(name) did not complete within \(timeout)")
        }
    }

    /// Abort: QEMU goes; the caller removes the folder.
    func abortIncoming() async {
        await end(note: "incoming migration aborted")
    }

    /// `address`'s host with a TCP port the kernel considers free right now (bind to port 0, read it, close).
    /// IPv4, IPv6 or a name (its first address).
    static func freeTCPPort(on address: HostPort) throws(ControlError) -> HostPort {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(address.host, "0", &hints, &list)
        guard resolved == 0, let first = list?.pointee else {
            throw .refused("cannot listen on \(address.host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .internalError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard bind(fd, first.ai_addr, first.ai_addrlen) == 0 else {
            throw .refused("cannot listen on \(address.host): \(String(cString: strerror(errno)))")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw .internalError("getsockname(): \(String(cString: strerror(errno)))") }
        let networkOrder: in_port_t = withUnsafePointer(to: &bound) { storage in
            if Int32(storage.pointee.ss_family) == AF_INET6 {
                return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
            }
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }
        }
        do { return try address.with(port: Int(UInt16(bigEndian: networkOrder))) } catch {
            throw .internalError("free port for \(address.host): \(error.description)")
        }
    }
}
