import CorralModel
import Foundation
import JSON
import CorralCore
import QMP

extension QMPFailure {
    /// A `QMPError` as the API reports it: QMP's `class` and `desc` when QEMU answered with an error; otherwise
    /// what happened to the command (timeout, connection lost), with the command that was sent.
    public init(_ error: QMPError, command sent: String? = nil, note: String? = nil) {
        switch error {
        case .commandFailed(let command, let errorClass, let desc):
            self.init(command: command, errorClass: errorClass, desc: desc, note: note)
        case .timeout(let command, _), .disconnected(let command, _), .cancelled(let command):
            self.init(command: command, desc: error.description, note: note)
        case .connectFailed, .protocolError:
            self.init(command: sent, desc: error.description, note: note)
        }
    }
}

extension ControlError {
    /// A QMP failure, keeping its command, class and desc.
    static func qmpFailed(_ error: QMPError, command: String? = nil, note: String? = nil) -> ControlError {
        .qmp(QMPFailure(error, command: command, note: note))
    }

    /// A failure corral noticed in QEMU's state rather than in one command's reply.
    static func qmpState(_ desc: String, command: String? = nil) -> ControlError {
        .qmp(QMPFailure(command: command, desc: desc))
    }
}

extension JSONValue {
    /// An `Encodable` value as JSON (event payloads built from typed values).
    init(encoding value: some Encodable) {
        guard let data = try? JSONEncoder().encode(value),
            let decoded = try? JSONDecoder().decode(JSONValue.self, from: data)
        else { self = .null; return }
        self = decoded
    }
}

extension QMPMonitor {
    /// Sends one step of a pure plan (hotplug, migration) as it is: command and arguments (none when empty).
    @discardableResult
    func send(_ step: QMPStep, timeout: Duration? = nil) async throws(QMPError) -> JSONValue {
        try await execute(step.command, step.arguments.isEmpty ? nil : step.arguments, timeout: timeout)
    }

    /// `query-migrate`, parsed.
    func migrationProgress(timeout: Duration? = nil) async throws(QMPError) -> MigrationProgress {
        MigrationProgress(queryMigrate: try await queryMigrate(timeout: timeout))
    }
}
