import CorralControl
import CorralModel

/// `corral console --attach` and `corral vnc`.
extension VMManager: ConsoleControl {
    public func attachConsole(_ name: String, force: Bool) async throws(ControlError) -> ByteStreamLease {
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.attachConsole(force: force) }
    }

    public func openVNC(_ name: String) async throws(ControlError) -> ByteStreamLease {
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.openVNC() }
    }
}
