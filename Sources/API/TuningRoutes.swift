import CorralModel
import Hummingbird
import CorralWire
import CorralControl

extension CorralAPI {
    /// Balloon, guest statistics, live tuning and the host report.
    func addTuningRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let control = self.control

        v1.post("vms/:name/balloon") { request, context in
            let body = try await Self.decodeBody(BalloonRequest.self, request, context)
            return try Reply.json(try await control.balloon(Self.name(context), size: body.size))
        }
        v1.get("vms/:name/stats") { _, context in
            return try Reply.json(try await control.stats(Self.name(context)))
        }
        v1.post("vms/:name/tuning") { request, context in
            let body = try await Self.decodeBody(TuningRequest.self, request, context)
            return try Reply.json(try await control.setTuning(Self.name(context), body))
        }
        v1.get("host") { _, _ in
            return try Reply.json(await control.host())
        }
    }
}
