#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif
import CorralModel
import JSON

/// One line of a `POST /v1/vms/{name}/migrate` stream, as sent and as understood.
public struct MigrationStreamLine: Sendable, Equatable {
    /// The NDJSON line exactly as the daemon sent it (for `--json`).
    public var text: String
    public var update: MigrationUpdate

    public init(text: String, update: MigrationUpdate) {
        self.text = text
        self.update = update
    }

    static func parse(_ text: String) throws(BodyError) -> MigrationStreamLine {
        let message = try WireCoding.decode(MigrationStreamMessage.self, from: Data(text.utf8))
        guard let update = message.update else {
            throw BodyError(message: "a migration stream line without progress, result or error: \(text.prefix(200))")
        }
        return MigrationStreamLine(text: text, update: update)
    }
}

// MARK: Migration

extension CorralClient {
    /// The peer calls that prepare a VM can take this long (the destination starts QEMU).
    package static let preparePeerTimeout: Duration = .seconds(120)
    /// Commit and abort are a few QMP commands on the destination.
    package static let finishPeerTimeout: Duration = .seconds(60)

    /// Starts migrating `name` and streams its progress; the last element is `.completed` or `.failed`.
    /// The stream throws when the connection breaks or ends without an outcome.
    public func migrate(_ name: String, _ request: MigrateRequest) async throws
        -> AsyncThrowingStream<MigrationStreamLine, any Error>
    {
        // A migration may take as long as it must (`--timeout` is the daemon's business).
        let response = try await send("POST", vmPath(name, "migrate"), body: try WireCoding.encode(request),
                                      streaming: true)
        try await throwIfFailed(response)
        let parsed = lines(of: response.body) { line throws(BodyError) in try MigrationStreamLine.parse(line) }
        return AsyncThrowingStream { continuation in
            let reader = Task {
                do {
                    for try await line in parsed {
                        continuation.yield(line)
                        if !line.update.isFinal { continue }
                        continuation.finish()
                        return
                    }
                    continuation.finish(throwing: CorralClientError.transport(
                        "the daemon ended the migration stream of \(name) without a result"))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }

    /// Migrates and waits: the result, or the migration's `ControlError`.
    public func migrateAndWait(_ name: String, _ request: MigrateRequest) async throws -> MigrationResult {
        for try await line in try await migrate(name, request) {
            switch line.update {
            case .progress: continue
            case .completed(let result): return result
            case .failed(let error): throw error
            }
        }
        throw CorralClientError.transport("the daemon ended the migration stream of \(name) without a result")
    }

    public func cancelMigration(_ name: String) async throws {
        _ = try await collect(try await send("POST", vmPath(name, "migrate/cancel"), body: nil))
    }
}

// MARK: Cluster

extension CorralClient {
    /// Where `corral migrate --to NAME|auto` would send `name` (the daemon places it).
    public func placement(_ name: String, to: String) async throws -> PlacementReply {
        try await call("GET", vmPath(name, "placement") + "?to=" + Self.percentEncoded(to), as: PlacementReply.self)
    }

    /// `corral host evacuate|restore`: `action` is `evacuate` or `restore`; the stream's last element is
    /// `.finished`.
    public func hostAction(_ host: String, _ action: String, _ request: EvacuateRequest) async throws
        -> AsyncThrowingStream<EvacuationStreamLine, any Error>
    {
        let response = try await send("POST", "/v1/hosts/" + Self.percentEncoded(host) + "/" + action,
                                      body: try WireCoding.encode(request), streaming: true)
        guard response.head.status < 400 else {
            _ = try await collect(response)
            throw CorralClientError.badResponse("HTTP \(response.head.status)")
        }
        let parsed = lines(of: response.body) { line throws(BodyError) in try EvacuationStreamLine.parse(line) }
        return AsyncThrowingStream { continuation in
            let reader = Task {
                do {
                    for try await line in parsed {
                        continuation.yield(line)
                        guard case .finished = line.update else { continue }
                        continuation.finish()
                        return
                    }
                    continuation.finish(throwing: CorralClientError.transport(
                        "the daemon ended the \(action) stream of \(host) without a summary"))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }
}

/// One line of a `POST /v1/hosts/{name}/evacuate|restore` stream, as sent and as understood.
public struct EvacuationStreamLine: Sendable, Equatable {
    public var text: String
    public var update: EvacuationUpdate

    static func parse(_ text: String) throws(BodyError) -> EvacuationStreamLine {
        let message = try WireCoding.decode(EvacuationStreamMessage.self, from: Data(text.utf8))
        guard let update = message.update else {
            throw BodyError(message: "an evacuation stream line without plan, progress, result, error or summary: \(text.prefix(200))")
        }
        return EvacuationStreamLine(text: text, update: update)
    }
}
