import Foundation
import CorralModel
import Hummingbird
import JSON
import NIOCore
import CorralWire
import CorralControl

extension CorralAPI {
    /// Live migration.
    ///
    /// Peer routes (another daemon calls them over TCP with the token): `migrations/incoming`,
    /// `…/{name}/commit`, `…/{name}/abort`. Local routes: `vms/{name}/migrate` (streamed NDJSON)
    /// and `vms/{name}/migrate/cancel`.
    func addMigrationRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let migration = self.control

        v1.post("migrations/incoming") { request, context in
            let body = try await Self.decodeBody(IncomingRequest.self, request, context)
            return try Reply.json(try await migration.prepareIncoming(body))
        }
        v1.post("migrations/incoming/:name/commit") { _, context in
            return try Reply.json(try await migration.commitIncoming(Self.name(context)))
        }
        v1.post("migrations/incoming/:name/abort") { _, context in
            try await migration.abortIncoming(Self.name(context))
            return Response(status: .noContent)
        }
        v1.post("vms/:name/migrate") { request, context in
            let body = try await Self.decodeBody(MigrateRequest.self, request, context)
            // Refusals (bad options, no such VM, wrong state) throw here and get a proper HTTP status;
            // from then on the outcome is the stream's last line.
            let updates = try await migration.migrate(Self.name(context), body)
            return Self.migrationStream(updates, channel: context.channel)
        }
        v1.post("vms/:name/migrate/cancel") { _, context in
            try await migration.cancelMigration(Self.name(context))
            return Response(status: .noContent)
        }
    }

    /// NDJSON: one `{"progress": …}` line per update, then one `{"result": …}` or `{"error": …}` line.
    ///
    /// The migration belongs to the daemon, not to this response: a client that goes away (a closed terminal)
    /// only stops reading; `migrate/cancel` is the way to stop a migration.
    private static func migrationStream(_ updates: AsyncStream<MigrationUpdate>, channel: any Channel) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        let body = StreamRelay.body(first: nil, channel: channel) { sink in
            let encoder = WireCoding.encoder()
            for await update in updates {
                guard var data = try? encoder.encode(MigrationStreamMessage(update)) else { continue }
                data.append(UInt8(ascii: "\n"))
                sink.yield(ByteBuffer(bytes: data))
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
