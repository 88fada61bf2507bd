import FlagpoleCore

/// Which outcomes of a flag make up a cohort.
public enum CohortSelector: Sendable, Hashable {
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
public struct CohortQuery: Sendable, Hashable {
    public var environment: String
    public var flag: String
    public var cohort: CohortSelector
    /// `treatment` or `control`, for sources whose queries name the cohort.
    public var role: String
    public var from: Int64
    public var to: Int64

    public init(environment: String, flag: String, cohort: CohortSelector, role: String, from: Int64, to: Int64) {
        self.environment = environment
        self.flag = flag
        self.cohort = cohort
        self.role = role
        self.from = from
        self.to = to
    }
}

/// Where the watcher reads a cohort's outcomes from: the client library's counters in Redis, or a
/// Prometheus query. A thrown error means "the metric source failed", which the watcher turns
/// into a hold, never a pass.
public protocol RolloutMetricSource: Sendable {
    /// `builtin` or `prometheus`, for status and the audit.
    var name: String { get }
    func counts(_ query: CohortQuery) async throws -> CohortCounts
}
