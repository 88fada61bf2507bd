import Prometheus

/// Requests served, by endpoint and status, and how long they took, in the daemon's registry:
/// `flagpole_daemon_requests_total{endpoint,status}` (one atomic add per request) and
/// `flagpole_daemon_request_duration_seconds{endpoint}`.
final class RequestCounters: Sendable {
    enum Endpoint: Int, CaseIterable {
        case evaluate, bulk, outcomes
        var label: String {
            switch self {
            case .evaluate: "evaluate"
            case .bulk: "bulk"
            case .outcomes: "outcomes"
            }
        }
    }

    /// The statuses counted; anything else counts as the last (`other`).
    static let statuses: [Int] = [200, 202, 304, 400, 401, 403, 404, 413, 415, 429, 500, 0]

    /// The latency buckets: an in-memory answer takes microseconds, so they start at 50 µs.
    static let durationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .seconds(1), .seconds(5),
    ]

    private let counters: [Counter]
    private let durations: [DurationHistogram]

    /// Registers every endpoint and status at zero in `registry`.
    init(registry: PrometheusCollectorRegistry) {
        let requests = MetricNameDescriptor(
            namespace: nil, subsystem: nil, metricName: "flagpole_daemon_requests_total", unitName: "",
            helpText: "HTTP requests served by flagctl daemon, by endpoint and status.")
        let latency = MetricNameDescriptor(
            namespace: nil, subsystem: nil, metricName: "flagpole_daemon_request_duration_seconds", unitName: "",
            helpText: "How long flagctl daemon took to answer a request, from its head to the answer, by endpoint.")
        var counters: [Counter] = []
        for endpoint in Endpoint.allCases {
            for status in Self.statuses {
                let labels = [("endpoint", endpoint.label), ("status", status == 0 ? "other" : String(status))]
                counters.append(registry.makeCounter(descriptor: requests, labels: labels))
            }
        }
        self.counters = counters
        durations = Endpoint.allCases.map {
            registry.makeDurationHistogram(descriptor: latency, labels: [("endpoint", $0.label)], buckets: Self.durationBuckets)
        }
    }

    private static func statusIndex(_ status: Int) -> Int {
        statuses.firstIndex(of: status) ?? statuses.count - 1
    }

    func count(_ endpoint: Endpoint, status: Int) {
        counters[endpoint.rawValue * Self.statuses.count + Self.statusIndex(status)].increment()
    }

    /// Records how long a request to `endpoint` took, from `start` until now.
    func time(_ endpoint: Endpoint, since start: ContinuousClock.Instant) {
        durations[endpoint.rawValue].record(start.duration(to: .now))
    }
}
