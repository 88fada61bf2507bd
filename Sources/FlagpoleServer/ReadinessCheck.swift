/// Something that adds lines to `/metrics` (the Prometheus text format, version 0.0.4): the
/// rollout watcher, say. The daemon appends each provider's text after its own.
///
/// ```swift
/// struct WatcherMetrics: MetricsExposition {
///     func prometheusText() -> String {
///         "# TYPE flagpole_watcher_rollouts gauge\nflagpole_watcher_rollouts 2\n"
///     }
/// }
/// ```
public protocol MetricsExposition: Sendable {
    /// Complete lines (`# HELP`, `# TYPE` and samples), each ending in a newline.
    func prometheusText() -> String
}

/// Metrics from a closure.
public struct MetricsClosure: MetricsExposition {
    private let body: @Sendable () -> String

    /// Metrics that `body` renders on every scrape.
    public init(_ body: @escaping @Sendable () -> String) {
        self.body = body
    }

    public func prometheusText() -> String { body() }
}

/// One condition `/readyz` checks besides the client's own readiness (the watcher holding its
/// lease, say).
public struct ReadinessCheck: Sendable {
    /// What is checked, shown in `/readyz`'s body (e.g. `watcher`).
    public var name: String
    /// Nil when ready, else why not (one line).
    public var check: @Sendable () -> String?

    /// A check named `name`; `check` returns nil when ready, else why not.
    public init(name: String, check: @escaping @Sendable () -> String?) {
        self.name = name
        self.check = check
    }
}

/// Writes Prometheus text.
enum Prometheus {
    /// `name{labels} value`, with label values escaped.
    static func sample(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: Double) -> String {
        var line = name
        if !labels.isEmpty {
            line += "{"
            line += labels.map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",")
            line += "}"
        }
        line += " "
        if value == value.rounded(), abs(value) < 1e15 {
            line += String(Int64(value))
        } else {
            line += "\(value)"
        }
        return line + "\n"
    }

    static func header(_ name: String, _ type: String, _ help: String) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
