/// `corral host evacuate|restore`: the body of `POST /v1/hosts/{name}/evacuate` and `…/restore`.
public struct EvacuateRequest: Sendable, Codable, Equatable {
    /// Migrations at a time (default 2, at most 16).
    public var parallel: Int?
    /// Migration tuning for each move (bandwidth, downtime, …; `withStorage` copies the disks).
    public var options: MigrationOptions?

    public static let defaultParallel = 2
    public static let maxParallel = 16

    public init(parallel: Int? = nil, options: MigrationOptions? = nil) {
        self.parallel = parallel
        self.options = options
    }

    /// The problem with the request, if any.
    public func problem() -> String? {
        if let parallel, !(1...Self.maxParallel).contains(parallel) {
            return "parallel must be between 1 and \(Self.maxParallel), got \(parallel)"
        }
        return nil
    }
}

/// One VM of an evacuation (or restore) plan: where it goes, or why it stays.
public struct EvacuationStep: Sendable, Codable, Equatable {
    public var vm: String
    /// The host it moves to; nil: it stays (see `reason`).
    public var to: String?
    public var reason: String?

    public init(vm: String, to: String? = nil, reason: String? = nil) {
        self.vm = vm
        self.to = to
        self.reason = reason
    }
}

/// How an evacuation (or restore) ended.
public struct EvacuationSummary: Sendable, Codable, Equatable {
    public var host: String
    /// VM → the host it is on now.
    public var moved: [String: String]
    /// VM → why its migration failed (it stays where it was).
    public var failed: [String: String]
    /// VM → why it was not moved (stopped, no host can take it, …).
    public var stayed: [String: String]

    public init(host: String, moved: [String: String] = [:], failed: [String: String] = [:],
                stayed: [String: String] = [:]) {
        self.host = host
        self.moved = moved
        self.failed = failed
        self.stayed = stayed
    }
}

/// One element of an evacuation's stream: the plan, then each VM's progress and outcome as they come (several VMs
/// interleaved), then exactly one summary.
public enum EvacuationUpdate: Sendable, Equatable {
    case plan([EvacuationStep])
    case progress(vm: String, MigrationProgress)
    case moved(vm: String, MigrationResult)
    case failed(vm: String, ControlError)
    case finished(EvacuationSummary)
}

/// `GET /v1/vms/{name}/placement?to=NAME|auto`: where `corral migrate --to NAME|auto` sends the VM.
public struct PlacementReply: Sendable, Codable, Equatable {
    public var host: String
    /// Its API address (`HOST:PORT`), what `MigrateRequest.to` takes.
    public var address: String

    public init(host: String, address: String) {
        self.host = host
        self.address = address
    }
}
