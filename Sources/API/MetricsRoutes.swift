import CorralControl
import Hummingbird
import NIOCore

extension CorralAPI {
    /// `GET /metrics`: the Prometheus text exposition (docs/metrics.md), at the root where scrapers look for it.
    func addMetricsRoutes(_ router: Router<CorralRequestContext>) {
        let control = self.control
        router.get("metrics") { _, _ in
            let clock = ContinuousClock()
            let started = clock.now
            let snapshot = await control.metricsSnapshot()
            let elapsed = started.duration(to: clock.now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let text = MetricsExposition.render(snapshot, scrapeSeconds: seconds)
            var headers = HTTPFields()
            headers[.contentType] = MetricsExposition.contentType
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
