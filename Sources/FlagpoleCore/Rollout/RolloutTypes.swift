/// What the watcher measured for one cohort of a rollout step: outcomes that succeeded and failed,
/// and, when the source knows it, the 95th-percentile latency.
///
/// Counts are `Double` because a Prometheus source answers with `increase()` values, which are
/// not whole numbers; the built-in counters always give whole numbers.
public struct CohortCounts: Sendable, Hashable {
    public var successes: Double
    public var failures: Double
    /// The cohort's 95th-percentile latency in microseconds, when known.
    public var p95LatencyMicros: Double?

    public init(successes: Double = 0, failures: Double = 0, p95LatencyMicros: Double? = nil) {
        self.successes = successes
        self.failures = failures
        self.p95LatencyMicros = p95LatencyMicros
    }

    /// Every outcome of the cohort.
    public var total: Double { successes + failures }

    /// Failures over all outcomes; nil with no outcomes.
    public var errorRate: Double? { total > 0 ? failures / total : nil }
}

/// The limits a rollout step is judged by, fully resolved (flag metadata, then project config,
/// then ``GuardPolicy/builtIn``, then the command line).
public struct GuardLimits: Sendable, Hashable {
    /// The absolute ceiling on the treatment's error rate (0…1): above it, revert at once.
    public var maxErrorRate: Double
    /// How far the treatment's error rate may exceed the control's, in absolute terms (0.01 = one
    /// percentage point), before the step is reverted.
    public var maxErrorIncrease: Double
    /// The fewest outcomes each cohort needs before anything but "hold" is decided.
    public var minSamples: Int
    /// The ceiling on the treatment's p95 latency in microseconds; nil means not checked.
    public var maxP95LatencyMicros: Double?

    public init(maxErrorRate: Double, maxErrorIncrease: Double, minSamples: Int, maxP95LatencyMicros: Double? = nil) {
        self.maxErrorRate = maxErrorRate
        self.maxErrorIncrease = maxErrorIncrease
        self.minSamples = minSamples
        self.maxP95LatencyMicros = maxP95LatencyMicros
    }
}

/// What the watcher does with a rollout step after one look.
public enum RolloutVerdict: String, Sendable, Hashable, CaseIterable {
    /// Too little data, the step's watch is not over, or the metric source failed. Never a pass.
    case hold
    /// The step was watched long enough and is healthy: go to the next step.
    case advance
    /// The last step was watched long enough and is healthy: the rollout is done.
    case complete
    /// The treatment is worse than allowed: put the flag back as it was before the rollout.
    case revert
}
