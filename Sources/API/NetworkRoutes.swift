import CorralModel
import Hummingbird
import CorralWire
import CorralControl

extension CorralAPI {
    /// Managed networks: create, list, show, remove.
    func addNetworkRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let control = self.control
        v1.post("networks") { request, context in
            let body = try await Self.decodeBody(NetworkCreateRequest.self, request, context)
            return try Reply.json(try await control.createNetwork(body), status: .created)
        }
        v1.get("networks") { _, _ in
            try Reply.json(await control.networks())
        }
        v1.get("networks/:network") { _, context in
            try Reply.json(try await control.network(Self.parameter("network", context)))
        }
        v1.delete("networks/:network") { _, context in
            try await control.removeNetwork(Self.parameter("network", context))
            return Response(status: .noContent)
        }
    }
}
