import Synchronization

/// Requests served, by endpoint and status, for `/metrics`: one atomic add per request.
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

    /// The statuses counted; anything else counts as the last.
    static let statuses: [Int] = [200, 202, 304, 400, 401, 403, 404, 413, 415, 429, 500, 0]

    private let cells: [Cell]

    final class Cell: Sendable {
        let value = Atomic<Int>(0)
    }

    init() {
        cells = (0..<(Endpoint.allCases.count * Self.statuses.count)).map { _ in Cell() }
    }

    private static func statusIndex(_ status: Int) -> Int {
        statuses.firstIndex(of: status) ?? statuses.count - 1
    }

    func count(_ endpoint: Endpoint, status: Int) {
        cells[endpoint.rawValue * Self.statuses.count + Self.statusIndex(status)].value.wrappingAdd(1, ordering: .relaxed)
    }

    func value(_ endpoint: Endpoint, status: Int) -> Int {
        cells[endpoint.rawValue * Self.statuses.count + Self.statusIndex(status)].value.load(ordering: .relaxed)
    }

    /// Prometheus lines for every non-zero counter.
    func prometheusText() -> String {
        var out = Prometheus.header("flagpole_daemon_requests_total", "counter", "HTTP requests served by flagctl daemon, by endpoint and status.")
        for endpoint in Endpoint.allCases {
            for status in Self.statuses {
                let n = value(endpoint, status: status)
                guard n > 0 else { continue }
                out += Prometheus.sample(
                    "flagpole_daemon_requests_total", ["endpoint": endpoint.label, "status": status == 0 ? "other" : String(status)], Double(n))
            }
        }
        return out
    }
}
