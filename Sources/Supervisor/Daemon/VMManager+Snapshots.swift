import CorralModel

/// `corral snapshot create|ls|revert|rm`, each in the VM's operation queue.
extension VMManager {
    public func snapshots(_ name: String) async throws(ControlError) -> [SnapshotInfo] {
        try await vm(name).snapshotList
    }

    public func createSnapshot(_ name: String, _ request: SnapshotCreateRequest) async throws(ControlError)
        -> SnapshotResult
    {
        do { try request.validate() } catch { throw ControlError(error) }
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.createSnapshot(request.name) }
    }

    public func revertSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult {
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.revertSnapshot(snapshot) }
    }

    public func removeSnapshot(_ name: String, snapshot: String) async throws(ControlError) -> SnapshotResult {
        let vm = try vm(name)
        return try await vm.queue.run { () async throws(ControlError) in try await vm.removeSnapshot(snapshot) }
    }
}
