import CorralModel
import Hummingbird
import CorralWire
import Supervisor

extension CorralAPI {
    /// Balloon, guest statistics, live tuning and the host report, when the control object
    /// offers `TuningControl`; otherwise these routes answer 501 `not-supported`.
    func addTuningRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let tuning = control as? any TuningControl
        @Sendable func require() throws(NotSupportedError) -> any TuningControl {
            guard let tuning else { throw NotSupportedError(feature: "overcommit tuning") }
            return tuning
        }

        v1.post("vms/:name/balloon") { request, context in
            let control = try require()
            let body = try await Self.decodeBody(BalloonRequest.self, request, context)
            return try Reply.json(try await control.balloon(Self.name(context), size: body.size))
        }
        v1.get("vms/:name/stats") { _, context in
            let control = try require()
            return try Reply.json(try await control.stats(Self.name(context)))
        }
        v1.post("vms/:name/tuning") { request, context in
            let control = try require()
            let body = try await Self.decodeBody(TuningRequest.self, request, context)
            return try Reply.json(try await control.setTuning(Self.name(context), body))
        }
        v1.get("host") { _, _ in
            let control = try require()
            return try Reply.json(await control.host())
        }
    }
}
