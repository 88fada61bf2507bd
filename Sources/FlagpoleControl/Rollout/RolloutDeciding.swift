import FlagpoleCore
import FlagpoleRollout

/// One decision about a rollout step: the verdict, why in words, and the evidence for the audit.
package struct RolloutDecision: Sendable, Hashable {
    package var verdict: RolloutVerdict
    /// Why, for people (`treatment error rate 7.1% is above the ceiling 5%`).
    package var reason: String
    /// The numbers behind it (counts, rates, statistic, threshold), for the audit and alerts.
    package var evidence: JSONValue

    /// Creates a decision.
    package init(verdict: RolloutVerdict, reason: String, evidence: JSONValue = .object([:])) {
        self.verdict = verdict
        self.reason = reason
        self.evidence = evidence
    }
}

/// What one look at a rollout step is judged on.
package struct RolloutLook: Sendable, Hashable {
    package var limits: GuardLimits
    package var treatment: CohortCounts
    package var control: CohortCounts
    /// How long the step has been watched.
    package var stepElapsed: Duration
    /// How long each step is to be watched.
    package var stepWatch: Duration
    package var isFinalStep: Bool
    /// Why the metric source failed, if it did (then the verdict is hold).
    package var sourceFailure: String?
    /// The same counts minute by minute, when the source keeps them (the built-in counters do).
    package var minutes: StepMinutes?
    /// Whether the control is concurrent (below 100 %, or a holdback) or the window before the
    /// rollout, with the flag's minutes before it. Default: concurrent.
    package var controlWindow: ControlWindow

    /// Creates a look.
    package init(
        limits: GuardLimits, treatment: CohortCounts, control: CohortCounts, stepElapsed: Duration, stepWatch: Duration,
        isFinalStep: Bool, sourceFailure: String? = nil, minutes: StepMinutes? = nil, controlWindow: ControlWindow = .concurrent
    ) {
        self.minutes = minutes
        self.controlWindow = controlWindow
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
/// that the statistics live in one place: ``RolloutJudgeDecider`` (the watcher's default, and the
/// only decider Flagpole ships) wraps ``RolloutJudge``, which `flagctl rollout simulate` replays.
package protocol RolloutDeciding: Sendable {
    func decide(_ look: RolloutLook) -> RolloutDecision
}

/// The statistical judge (``RolloutJudge``: an absolute ceiling, a minimum sample, and a
/// sequential test that stays honest across repeated looks) as the watcher's decider: the default of
/// ``RolloutWatcher/init(configuration:client:metricSource:decider:alerts:clock:logger:)``.
package struct RolloutJudgeDecider: RolloutDeciding {
    /// The false-revert bound of each sequential test. Default: 0.01.
    package var alpha: Double

    /// Creates the decider.
    package init(alpha: Double = 0.01) {
        self.alpha = alpha
    }

    package func decide(_ look: RolloutLook) -> RolloutDecision {
        let j = RolloutJudge(limits: look.limits, alpha: alpha).judge(
            treatment: look.treatment, control: look.control, stepElapsed: look.stepElapsed, stepWatch: look.stepWatch,
            isFinalStep: look.isFinalStep, sourceFailure: look.sourceFailure, minutes: look.minutes, controlWindow: look.controlWindow)
        return RolloutDecision(verdict: j.verdict, reason: j.reason, evidence: j.evidence)
    }
}
