#if canImport(Glibc)
import Glibc
#endif

/// systemd's socket activation (`sd_listen_fds`): a service started for a `.socket` unit finds the listening
/// sockets as file descriptors 3, 4, … with `LISTEN_PID` (its own pid) and `LISTEN_FDS` (how many) in its
/// environment. systemd keeps its own copy of each socket, so connections made while the service restarts wait in
/// the socket's backlog for the next instance instead of failing.
public enum SocketActivation {
    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: Int32 = 3
    /// More than this many passed sockets is a misconfiguration, not something to adopt.
    public static let maxDescriptors = 16

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(variable: String, value: String)
        case tooMany(Int)
        case notAUnixListener(descriptor: Int32, why: String)

        public var description: String {
            switch self {
            case .malformed(let variable, let value):
                return "socket activation: \(variable)=\(value) is not a count of sockets"
            case .tooMany(let count):
                return "socket activation: LISTEN_FDS=\(count) is more than \(SocketActivation.maxDescriptors) sockets"
            case .notAUnixListener(let descriptor, let why):
                return "socket activation: descriptor \(descriptor) is not a listening Unix stream socket (\(why)); "
                    + "the corral.socket unit needs ListenStream=/path/to/corral.sock"
            }
        }
    }

    /// The descriptors passed to process `pid` according to `environment`; empty when it was not socket-activated
    /// (no `LISTEN_FDS`, or `LISTEN_PID` names another process — a parent's variables leaked to a child).
    public static func descriptors(environment: [String: String], pid: Int32) throws(Failure) -> [Int32] {
        guard let countText = environment["LISTEN_FDS"] else { return [] }
        guard let pidText = environment["LISTEN_PID"], let listenPid = Int32(pidText) else {
            throw .malformed(variable: "LISTEN_PID", value: environment["LISTEN_PID"] ?? "")
        }
        guard listenPid == pid else { return [] }
        guard let count = Int(countText), count >= 0 else { throw .malformed(variable: "LISTEN_FDS", value: countText) }
        guard count <= maxDescriptors else { throw .tooMany(count) }
        return (0..<count).map { firstDescriptor + Int32($0) }
    }

    /// This process's passed sockets. The variables are removed so that the processes it starts (QEMU) do not
    /// think they were activated, and every descriptor is made close-on-exec so they do not inherit the sockets.
    public static func adopt() throws(Failure) -> [Int32] {
        var environment: [String: String] = [:]
        for name in ["LISTEN_FDS", "LISTEN_PID"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        let found = try descriptors(environment: environment, pid: getpid())
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] { unsetenv(name) }
        for fd in found {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
        return found
    }

    /// The path a passed descriptor listens on, after checking that it is a listening Unix stream socket.
    public static func unixListenerPath(_ fd: Int32) throws(Failure) -> String {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SO_DOMAIN) else {
            throw .notAUnixListener(descriptor: fd, why: String(cString: strerror(errno)))
        }
        guard domain == AF_UNIX else { throw .notAUnixListener(descriptor: fd, why: "address family \(domain)") }
        guard option(SO_TYPE) == Int32(SOCK_STREAM.rawValue) else {
            throw .notAUnixListener(descriptor: fd, why: "not a stream socket")
        }
        guard option(SO_ACCEPTCONN) == 1 else { throw .notAUnixListener(descriptor: fd, why: "not listening") }
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw .notAUnixListener(descriptor: fd, why: String(cString: strerror(errno))) }
        let path = withUnsafeBytes(of: &address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard !path.isEmpty else { throw .notAUnixListener(descriptor: fd, why: "no path (abstract or unnamed)") }
        return path
    }
}
