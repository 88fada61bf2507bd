import FlagpoleCore

/// One decision about a rollout step: the verdict, why in words, and the evidence for the audit.
public struct RolloutDecision: Sendable, Hashable {
    public var verdict: RolloutVerdict
    /// Why, for people (`treatment error rate 7.1% is above the ceiling 5%`).
    public var reason: String
    /// The numbers behind it (counts, rates, statistic, threshold), for the audit and alerts.
    public var evidence: JSONValue

    /// Creates a decision.
    public init(verdict: RolloutVerdict, reason: String, evidence: JSONValue = .object([:])) {
        self.verdict = verdict
        self.reason = reason
        self.evidence = evidence
    }
}

/// What one look at a rollout step is judged on.
public struct RolloutLook: Sendable, Hashable {
    public var limits: GuardLimits
    public var treatment: CohortCounts
    public var control: CohortCounts
    /// How long the step has been watched.
    public var stepElapsed: Duration
    /// How long each step is to be watched.
    public var stepWatch: Duration
    public var isFinalStep: Bool
    /// Why the metric source failed, if it did (then the verdict is hold).
    public var sourceFailure: String?

    /// Creates a look.
    public init(
        limits: GuardLimits, treatment: CohortCounts, control: CohortCounts, stepElapsed: Duration, stepWatch: Duration,
        isFinalStep: Bool, sourceFailure: String? = nil
    ) {
        self.limits = limits
        self.treatment = treatment
        self.control = control
        self.stepElapsed = stepElapsed
        self.stepWatch = stepWatch
        self.isFinalStep = isFinalStep
        self.sourceFailure = sourceFailure
    }
}

/// Decides hold / advance / complete / revert from one look. The watcher is generic over this so
/// that the statistics (the sequential test behind ``RolloutVerdict``) live in one place.
public protocol RolloutDeciding: Sendable {
    func decide(_ look: RolloutLook) -> RolloutDecision
}

/// A plain threshold decision, the watcher's default until the statistical judge is wired in:
/// source failure or too few samples → hold; treatment error rate above the ceiling, treatment
/// p95 above its ceiling, or treatment error rate more than `maxErrorIncrease` above the
/// control's → revert; watched long enough → advance (complete on the last step); else hold.
public struct ThresholdRolloutDecider: RolloutDeciding {
    /// Creates the decider.
    public init() {}

    public func decide(_ look: RolloutLook) -> RolloutDecision {
        let t = look.treatment, c = look.control, l = look.limits
        var evidence: [String: JSONValue] = [
            "treatment": ["successes": .double(t.successes), "failures": .double(t.failures), "errorRate": t.errorRate.map { .double($0) } ?? .null],
            "control": ["successes": .double(c.successes), "failures": .double(c.failures), "errorRate": c.errorRate.map { .double($0) } ?? .null],
            "limits": [
                "maxErrorRate": .double(l.maxErrorRate), "maxErrorIncrease": .double(l.maxErrorIncrease), "minSamples": .int(Int64(l.minSamples)),
            ],
            "stepElapsedSeconds": .int(look.stepElapsed.components.seconds), "stepWatchSeconds": .int(look.stepWatch.components.seconds),
        ]
        if let failure = look.sourceFailure {
            evidence["sourceFailure"] = .string(failure)
            return RolloutDecision(verdict: .hold, reason: "no data: the metric source failed (\(failure))", evidence: .object(evidence))
        }
        func pct(_ x: Double) -> String {
            let v = (x * 1000).rounded() / 10
            return "\(v)%"
        }
        guard t.total >= Double(l.minSamples) else {
            return RolloutDecision(
                verdict: .hold, reason: "too few samples: treatment \(Int(t.total)) of \(l.minSamples) needed", evidence: .object(evidence))
        }
        if let rate = t.errorRate, rate > l.maxErrorRate {
            return RolloutDecision(
                verdict: .revert, reason: "treatment error rate \(pct(rate)) is above the ceiling \(pct(l.maxErrorRate))", evidence: .object(evidence))
        }
        if let ceiling = l.maxP95LatencyMicros, let p95 = t.p95LatencyMicros, p95 > ceiling {
            evidence["p95LatencyMicros"] = .double(p95)
            return RolloutDecision(
                verdict: .revert, reason: "treatment p95 latency \(Int(p95 / 1000)) ms is above the ceiling \(Int(ceiling / 1000)) ms",
                evidence: .object(evidence))
        }
        guard c.total >= Double(l.minSamples) else {
            return RolloutDecision(verdict: .hold, reason: "too few samples: control \(Int(c.total)) of \(l.minSamples) needed", evidence: .object(evidence))
        }
        if let tr = t.errorRate, let cr = c.errorRate, tr - cr > l.maxErrorIncrease {
            return RolloutDecision(
                verdict: .revert,
                reason: "treatment error rate \(pct(tr)) is \(pct(tr - cr)) above the control's \(pct(cr)) (at most \(pct(l.maxErrorIncrease)) allowed)",
                evidence: .object(evidence))
        }
        guard look.stepElapsed >= look.stepWatch else {
            return RolloutDecision(verdict: .hold, reason: "healthy so far; watching the step until its time is up", evidence: .object(evidence))
        }
        return RolloutDecision(
            verdict: look.isFinalStep ? .complete : .advance,
            reason: "healthy for the whole step: treatment \(pct(t.errorRate ?? 0)) vs control \(pct(c.errorRate ?? 0))",
            evidence: .object(evidence))
    }
}

/// The statistical judge (``RolloutJudge``: an absolute ceiling, a minimum sample, and a
/// sequential test that stays honest across repeated looks) as the watcher's decider. The default.
public struct RolloutJudgeDecider: RolloutDeciding {
    /// The false-revert bound of each sequential test. Default: 0.01.
    public var alpha: Double

    /// Creates the decider.
    public init(alpha: Double = 0.01) {
        self.alpha = alpha
    }

    public func decide(_ look: RolloutLook) -> RolloutDecision {
        let j = RolloutJudge(limits: look.limits, alpha: alpha).judge(
            treatment: look.treatment, control: look.control, stepElapsed: look.stepElapsed, stepWatch: look.stepWatch,
            isFinalStep: look.isFinalStep, sourceFailure: look.sourceFailure)
        return RolloutDecision(verdict: j.verdict, reason: j.reason, evidence: j.evidence)
    }
}
