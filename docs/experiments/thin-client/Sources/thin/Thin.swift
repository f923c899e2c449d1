// An experiment, not part of corral (nothing builds or ships it): how fast is `corral up` from a client binary
// without Foundation, Yams or the supervisor linked in? Same swift-argument-parser, same daemon API, blocking I/O,
// no error reporting to speak of. See README.md beside this package.
import ArgumentParser
import FoundationEssentials
import Glibc

struct UpReq: Codable { var profile: String; var name: String?; var accel: String?; var paused: Bool }
struct Status: Decodable { var name: String; var state: String; var pid: Int32? }

@main struct Thin: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "corral", subcommands: [Up.self])
}

struct Up: ParsableCommand {
    @Argument var profile: String
    @Option var name: String?
    @Option var accel: String?
    @Flag var paused = false
    @Flag var json = false
    @Option(name: .customLong("socket")) var socketPath: String?

    func run() throws {
        let path = socketPath ?? getenv("CORRAL_SOCKET").map { String(cString: $0) } ?? "/run/corral/corral.sock"
        var cwd = [CChar](repeating: 0, count: 4096)
        let abs = profile.hasPrefix("/") ? profile : String(cString: getcwd(&cwd, 4096)!) + "/" + profile
        let body = try JSONEncoder().encode(UpReq(profile: abs, name: name, accel: accel, paused: paused))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8)
            for i in 0..<bytes.count { raw[i] = bytes[i] }
        }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { throw ExitCode(1) }
        var request = Array("POST /v1/vms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        request += Array(body)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            reply += buffer[0..<n]
        }
        close(fd)
        guard let split = reply.indices.first(where: { reply[$0...].starts(with: [13, 10, 13, 10]) }) else { throw ExitCode(1) }
        let status = try JSONDecoder().decode(Status.self, from: Data(reply[(split + 4)...]))
        print(status.name)
    }
}
