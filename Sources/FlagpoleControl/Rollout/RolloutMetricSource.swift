import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore

/// Which outcomes of a flag make up a cohort.
package enum CohortSelector: Sendable, Hashable {
    /// Outcomes under this variant (the treatment).
    case variant(String)
    /// Outcomes under any variant but this one, the caller's code default included (the control
    /// while a step is below 100 %).
    case allBut(String)
    /// Every outcome of the flag (the control at 100 %: the window before the rollout began).
    case all
}

/// One question to a metric source: a flag's cohort over a window of Unix seconds, `from` included,
/// `to` excluded.
package struct CohortQuery: Sendable, Hashable {
    package var environment: String
    package var flag: String
    package var cohort: CohortSelector
    /// `treatment` or `control`, for sources whose queries name the cohort.
    package var role: String
    package var from: Int64
    package var to: Int64
    /// The rollout's target variant, for sources whose queries name it (`$variant`) when the
    /// cohort itself does not (``CohortSelector/all``). Default: nil (the selector's variant).
    package var targetVariant: String?

    package init(environment: String, flag: String, cohort: CohortSelector, role: String, from: Int64, to: Int64) {
        self.environment = environment
        self.flag = flag
        self.cohort = cohort
        self.role = role
        self.from = from
        self.to = to
    }

    /// The variant the query is about: the selector's, else ``targetVariant``, else nil.
    package var variant: String? {
        switch cohort {
        case .variant(let v), .allBut(let v): return v
        case .all: return targetVariant
        }
    }
}

extension CohortSelector {
    /// Whether outcomes recorded under `variant` (nil: the code default) belong to the cohort.
    package func contains(variant: String?) -> Bool {
        switch self {
        case .variant(let v): return variant == v
        case .allBut(let v): return variant != v
        case .all: return true
        }
    }
}

/// A metric source could not answer: Redis or Prometheus failed, answered something unusable, or
/// the source is misconfigured. The watcher holds (never passes) on it. The description names the
/// source, the Redis key or the Prometheus URL and query, never a password.
package struct MetricSourceError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure, opaque so that kinds can be added.
    package struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The source is set up wrong (no query, a bad URL, an unknown metric).
        package static let configuration = Code("configuration")
        /// Redis failed or holds something other than outcome counters.
        package static let redis = Code("redis")
        /// The HTTP request failed, timed out, or answered a non-success status.
        package static let http = Code("http")
        /// The answer was not what a cohort's number must be (not JSON, an error status, no
        /// sample, several series, NaN, out of range).
        package static let badResponse = Code("badResponse")
        package var description: String { name }
    }

    /// The kind of failure.
    package var code: Code
    /// What went wrong, where, and how to fix it when that is known.
    package var message: String
    /// The error underneath, if any.
    package var underlying: (any Error)?

    /// An error from its parts.
    package init(code: Code, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    package var description: String { message }
}

/// Where the watcher reads a cohort's outcomes from: the client library's counters in Redis, or a
/// Prometheus query. A thrown error means "the metric source failed", which the watcher turns
/// into a hold, never a pass.
package protocol RolloutMetricSource: Sendable {
    /// `builtin` or `prometheus`, for status and the audit.
    var name: String { get }
    func counts(_ query: CohortQuery) async throws -> CohortCounts
    /// The cohort's counts over the window and, when the source keeps them, minute by minute (the
    /// judge pairs the cohorts by minute and measures how errors cluster). Default: ``counts(_:)``
    /// with no minutes.
    func reading(_ query: CohortQuery) async throws -> CohortReading
    /// Several cohorts at once, in order (the watcher's treatment and control): a source may share
    /// the work. Default: ``reading(_:)`` for each.
    func readings(_ queries: [CohortQuery]) async throws -> [CohortReading]
}

extension RolloutMetricSource {
    package func reading(_ query: CohortQuery) async throws -> CohortReading {
        CohortReading(total: try await counts(query), minutes: nil)
    }

    package func readings(_ queries: [CohortQuery]) async throws -> [CohortReading] {
        var out: [CohortReading] = []
        for q in queries { out.append(try await reading(q)) }
        return out
    }
}

/// What a metric source read for one cohort.
package struct CohortReading: Sendable, Hashable {
    /// One minute's counts.
    package struct Minute: Sendable, Hashable {
        /// The Unix minute.
        package var minute: Int64
        package var counts: CohortCounts

        package init(minute: Int64, counts: CohortCounts) {
            self.minute = minute
            self.counts = counts
        }
    }

    /// The window's counts.
    package var total: CohortCounts
    /// Every minute the window touches, oldest first, each with its share of the window (see
    /// ``BuiltinMetricSource``); nil when the source has no per-minute counts (Prometheus).
    package var minutes: [Minute]?

    package init(total: CohortCounts, minutes: [Minute]?) {
        self.total = total
        self.minutes = minutes
    }
}

/// The metric source a resolved guard policy asks for (see ``ProjectConfig/guardPolicy(forFlagMetadata:)``
/// with the command line's options over it): a ``BuiltinMetricSource`` for `builtin` (the
/// default), a ``PrometheusMetricSource`` for `prometheus`: with the policy's query, whose sample
/// counts come from its requests query or else the built-in counters; without one, with the
/// default queries over Flagpole's own outcome series (``PrometheusMetricSource/Configuration/flagpoleOutcomes(url:timeout:)``).
///
/// - Parameters:
///   - policy: the resolved policy (``GuardPolicy/metric``, ``GuardPolicy/prometheusURL``, …).
///   - environment: the environment the source will be asked about (checked here).
///   - client: Redis, for the built-in counters.
///   - prometheusTimeout: how long one Prometheus request may take. Default: 5 s.
///   - now: the current Unix second, for pro-rating the counters' running minute (see
///     ``BuiltinMetricSource``). Default: the wall clock; a watcher on an injected clock passes its own.
/// - Throws: ``MetricSourceError`` with code `configuration` naming what is missing and where to
///   set it (e.g. `metric prometheus needs prometheusUrl …`).
package func makeMetricSource(
    policy: GuardPolicy, environment: String, client: RedisClient, prometheusTimeout: Duration = .seconds(5),
    now: @escaping @Sendable () -> Int64 = UnixClock.now
) throws -> any RolloutMetricSource {
    guard StoreLayout.isValidEnvironmentName(environment) else {
        throw MetricSourceError(code: .configuration, message: "metric source: \"\(environment)\" is not an environment name")
    }
    let builtin = BuiltinMetricSource(client: client, now: now)
    switch policy.metric ?? .builtin {
    case .builtin:
        return builtin
    case .prometheus:
        if let problem = policy.metricProblem {
            throw MetricSourceError(code: .configuration, message: "\(problem.message); \(problem.hint)")
        }
        let url = policy.prometheusURL ?? ""
        guard let errorRatioQuery = policy.prometheusQuery else {
            // No query of the team's own: Flagpole's own outcome series, sample counts and p95 too.
            var configuration = PrometheusMetricSource.Configuration.flagpoleOutcomes(url: url, timeout: prometheusTimeout)
            if let requests = policy.prometheusRequestsQuery { configuration.requestsQuery = requests }
            return try PrometheusMetricSource(configuration: configuration, counters: builtin)
        }
        return try PrometheusMetricSource(
            configuration: .init(
                url: url, errorRatioQuery: errorRatioQuery, requestsQuery: policy.prometheusRequestsQuery, timeout: prometheusTimeout),
            counters: builtin)
    }
}
