import JSON

// Layer 4: typed wrappers for the commands corral uses. Each is one `execute` plus a check of the reply's shape.
// They are written on `QMPMonitor`, so the daemon and the scripted test monitor send exactly the same JSON.

extension QMPMonitor {
    /// Any command, with the connection's default timeout.
    public func execute(_ command: String, _ arguments: JSONObject? = nil) async throws(QMPError) -> JSONValue {
        try await execute(command, arguments, timeout: nil)
    }

    /// `query-status`: the run state ("prelaunch", "running", "paused", "shutdown", …) and whether vCPUs run.
    public func queryStatus(timeout: Duration? = nil) async throws(QMPError) -> (status: String, running: Bool) {
        let reply = try await execute("query-status", nil, timeout: timeout)
        guard let status = reply["status"]?.stringValue, let running = reply["running"]?.boolValue else {
            throw .protocolError("query-status returned \(reply.compactText.qmpTruncated) without 'status' and 'running'")
        }
        return (status, running)
    }

    /// `stop`: pauses the vCPUs (QEMU emits `STOP`).
    public func stop(timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("stop", nil, timeout: timeout)
    }

    /// `cont`: resumes the vCPUs (QEMU emits `RESUME`).
    public func cont(timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("cont", nil, timeout: timeout)
    }

    /// `system_powerdown`: presses the ACPI power button; the guest decides whether to shut down.
    public func systemPowerdown(timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("system_powerdown", nil, timeout: timeout)
    }

    /// `quit`: QEMU exits at once (emits `SHUTDOWN`, then closes the socket). If the socket closes before the reply
    /// is read, that is what `quit` asked for, so it is not an error.
    public func quit(timeout: Duration? = nil) async throws(QMPError) {
        do {
            _ = try await execute("quit", nil, timeout: timeout)
        } catch .disconnected {
            return
        }
    }

    /// `query-version`: the running QEMU's version.
    public func queryVersion(timeout: Duration? = nil) async throws(QMPError) -> QMPVersion {
        let reply = try await execute("query-version", nil, timeout: timeout)
        guard let version = QMPVersion(json: reply) else {
            throw .protocolError("query-version returned \(reply.compactText.qmpTruncated) without qemu.major/minor/micro")
        }
        return version
    }

    /// `query-balloon`: the memory the guest has now (`actual`, bytes).
    public func queryBalloon(timeout: Duration? = nil) async throws(QMPError) -> UInt64 {
        let reply = try await execute("query-balloon", nil, timeout: timeout)
        guard let actual = reply["actual"]?.intValue, actual >= 0 else {
            throw .protocolError("query-balloon returned \(reply.compactText.qmpTruncated) without 'actual'")
        }
        return UInt64(actual)
    }

    /// `balloon`: asks the guest to give memory back until it has `bytes`.
    public func setBalloon(bytes: UInt64, timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("balloon", ["value": .int(Int64(clamping: bytes))], timeout: timeout)
    }

    /// `getfd`: hands QEMU a descriptor under `name` (for `netdev_add … fd=name`); ours stays open.
    public func getfd(_ name: String, _ fd: Int32, timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("getfd", ["fdname": .string(name)], timeout: timeout, passing: [fd])
    }

    /// `add-fd`: puts a descriptor in a new fd set (QEMU opens it as `/dev/fdset/N`); the set's number. Ours stays
    /// open.
    public func addFD(_ fd: Int32, opaque: String, timeout: Duration? = nil) async throws(QMPError) -> Int32 {
        let reply = try await execute("add-fd", ["opaque": .string(opaque)], timeout: timeout, passing: [fd])
        guard let set = reply["fdset-id"]?.intValue, let id = Int32(exactly: set) else {
            throw .protocolError("add-fd returned \(reply.compactText.qmpTruncated) without 'fdset-id'")
        }
        return id
    }

    /// `query-fdsets`: set number → the opaque texts of its descriptors.
    public func queryFDSets(timeout: Duration? = nil) async throws(QMPError) -> [Int32: [String]] {
        let reply = try await execute("query-fdsets", nil, timeout: timeout)
        var sets: [Int32: [String]] = [:]
        for entry in reply.arrayValue ?? [] {
            guard let id = entry["fdset-id"]?.intValue.flatMap({ Int32(exactly: $0) }) else { continue }
            sets[id] = (entry["fds"]?.arrayValue ?? []).compactMap { $0["opaque"]?.stringValue }
        }
        return sets
    }

    /// `remove-fd`: drops a set (QEMU closes it once nothing uses its descriptors).
    public func removeFD(set: Int32, timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("remove-fd", ["fdset-id": .int(Int64(set))], timeout: timeout)
    }

    /// `closefd`: drops a descriptor handed over with `getfd` that nothing used.
    public func closefd(_ name: String, timeout: Duration? = nil) async throws(QMPError) {
        _ = try await execute("closefd", ["fdname": .string(name)], timeout: timeout)
    }

    /// `query-migrate`: the raw reply (the daemon parses it into its progress value).
    public func queryMigrate(timeout: Duration? = nil) async throws(QMPError) -> JSONValue {
        try await execute("query-migrate", nil, timeout: timeout)
    }
}
