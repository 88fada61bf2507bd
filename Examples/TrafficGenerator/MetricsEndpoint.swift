import Flagpole
import Hummingbird
import Prometheus

extension FlagpoleClient.Configuration {
    /// This configuration with the client's metrics going to `registry`.
    func reportingMetrics(to registry: PrometheusCollectorRegistry) -> Self {
        var configuration = self
        configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)
        return configuration
    }
}

extension Router {
    /// `GET /metrics`: everything in `registry`, in the Prometheus text format.
    func addMetrics(_ registry: PrometheusCollectorRegistry) {
        get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}
