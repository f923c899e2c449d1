import Foundation
import CorralModel
import Hummingbird
import JSON
import NIOCore
import CorralWire
import Supervisor

extension CorralAPI {
    /// Live migration, when the control object offers `MigrationControl`; otherwise 501 `not-supported`.
    ///
    /// Peer routes (another daemon calls them over TCP with the token): `migrations/incoming`,
    /// `…/{name}/commit`, `…/{name}/abort`. Local routes: `vms/{name}/migrate` (streamed NDJSON)
    /// and `vms/{name}/migrate/cancel`.
    func addMigrationRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let migration = control as? any MigrationControl
        let control = self.control
        @Sendable func require() throws(NotSupportedError) -> any MigrationControl {
            guard let migration else { throw NotSupportedError(feature: "migration") }
            return migration
        }

        v1.post("migrations/incoming") { request, context in
            let migration = try require()
            let body = try await Self.decodeBody(IncomingRequest.self, request, context)
            return try Reply.json(try await migration.prepareIncoming(body))
        }
        v1.post("migrations/incoming/:name/commit") { _, context in
            let migration = try require()
            return try Reply.json(try await migration.commitIncoming(Self.name(context)))
        }
        v1.post("migrations/incoming/:name/abort") { _, context in
            let migration = try require()
            try await migration.abortIncoming(Self.name(context))
            return Response(status: .noContent)
        }
        v1.post("vms/:name/migrate") { request, context in
            let migration = try require()
            let name = try Self.name(context)
            let body = try await Self.decodeBody(MigrateRequest.self, request, context)
            // What can be refused at once gets a proper HTTP status instead of a streamed error line.
            do throws(RequestProblems) { try body.validate() } catch { throw ControlError(error) }
            _ = try await control.status(name)
            // Subscribe before starting, so no progress event is missed.
            let events = await control.events(vm: name, history: 0)
            return Self.migrationStream(name: name, request: body, migration: migration, events: events,
                                        channel: context.channel)
        }
        v1.post("vms/:name/migrate/cancel") { _, context in
            let migration = try require()
            try await migration.cancelMigration(Self.name(context))
            return Response(status: .noContent)
        }
    }

    /// What the stream waits on: the VM's events and the migration's end.
    private enum MigrationStreamItem: Sendable {
        case event(CorralEvent)
        case eventsEnded
        case finished(Result<MigrationResult, ControlError>)
    }

    /// NDJSON: every `migration-progress` event as it comes, then one `MigrateOutcome` line.
    ///
    /// The migration runs in its own task, not in the response's: a client that goes away (a closed
    /// terminal) must not cancel a migration half-way; `migrate/cancel` is the way to stop one.
    private static func migrationStream(name: String, request: MigrateRequest, migration: any MigrationControl,
                                        events: AsyncStream<CorralEvent>, channel: any Channel) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        let job = Task { () async -> Result<MigrationResult, ControlError> in
            do throws(ControlError) {
                return .success(try await migration.migrate(name, request))
            } catch {
                return .failure(error)
            }
        }
        let body = StreamRelay.body(first: nil, channel: channel) { sink in
            let (items, feed) = AsyncStream<MigrationStreamItem>.makeStream(bufferingPolicy: .unbounded)
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await event in events { feed.yield(.event(event)) }
                    feed.yield(.eventsEnded)
                }
                group.addTask {
                    feed.yield(.finished(await job.value))
                }
                let encoder = WireCoding.encoder()
                func write(_ value: some Encodable) {
                    guard var data = try? encoder.encode(value) else { return }
                    data.append(UInt8(ascii: "\n"))
                    sink.yield(ByteBuffer(bytes: data))
                }
                // The manager publishes `migrated`/`migration-failed` before `migrate` returns, once it
                // has published `migration-started`; wait for that last event so the final progress
                // line is not lost to the race between the two tasks.
                var started = false
                var ended = false
                var eventsOver = false
                var outcome: Result<MigrationResult, ControlError>?
                loop: for await item in items {
                    switch item {
                    case .event(let event):
                        switch event.name {
                        case "migration-progress": write(event)
                        case "migration-started": started = true
                        case "migrated", "migration-failed": ended = true
                        default: break
                        }
                    case .eventsEnded:
                        eventsOver = true
                    case .finished(let result):
                        outcome = result
                    }
                    if let outcome, !started || ended || eventsOver {
                        switch outcome {
                        case .success(let result): write(MigrateOutcome(result: result))
                        case .failure(let error): write(MigrateOutcome(error: ErrorBody(error)))
                        }
                        break loop
                    }
                }
                feed.finish()
                group.cancelAll()
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
