/// Where one VM's files live. One folder per VM, mode 0700.
public struct VMPaths: Sendable, Equatable {
    public var folder: String

    public init(folder: String) { self.folder = folder }

    public init(stateRoot: String, name: String) { self.folder = stateRoot + "/vms/" + name }

    public var qmpSocket: String { folder + "/qmp.sock" }
    public var serialLog: String { folder + "/serial.log" }
    public var pidFile: String { folder + "/qemu.pid" }
    /// Every QMP command, reply and event with a timestamp.
    public var transcript: String { folder + "/qmp.log" }
    /// QEMU's own stdout/stderr.
    public var qemuOutput: String { folder + "/qemu.out" }
    public var liveConfig: String { folder + "/live.json" }

    /// Linux limits a Unix socket path to 107 bytes plus NUL; a longer state dir cannot work.
    public static let maxSocketPathBytes = 107

    public var socketPathProblem: String? {
        let length = qmpSocket.utf8.count
        guard length > VMPaths.maxSocketPathBytes else { return nil }
        return "the QMP socket path \(qmpSocket) is \(length) bytes; Unix sockets allow "
            + "\(VMPaths.maxSocketPathBytes): use a shorter --state-dir"
    }
}
