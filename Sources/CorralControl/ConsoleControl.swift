import CorralModel

/// A byte stream to a VM the daemon opened for one client (a connected socket): the serial console, or a VNC
/// client's end of a socket pair QEMU has the other end of. The API relays it over a WebSocket and calls `release`
/// exactly once when the client goes (which closes `fd`).
public struct ByteStreamLease: Sendable {
    public let fd: Int32
    public let release: @Sendable () -> Void

    public init(fd: Int32, release: @escaping @Sendable () -> Void) {
        self.fd = fd
        self.release = release
    }
}

/// `corral console --attach` and `corral vnc`.
public protocol ConsoleControl: Sendable {
    /// The VM's serial console, read and write. One client at a time: a second one is refused (conflict) unless
    /// `force`, which ends the first one's session.
    func attachConsole(_ name: String, force: Bool) async throws(ControlError) -> ByteStreamLease
    /// A new VNC client of the VM's display (any number at once; QEMU shares the display).
    func openVNC(_ name: String) async throws(ControlError) -> ByteStreamLease
}
