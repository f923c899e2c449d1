/// Where one VM's files live. One folder per VM, mode 0700.
public struct VMPaths: Sendable, Equatable {
    public var folder: String

    public init(folder: String) { self.folder = folder }

    public init(stateRoot: String, name: String) { self.folder = stateRoot + "/vms/" + name }

    /// The daemon's state root (`STATE` of `STATE/vms/NAME`).
    public var stateRoot: String {
        let parts = folder.split(separator: "/", omittingEmptySubsequences: false)
        return parts.dropLast(2).joined(separator: "/")
    }

    public var qmpSocket: String { folder + "/qmp.sock" }
    /// The guest agent's channel (profiles with `agent: true`).
    public var agentSocket: String { folder + "/agent.sock" }
    /// The sockets QEMU listens on: gone with QEMU (removed on stop, kill, a crash, a failed start).
    /// The serial console's socket (`corral console --attach`).
    public var consoleSocket: String { folder + "/console.sock" }
    public var sockets: [String] { [qmpSocket, agentSocket, consoleSocket] }
    public var serialLog: String { folder + "/serial.log" }
    public var pidFile: String { folder + "/qemu.pid" }
    /// Every QMP command, reply and event with a timestamp.
    public var transcript: String { folder + "/qmp.log" }
    /// QEMU's own stdout/stderr.
    public var qemuOutput: String { folder + "/qemu.out" }
    public var liveConfig: String { folder + "/live.json" }
    /// The cloud-init NoCloud seed (profiles with `cloudInit`), built at each start.
    public var cloudInitSeed: String { folder + "/cidata.iso" }

    /// Linux limits a Unix socket path to 107 bytes plus NUL; a longer state dir cannot work.
    public static let maxSocketPathBytes = 107

    /// The longest socket path (`agent.sock` is one byte longer than `qmp.sock`) must fit.
    public var socketPathProblem: String? {
        guard let longest = sockets.max(by: { $0.utf8.count < $1.utf8.count }),
              longest.utf8.count > VMPaths.maxSocketPathBytes
        else { return nil }
        return "the socket path \(longest) is \(longest.utf8.count) bytes; Unix sockets allow "
            + "\(VMPaths.maxSocketPathBytes): use a shorter --state-dir"
    }

    /// Removes every socket QEMU listened on.
    public func removeSockets() {
        for socket in sockets { FileOps.remove(socket) }
    }
}
