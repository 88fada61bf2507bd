import FlagpoleCore

/// What the watcher measured for one cohort of a rollout step: outcomes that succeeded and failed,
/// and, when the source knows it, the 95th-percentile latency.
///
/// Counts are `Double` because a Prometheus source answers with `increase()` values, which are
/// not whole numbers; the built-in counters always give whole numbers.
package struct CohortCounts: Sendable, Hashable {
    package var successes: Double
    package var failures: Double
    /// The cohort's 95th-percentile latency in microseconds, when known.
    package var p95LatencyMicros: Double?

    package init(successes: Double = 0, failures: Double = 0, p95LatencyMicros: Double? = nil) {
        self.successes = successes
        self.failures = failures
        self.p95LatencyMicros = p95LatencyMicros
    }

    /// Every outcome of the cohort.
    package var total: Double { successes + failures }

    /// Failures over all outcomes; nil with no outcomes.
    package var errorRate: Double? { total > 0 ? failures / total : nil }

    /// Adds another count's successes and failures (not its latency).
    package mutating func add(_ other: CohortCounts) {
        successes += other.successes
        failures += other.failures
    }
}

/// The limits a rollout step is judged by, fully resolved (flag metadata, then project config,
/// then ``GuardPolicy/builtIn``, then the command line).
package struct GuardLimits: Sendable, Hashable {
    /// The absolute ceiling on the treatment's error rate (0…1): above it, revert at once.
    package var maxErrorRate: Double
    /// How far the treatment's error rate may exceed the control's, in absolute terms (0.01 = one
    /// percentage point), before the step is reverted.
    package var maxErrorIncrease: Double
    /// The fewest outcomes each cohort needs before anything but "hold" is decided.
    package var minSamples: Int
    /// The ceiling on the treatment's p95 latency in microseconds; nil means not checked.
    package var maxP95LatencyMicros: Double?

    package init(maxErrorRate: Double, maxErrorIncrease: Double, minSamples: Int, maxP95LatencyMicros: Double? = nil) {
        self.maxErrorRate = maxErrorRate
        self.maxErrorIncrease = maxErrorIncrease
        self.minSamples = minSamples
        self.maxP95LatencyMicros = maxP95LatencyMicros
    }
}

/// What the watcher does with a rollout step after one look.
package enum RolloutVerdict: String, Sendable, Hashable, CaseIterable {
    /// Too little data, the step's watch is not over, or the metric source failed. Never a pass.
    case hold
    /// The step was watched long enough and is healthy: go to the next step.
    case advance
    /// The last step was watched long enough and is healthy: the rollout is done.
    case complete
    /// The treatment is worse than allowed: put the flag back as it was before the rollout.
    case revert
}

/// A step's outcomes minute by minute, as the built-in counters keep them: what lets the judge
/// pair the cohorts by minute, measure how much errors cluster in time, and tell an incident's
/// minutes from the rest (see ``RolloutJudge``).
package struct StepMinutes: Sendable, Hashable {
    /// The treatment's counts per minute, oldest first.
    package var treatment: [CohortCounts]
    /// The control's counts per minute, oldest first: the same minutes as ``treatment`` when the
    /// control is concurrent; the minutes of the window before the rollout when it is not.
    package var control: [CohortCounts]
    /// For each treatment minute, how many of its seconds lie inside the step so far: 60 for a
    /// whole minute, less for the minute the step began in and the minute now running. The step's
    /// clock leaves out the seconds of incident minutes.
    package var stepSeconds: [Double]
    /// The treatment's share of the flag's outcomes during the step (its percentage, or 1 − the
    /// holdback), when known. A concurrent minute whose cohorts' outcomes are far from this split
    /// (a control odds more than twice, or less than half, the split's; for an incident's minute,
    /// more than 1.25 times) holds outcomes from before the step — the minute it began in, late
    /// outcomes after it — and is not compared.
    package var treatmentShare: Double?

    /// Creates a step's minutes.
    package init(treatment: [CohortCounts], control: [CohortCounts], stepSeconds: [Double], treatmentShare: Double? = nil) {
        self.treatment = treatment
        self.control = control
        self.stepSeconds = stepSeconds
        self.treatmentShare = treatmentShare
    }
}

/// What the treatment is compared with.
package enum ControlWindow: Sendable, Hashable {
    /// The flag's other users at the same time: the rest of the split below 100 %, or the holdback
    /// at 100 %. Its minutes are the treatment's minutes.
    case concurrent
    /// At 100 % without a holdback: the window of the same length before the rollout began.
    /// `baseline` is the flag's outcomes per minute before the rollout, oldest first, the last
    /// one the minute before the one the rollout began in — as many hours as the counters keep;
    /// the judge measures from it how far the baseline drifts between two such windows.
    case beforeRollout(baseline: [CohortCounts])
}
