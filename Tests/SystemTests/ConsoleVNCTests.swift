import CorralModel
import CorralWire
import Foundation
import Supervisor
import Testing
import TestSupport

/// The serial console and the VNC display through a real `corral daemon`, QEMU unprivileged, the test guest
/// reading its serial port: what goes in over the WebSocket reaches the guest, what it writes comes back, one writer
/// at a time; `corral vnc` serves QEMU's VNC server (which listens nowhere) on a local port, a real RFB handshake.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(6))) struct ConsoleVNCTests {
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Reads until `predicate` holds for the text received (at most `limit` seconds).
    static func readUntil(_ connection: WebSocketConnection, within limit: Double = 60,
                          _ predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(limit)
        var text = ""
        while Date() < deadline, !predicate(text), let bytes = try connection.receive() {
            text += String(decoding: bytes, as: UTF8.self)
        }
        return text
    }

    /// Whether the stream ends (closed, or broken) before `limit`, whatever arrives until then.
    static func ends(_ connection: WebSocketConnection, within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: limit)
        while true {
            do {
                guard try connection.receive(deadline: deadline) != nil else { return true }
            } catch .timedOut {
                return false
            } catch {
                return true
            }
        }
    }

    /// Reads exactly `count` bytes from a socket.
    static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while bytes.count < count {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, count - bytes.count) }
            guard got > 0 else { break }
            bytes += buffer[..<got]
        }
        return bytes
    }

    @Test func theConsoleTakesInputAndTheDisplayAnswersAVNCClient() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("cvnc")
        defer { DaemonCLITests.cleanUp(root) }
        let daemon = try await DaemonCLITests.Daemon.start(root: root)
        let profile = try Guest.writeProfile(in: root, name: "screen", extra: "display: { vga: std, vnc: true }\n")
        let up = try await daemon.run("up", profile)
        try #require(up.status == .exited(0), "\(up)")
        let status = try await daemon.json(VMStatus.self, "status", "screen")
        _ = try await HeartbeatWait.first(in: status.serialLog)

        let client = CorralClient(endpoint: .unixSocket(daemon.socket))
        try await Self.onThread {
            let console = try WebSocketConnection.open(client, path: "/v1/vms/screen/console/attach")
            // The guest's heartbeats come through, and a typed line reaches the guest.
            #expect(try Self.readUntil(console) { $0.contains("CORRAL-HB") }.contains("CORRAL-HB"))
            try console.send(Array("hello-from-the-websocket\r".utf8))
            let seen = try Self.readUntil(console) { $0.contains("console read: hello-from-the-websocket") }
            #expect(seen.contains("corral-init: console read: hello-from-the-websocket"), "\(seen.suffix(400))")
            // One writer: a second client is refused, --force takes over and the first one's stream ends.
            #expect(throws: WebSocketError.self) {
                try WebSocketConnection.open(client, path: "/v1/vms/screen/console/attach").receive()
            }
            let second = try WebSocketConnection.open(client, path: "/v1/vms/screen/console/attach?force=true")
            #expect(Self.ends(console, within: .seconds(20)), "the first client's stream ends when it is taken over")
            try second.send(Array("second-writer\r".utf8))
            #expect(try Self.readUntil(second) { $0.contains("console read: second-writer") }
                .contains("console read: second-writer"))
            second.close()
            console.close()
        }
        // The log kept everything, attached or not. (QEMU writes a chunk to the socket before the log: wait for it.)
        for line in ["console read: hello-from-the-websocket", "console read: second-writer"] {
            #expect(await LineWait.first(in: status.serialLog, within: .seconds(60)) { $0.contains(line) } != nil,
                    "the serial log has \(line)")
        }

        // `corral vnc` on a free local port: a VNC client gets QEMU's RFB server through the daemon.
        let output = root + "/vnc.out"
        let proxy = try ProcessLauncher.launch(LaunchSpec(
            executable: DaemonCLITests.binary,
            arguments: ["vnc", "screen", "--listen", "127.0.0.1:0", "--socket", daemon.socket], outputFile: output))
        defer { proxy.signal(SIGKILL) }
        let line = try #require(await LineWait.first(in: output, within: .seconds(30)) { $0.contains("display on ") })
        let port = try #require(line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }
            .flatMap { Int($0.split(separator: ":").last ?? "") })
        let (width, height) = try await Self.onThread { () -> (Int, Int) in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(connected == 0)
            let banner = Self.readExactly(fd, 12)
            #expect(String(decoding: banner, as: UTF8.self) == "RFB 003.008\n")
            _ = Array("RFB 003.008\n".utf8).withUnsafeBytes { write(fd, $0.baseAddress, 12) }
            let count = Self.readExactly(fd, 1).first ?? 0
            let types = Self.readExactly(fd, Int(count))
            #expect(types.contains(1), "security type None offered: \(types)")
            _ = [UInt8(1)].withUnsafeBytes { write(fd, $0.baseAddress, 1) }
            #expect(Self.readExactly(fd, 4) == [0, 0, 0, 0], "security result OK")
            _ = [UInt8(1)].withUnsafeBytes { write(fd, $0.baseAddress, 1) }  // ClientInit: shared
            let initBytes = Self.readExactly(fd, 4)
            guard initBytes.count == 4 else { return (0, 0) }
            return (Int(initBytes[0]) << 8 | Int(initBytes[1]), Int(initBytes[2]) << 8 | Int(initBytes[3]))
        }
        #expect(width >= 640 && height >= 400, "ServerInit: \(width)×\(height)")
        _ = try await daemon.run("kill", "screen")
    }
}
