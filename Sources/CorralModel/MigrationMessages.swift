/// `corral migrate`'s request (`POST /v1/vms/{name}/migrate`).
public struct MigrateRequest: Sendable, Codable, Equatable {
    /// The destination daemon's TCP API (`HOST:PORT`, `[IPV6]:PORT` on the wire).
    public var to: HostPort
    public var token: String?
    public var options: MigrationOptions

    public init(to: HostPort, token: String? = nil, options: MigrationOptions = MigrationOptions()) {
        self.to = to
        self.token = token
        self.options = options
    }
}

/// How a finished migration went, as QEMU reported it on the source.
public struct MigrationResult: Sendable, Codable, Equatable {
    public var name: String
    public var destination: String
    public var totalMilliseconds: Int64?
    public var downtimeMilliseconds: Int64?
    public var setupMilliseconds: Int64?
    public var transferredBytes: UInt64?

    public init(name: String, destination: String, totalMilliseconds: Int64?, downtimeMilliseconds: Int64?,
                setupMilliseconds: Int64?, transferredBytes: UInt64?) {
        self.name = name
        self.destination = destination
        self.totalMilliseconds = totalMilliseconds
        self.downtimeMilliseconds = downtimeMilliseconds
        self.setupMilliseconds = setupMilliseconds
        self.transferredBytes = transferredBytes
    }
}

/// One element of `corral migrate`'s stream: progress as it comes, then exactly one outcome.
public enum MigrationUpdate: Sendable, Equatable {
    case progress(MigrationProgress)
    /// The destination owns the VM.
    case completed(MigrationResult)
    /// The migration failed; the error says where the VM is (the source keeps it unless the message says otherwise).
    case failed(ControlError)

    /// True for the last element (`completed` or `failed`).
    public var isFinal: Bool {
        if case .progress = self { return false }
        return true
    }
}
