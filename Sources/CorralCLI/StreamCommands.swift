import ArgumentParser
import CorralModel
import CorralWire
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `corral console NAME --attach`: the serial console as a terminal, through the daemon's WebSocket.
enum ConsoleAttach {
    /// Ctrl-] ends the session (as telnet and virsh console do).
    static let escape: UInt8 = 0x1D

    static func run(name: String, force: Bool, socket: String) throws {
        let client = CorralClient(endpoint: .unixSocket(socket))
        let path = "/v1/vms/\(percentEncoded(name))/console/attach" + (force ? "?force=true" : "")
        let connection: WebSocketConnection
        do { connection = try WebSocketConnection.open(client, path: path) } catch { throw StreamFailure(error) }
        // A refused attach is upgraded and closed at once: wait a moment for that before saying we are connected.
        var first: [UInt8] = []
        do {
            guard let bytes = try connection.receive(deadline: ContinuousClock.now.advanced(by: .milliseconds(300))) else {
                connection.close()
                return
            }
            first = bytes
        } catch .timedOut {
        } catch {
            connection.close()
            throw StreamFailure(error)
        }
        let terminal = RawTerminal()
        Terminal.err("Connected to \(name)'s console" + (terminal.isTerminal ? "; Ctrl-] ends." : "."))
        first.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
        defer {
            terminal.restore()
            connection.close()
        }
        // Keystrokes go to the guest on their own thread; what the guest writes comes back on this one.
        IOThread.start {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return }
                var bytes = Array(buffer[..<count])
                if terminal.isTerminal, let end = bytes.firstIndex(of: escape) {
                    bytes = Array(bytes[..<end])
                    if !bytes.isEmpty { try? connection.send(bytes) }
                    connection.close()
                    return
                }
                do { try connection.send(bytes) } catch { return }
            }
        }
        do {
            while let bytes = try connection.receive() {
                bytes.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
            }
        } catch .io {
            // Closed by Ctrl-] (our own close) or the daemon going away.
        } catch {
            terminal.restore()
            throw StreamFailure(error)
        }
        terminal.restore()
        Terminal.err("\r\nDisconnected from \(name)'s console.")
    }

    static func percentEncoded(_ text: String) -> String { CorralClient.percentEncoded(text) }
}

/// A WebSocket refusal as the CLI reports it: the daemon's message, exit 1 (2 for a missing VM, like other verbs).
struct StreamFailure: Error, CustomStringConvertible {
    var error: WebSocketError
    init(_ error: WebSocketError) { self.error = error }
    var description: String { error.description }
}

/// The terminal in raw mode while a console is attached (input goes to the guest byte by byte, unechoed).
final class RawTerminal: @unchecked Sendable {
    let isTerminal: Bool
    private var saved = termios()
    private var restored = false

    init() {
        isTerminal = isatty(0) != 0
        guard isTerminal, tcgetattr(0, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        tcsetattr(0, TCSANOW, &raw)
    }

    func restore() {
        guard isTerminal, !restored else { return }
        restored = true
        var original = saved
        tcsetattr(0, TCSANOW, &original)
    }
}

/// `corral vnc NAME`: a local TCP port where each VNC client gets its own WebSocket to the daemon's display.
enum VNCProxy {
    static func run(name: String, listen: HostPort, socket: String, announce: (String) -> Void) throws {
        let client = CorralClient(endpoint: .unixSocket(socket))
        let path = "/v1/vms/\(ConsoleAttach.percentEncoded(name))/vnc"
        // Refused now rather than at the first client: no such VM, no display.
        do { try WebSocketConnection.open(client, path: path).close() } catch { throw StreamFailure(error) }
        let listener = try TCPListener(listen)
        announce("\(name)'s display on \(listen.host):\(listener.port) (e.g. vncviewer \(listen.host)::\(listener.port)); "
            + "Ctrl-C ends")
        while true {
            let peer = listener.accept()
            guard peer >= 0 else { continue }
            IOThread.start { serve(peer, client: client, path: path) }
        }
    }

    /// Relays one VNC client both ways until either side ends.
    static func serve(_ peer: Int32, client: CorralClient, path: String) {
        guard let connection = try? WebSocketConnection.open(client, path: path) else {
            close(peer)
            return
        }
        IOThread.start {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(peer, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0, (try? connection.send(Array(buffer[..<count]))) != nil else { break }
            }
            connection.close()
        }
        while let bytes = try? connection.receive() {
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { write(peer, $0.baseAddress! + offset, bytes.count - offset) }
                guard written > 0 else { break }
                offset += written
            }
            if offset < bytes.count { break }
        }
        shutdown(peer, Int32(SHUT_RDWR))
        connection.close()
        close(peer)
    }
}

/// A listening TCP socket on `address` (port 0: any free one).
final class TCPListener {
    let fd: Int32
    let port: Int

    init(_ address: HostPort) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &result) == 0, let info = result else {
            throw ValidationError("--listen: \(address.host) is not an IP address")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard fd >= 0, bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw ValidationError("--listen: cannot listen on \(address): \(why)")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let networkPort: UInt16 = withUnsafePointer(to: &bound) { pointer in
            if Int32(pointer.pointee.ss_family) == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: networkPort))
    }

    func accept() -> Int32 {
        let peer = Glibc.accept(fd, nil, nil)
        if peer >= 0 { _ = fcntl(peer, F_SETFD, FD_CLOEXEC) }
        return peer
    }
}

struct VNCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnc",
        abstract: "Serve a VM's display on a local port for any VNC client (the VM's QEMU listens nowhere).",
        discussion: "Each client that connects gets its own stream to the display through the daemon. Ctrl-C ends.")

    @Argument(help: "VM name.") var name: String
    @Option(help: "Where to listen (HOST:PORT; port 0 picks a free one).") var listen: String = "127.0.0.1:5900"
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        do { _ = try HostPort(parsing: listen) } catch { throw ValidationError("--listen: \(error)") }
    }

    func run() throws {
        let address = try HostPort(parsing: listen)
        do {
            try VNCProxy.run(name: name, listen: address, socket: socket.resolved) { Terminal.out($0) }
        } catch let failure as StreamFailure {
            Terminal.err("error: \(failure.description)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
    }
}
