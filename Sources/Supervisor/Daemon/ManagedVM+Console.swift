import CorralControl
import CorralModel
import Foundation
import UnixSockets

/// The serial console's one writer and the VNC clients: descriptors the API relays over WebSockets.
extension ManagedVM {
    func attachConsole(force: Bool) async throws(ControlError) -> ByteStreamLease {
        try check(.qmp)
        guard config.profile.serial == .log else {
            throw .conflict("\(name) has no serial port (serial: none in its profile)")
        }
        if let current = consoleSession {
            guard force else {
                throw .conflict("someone is attached to \(name)'s console; --force takes it over (corral console "
                    + "\(name) --follow only reads)")
            }
            // The other client's relay sees its socket end and closes its WebSocket.
            shutdown(current.fd, Int32(SHUT_RDWR))
            consoleSession = nil
            // QEMU's chardev takes the next client once it has seen the last one go.
            try? await Task.sleep(for: .milliseconds(100))
        }
        let socket: StreamSocket
        do { socket = try StreamSocket.connect(path: paths.consoleSocket) } catch {
            throw .conflict("\(name)'s console socket does not answer: \(error)")
        }
        let fd = dup(socket.descriptor)
        socket.close()
        guard fd >= 0 else { throw .internalError("dup: \(String(cString: strerror(errno)))") }
        let id = UInt64.random(in: 1...UInt64.max)
        consoleSession = ConsoleSession(id: id, fd: fd)
        logger.info("console attached", metadata: ["force": "\(force)"])
        return ByteStreamLease(fd: fd) { [weak self] in
            close(fd)
            Task { await self?.endConsoleSession(id) }
        }
    }

    func endConsoleSession(_ id: UInt64) {
        if consoleSession?.id == id { consoleSession = nil }
    }

    /// One end of a new socket pair goes to QEMU's VNC server (`getfd`, `add_client`), the other to the client.
    func openVNC() async throws(ControlError) -> ByteStreamLease {
        try check(.qmp)
        guard config.profile.display?.vnc == true else {
            throw .conflict("\(name) has no VNC display: give it one in its profile (display: { vga: std, vnc: true })")
        }
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .internalError("socketpair: \(String(cString: strerror(errno)))")
        }
        let fdName = "vnc-\(UInt32.random(in: 0...UInt32.max))"
        defer { close(pair[0]) }
        do {
            try await vm.qmp.getfd(fdName, pair[0], timeout: .seconds(5))
        } catch {
            close(pair[1])
            throw .qmpFailed(error, command: "getfd")
        }
        do {
            _ = try await vm.qmp.execute("add_client", ["protocol": "vnc", "fdname": .string(fdName), "skipauth": true],
                                         timeout: .seconds(5))
        } catch {
            try? await vm.qmp.closefd(fdName, timeout: .seconds(5))
            close(pair[1])
            throw .qmpFailed(error, command: "add_client")
        }
        let fd = pair[1]
        return ByteStreamLease(fd: fd) { close(fd) }
    }
}

/// The client attached to a VM's serial console.
struct ConsoleSession: Sendable {
    var id: UInt64
    var fd: Int32
}
