import JSON

// Layer 4: typed wrappers for the commands corral uses. Each is one `execute` plus a check of the reply's shape.

extension QMPClient {
    /// `query-status`: the run state ("prelaunch", "running", "paused", "shutdown", …) and whether vCPUs run.
    public func queryStatus(timeout: Duration? = nil) async throws(QMPError) -> (status: String, running: Bool) {
        let reply = try await execute("query-status", timeout: timeout)
        guard let status = reply["status"]?.stringValue, let running = reply["running"]?.boolValue else {
            throw .protocolError("query-status returned \(reply.compactText.qmpTruncated) without 'status' and 'running'")
        }
        return (status, running)
    }

    /// `stop`: pauses the vCPUs (QEMU emits `STOP`).
    public func stop(timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("stop", timeout: timeout)
    }

    /// `cont`: resumes the vCPUs (QEMU emits `RESUME`).
    public func cont(timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("cont", timeout: timeout)
    }

    /// `system_powerdown`: presses the ACPI power button; the guest decides whether to shut down.
    public func systemPowerdown(timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("system_powerdown", timeout: timeout)
    }

    /// `quit`: QEMU exits at once (emits `SHUTDOWN`, then closes the socket). If the socket closes before the reply
    /// is read, that is what `quit` asked for, so it is not an error.
    public func quit(timeout: Duration? = nil) async throws(QMPError) {
        do {
            _ = try await execute("quit", timeout: timeout)
        } catch .disconnected {
            return
        }
    }

    /// `query-version`: the running QEMU's version.
    public func queryVersion(timeout: Duration? = nil) async throws(QMPError) -> QMPVersion {
        let reply = try await execute("query-version", timeout: timeout)
        guard let version = QMPVersion(json: reply) else {
            throw .protocolError("query-version returned \(reply.compactText.qmpTruncated) without qemu.major/minor/micro")
        }
        return version
    }
}
