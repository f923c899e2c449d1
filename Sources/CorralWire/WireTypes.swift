import CorralModel
import JSON

/// The daemon's version, reported by `GET /v1/health`.
public enum CorralVersion {
    public static let string = "0.1.0"
}

/// `POST /v1/vms/{name}/stop` body; every field optional.
public struct StopRequest: Sendable, Codable, Equatable {
    /// What the daemon uses when `timeoutSeconds` is absent.
    public static let defaultTimeoutSeconds: Double = 30
    /// Seconds between the ACPI power button and `quit`; 30 when absent.
    public var timeoutSeconds: Double?
    public init(timeoutSeconds: Double? = nil) { self.timeoutSeconds = timeoutSeconds }
}

/// `POST /v1/vms/{name}/qmp` body.
public struct QMPRequest: Sendable, Codable, Equatable {
    public var command: String
    /// Must be a JSON object when present.
    public var arguments: JSONValue?
    public init(command: String, arguments: JSONObject? = nil) {
        self.command = command
        self.arguments = arguments.map(JSONValue.object)
    }
}

/// `POST /v1/vms/{name}/qmp` reply: QMP's own `return` value.
public struct QMPReply: Sendable, Codable, Equatable {
    public var `return`: JSONValue
    public init(return value: JSONValue) { self.return = value }
}

/// `GET /v1/health` reply.
public struct HealthReply: Sendable, Codable, Equatable {
    public var status: String
    public var version: String
    public init(status: String, version: String) {
        self.status = status
        self.version = version
    }
}

/// Every error body the API sends: `{"error": code, "message": …, "diagnostics": […]?, "qemuOutput": […]?}`.
public struct ErrorBody: Sendable, Codable, Equatable {
    /// `ControlError.code`, or one of the transport codes `unauthorized`, `not-found`, `invalid-request`,
    /// `too-large`, `internal`.
    public var error: String
    public var message: String
    public var diagnostics: [Diagnostic]?
    public var qemuOutput: [String]?
    /// For `qmp-error`: the command sent and QMP's own `class` and `desc`.
    public var qmp: QMPFailure?

    public init(error: String, message: String, diagnostics: [Diagnostic]? = nil, qemuOutput: [String]? = nil,
                qmp: QMPFailure? = nil) {
        self.error = error
        self.message = message
        self.diagnostics = diagnostics
        self.qemuOutput = qemuOutput
        self.qmp = qmp
    }

    public init(_ controlError: ControlError) {
        self.init(error: controlError.code, message: controlError.message)
        switch controlError {
        case .invalidProfile(let diagnostics): self.diagnostics = diagnostics
        case .startFailed(_, let output): self.qemuOutput = output
        case .qmp(let failure): self.qmp = failure
        default: break
        }
    }

    /// The `ControlError` this body describes; nil for a code that is not one (e.g. `unauthorized`).
    public var controlError: ControlError? {
        switch error {
        case "invalid-profile": return .invalidProfile(diagnostics ?? [])
        case "invalid-request": return .invalidRequest(message)
        case "not-found": return .notFound(message)
        case "conflict": return .conflict(message)
        case "start-failed": return .startFailed(reason: message, qemuOutput: qemuOutput ?? [])
        case "qmp-error": return .qmp(qmp ?? QMPFailure(desc: message))
        case "unreachable": return .unreachable(message)
        case "refused": return .refused(message)
        case "internal": return .internalError(message)
        default: return nil
        }
    }
}

extension ControlError {
    /// The HTTP status the API answers with (docs/api.md).
    public var httpStatus: Int {
        switch self {
        case .invalidProfile: return 422
        case .invalidRequest: return 400
        case .notFound: return 404
        case .conflict: return 409
        case .startFailed: return 500
        case .qmp: return 502
        case .unreachable: return 502
        case .refused: return 403
        case .internalError: return 500
        }
    }
}

/// One line of a `POST /v1/vms/{name}/migrate` stream: `{"progress": …}` (any number), then `{"result": …}` or
/// `{"error": …}` (exactly one, last).
public struct MigrationStreamMessage: Sendable, Codable, Equatable {
    public var progress: MigrationProgress?
    public var result: MigrationResult?
    public var error: ErrorBody?

    public init(_ update: MigrationUpdate) {
        switch update {
        case .progress(let progress): self.progress = progress
        case .completed(let result): self.result = result
        case .failed(let error): self.error = ErrorBody(error)
        }
    }

    /// The update this line carries; nil for a line with none of the three.
    public var update: MigrationUpdate? {
        if let result { return .completed(result) }
        if let error { return .failed(error.controlError ?? .internalError("\(error.error): \(error.message)")) }
        if let progress { return .progress(progress) }
        return nil
    }
}

/// The `error` code of a 501 answer: the daemon's control object lacks the operation.
public enum NotSupportedCode {
    public static let code = "not-supported"
}

/// One NDJSON line of `POST /v1/hosts/{name}/evacuate` (and `…/restore`): `{"plan": […]}` first; then, per VM,
/// `{"vm": …, "progress": …}` lines and one `{"vm": …, "result": …}` or `{"vm": …, "error": …}`; last
/// `{"summary": …}`.
public struct EvacuationStreamMessage: Sendable, Codable, Equatable {
    public var plan: [EvacuationStep]?
    public var vm: String?
    public var progress: MigrationProgress?
    public var result: MigrationResult?
    public var error: ErrorBody?
    public var summary: EvacuationSummary?

    public init(_ update: EvacuationUpdate) {
        switch update {
        case .plan(let steps): plan = steps
        case .progress(let vm, let progress): self.vm = vm; self.progress = progress
        case .moved(let vm, let result): self.vm = vm; self.result = result
        case .failed(let vm, let error): self.vm = vm; self.error = ErrorBody(error)
        case .finished(let summary): self.summary = summary
        }
    }

    /// The update this line carries; nil for a line with none.
    public var update: EvacuationUpdate? {
        if let summary { return .finished(summary) }
        if let plan { return .plan(plan) }
        guard let vm else { return nil }
        if let result { return .moved(vm: vm, result) }
        if let error { return .failed(vm: vm, error.controlError ?? .internalError("\(error.error): \(error.message)")) }
        if let progress { return .progress(vm: vm, progress) }
        return nil
    }
}
