import CorralControl
import CorralModel
import CorralWire
import Hummingbird
import NIOCore

extension CorralAPI {
    /// The cluster: `GET cluster`, `GET vms/{name}/placement?to=`, `POST hosts/{name}/evacuate|restore` (NDJSON).
    func addClusterRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let control = self.control
        v1.get("cluster") { _, _ in
            try Reply.json(await control.cluster())
        }
        v1.get("vms/:name/placement") { request, context in
            guard let to = request.uri.queryParameters.get("to"), !to.isEmpty else {
                throw ControlError.invalidRequest("to: a host's name or auto is required (?to=NAME|auto)")
            }
            return try Reply.json(try await control.placement(Self.name(context), to: to))
        }
        v1.post("hosts/:name/evacuate") { request, context in
            let body = try await Self.decodeOptionalBody(EvacuateRequest.self, request, context) ?? EvacuateRequest()
            let updates = try await control.evacuate(Self.name(context), body)
            return Self.evacuationStream(updates, channel: context.channel)
        }
        v1.post("hosts/:name/restore") { request, context in
            let body = try await Self.decodeOptionalBody(EvacuateRequest.self, request, context) ?? EvacuateRequest()
            let updates = try await control.restore(Self.name(context), body)
            return Self.evacuationStream(updates, channel: context.channel)
        }
    }

    /// NDJSON, one `EvacuationStreamMessage` per line. Like a migration, the evacuation belongs to the daemon: a
    /// client that goes away only stops reading.
    private static func evacuationStream(_ updates: AsyncStream<EvacuationUpdate>, channel: any Channel) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        let body = StreamRelay.body(first: nil, channel: channel) { sink in
            let encoder = WireCoding.encoder()
            for await update in updates {
                guard var data = try? encoder.encode(EvacuationStreamMessage(update)) else { continue }
                data.append(UInt8(ascii: "\n"))
                sink.yield(ByteBuffer(bytes: data))
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
