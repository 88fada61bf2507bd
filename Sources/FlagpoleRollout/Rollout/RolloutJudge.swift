import FlagpoleCore

/// What the judge decided about a rollout step after one look, why, and on what evidence.
package struct RolloutJudgement: Sendable, Hashable {
    /// Hold, advance, complete or revert.
    package var verdict: RolloutVerdict
    /// One line for people, e.g. `treatment error rate 3.1% vs control 1.0% (+2.1 pp > 1 pp
    /// allowed); sequential test z=4.2 > 3.6` or `not enough data: treatment 12 of 200 outcomes`.
    package var reason: String
    /// A JSON object for the audit: the check that decided (`check`), both cohorts' counts and
    /// rates, the difference, the deciding `statistic` and its `threshold`, `alpha`, the details of
    /// the sequential test, the ceiling test and the power check, and the step's elapsed and watch
    /// seconds.
    package var evidence: JSONValue

    /// Creates a judgement.
    package init(verdict: RolloutVerdict, reason: String, evidence: JSONValue) {
        self.verdict = verdict
        self.reason = reason
        self.evidence = evidence
    }
}

/// The watcher's decision: given one step's cumulative treatment and control counts (and, from the
/// built-in counters, the same minute by minute), hold, advance, complete or revert. Pure and
/// deterministic; it keeps no state between looks, so the watcher calls it at every look (every
/// 10 s by default) with the counts since the step began.
///
/// The checks, in order. The statistics, what they assume and the measured rates are explained in
/// [docs/rollouts.md, "How the watcher decides"](../../../docs/rollouts.md#how-the-watcher-decides).
///
/// 1. **Metric source failed** (or gave negative or non-numeric counts): hold, never a pass.
/// 2. **Incident minutes** — with a concurrent control (below 100 %, or a holdback at 100 %), a
///    minute in which the control is above ``GuardLimits/maxErrorRate`` (a thin one, under 200
///    outcomes, beyond chance), and a minute next to one whose control is above half of it, is an incident's: it is
///    left out of the ceiling, the power check, the pass, and the step's clock.
/// 3. **Error-rate ceiling** — revert when the treatment's rate over the other minutes is shown
///    above the ceiling (an exact mixture SPRT on at least ``ceilingMinSamples`` outcomes); over an
///    incident's minutes, when it is shown above 1.5 times the control's rate then plus the
///    allowance. With a concurrent control, only minutes whose cohorts are in the step's split
///    count (the minute the step began in and late outcomes mix in the control's from before it).
/// 4. **Latency ceiling** — revert when the treatment's p95 is above ``GuardLimits/maxP95LatencyMicros``.
/// 5. **Minimum sample** — hold below ``GuardLimits/minSamples`` in either cohort.
/// 6. **Sequential comparison** — revert when the treatment is significantly worse than the control
///    at α (mSPRT on the difference of error rates) *and* the data favour an increase beyond
///    ``GuardLimits/maxErrorIncrease``. The difference is paired by minute (weighted by each
///    minute's precision: a minute bad for both cohorts cancels and counts little), its variance
///    the binomial one times the dispersion measured between minutes (never less than binomial);
///    at 100 % without a holdback, plus the variance with which the baseline drifts between
///    windows of the step's length. With minutes known: two comparable minutes and 90 s first.
/// 7. **Incident** — an incident in the last two minutes: hold ("both cohorts are failing …"), so
///    nothing passes during it.
/// 8. **Watch** — hold until `stepWatch` has passed, not counting incident minutes.
/// 9. **Enough data to pass** — hold unless the data could have shown an increase of the allowed
///    size (one-sided α, 80 % power).
/// 10. **Healthy** — advance (or complete on the final step) when the increase plus one standard
///    error is within the allowance and the treatment is under the ceiling; else hold.
///
/// `alpha` is the chance of a false revert by either test when the treatment is in fact no worse
/// than the control (default 1 %, per step, however often the watcher looks).
package struct RolloutJudge: Sendable {
    /// The limits the step is judged by.
    package let limits: GuardLimits
    /// The false-revert bound of each sequential test (default `0.01`).
    package let alpha: Double

    /// ln(1/α), the threshold of both likelihood ratios.
    let logThreshold: Double
    /// ln 1: the threshold of the "beyond the allowance" test (the data favours beyond over at).
    static let marginLogThreshold = 0.0
    /// τ², the variance of the mSPRT's mixing distribution over the difference of rates.
    let tauSquared: Double
    /// The smallest increase the power check asks the data to be able to show: max(δ, 0.1 pp).
    let detectableIncrease: Double
    /// z₁₋α + z₀.₈.
    let powerZ: Double
    /// ln(pⱼ/c) and ln((1−pⱼ)/(1−c)) of the ceiling test's alternatives.
    let ceilingAlternatives: [(failure: Double, success: Double)]

    /// The fewest treatment outcomes before the ceilings can revert: 50, or ``GuardLimits/minSamples`` when smaller.
    package var ceilingMinSamples: Int { min(limits.minSamples, 50) }

    /// A judge for the given limits. `alpha` (default `0.01`) is the false-revert bound of each
    /// sequential test; values outside 1e-9…0.5 are clamped into it.
    package init(limits: GuardLimits, alpha: Double = 0.01) {
        let alpha = alpha.isNaN ? 0.01 : min(0.5, max(1e-9, alpha))
        self.limits = limits
        self.alpha = alpha
        self.logThreshold = RolloutMath.log(1 / alpha)
        let increase = limits.maxErrorIncrease.isFinite ? max(0, limits.maxErrorIncrease) : 0
        self.detectableIncrease = max(increase, 0.001)
        self.tauSquared = detectableIncrease * detectableIncrease
        self.powerZ = RolloutMath.normalQuantile(1 - alpha) + RolloutMath.normalQuantile(0.8)
        self.ceilingAlternatives = Self.alternatives(ceiling: limits.maxErrorRate)
    }

    /// Judges one look at a step from its cumulative counts.
    ///
    /// - Parameters:
    ///   - treatment: the step's cumulative outcomes from the cohort that got the new variant.
    ///   - control: the same from the cohort that did not (at 100 % without a holdback, the window
    ///     before the rollout).
    ///   - stepElapsed: how long the step has been running.
    ///   - stepWatch: how long the step is watched before it may pass.
    ///   - isFinalStep: whether passing completes the rollout rather than advancing it.
    ///   - sourceFailure: what went wrong reading the metric source, if it failed: the judge holds.
    ///   - minutes: the same counts minute by minute, when the source keeps them (the built-in
    ///     counters do); nil: the window is judged as one block, as if its outcomes were independent.
    ///   - controlWindow: whether the control is concurrent (default) or the window before the rollout.
    package func judge(
        treatment: CohortCounts, control: CohortCounts, stepElapsed: Duration, stepWatch: Duration,
        isFinalStep: Bool, sourceFailure: String? = nil, minutes: StepMinutes? = nil, controlWindow: ControlWindow = .concurrent
    ) -> RolloutJudgement {
        let a = assess(
            treatment: treatment, control: control, stepElapsed: stepElapsed, stepWatch: stepWatch,
            isFinalStep: isFinalStep, sourceFailure: sourceFailure, minutes: minutes, controlWindow: controlWindow)
        return RolloutJudgement(verdict: a.verdict, reason: reason(a), evidence: evidence(a))
    }

    // MARK: - The decision

    /// Which check decided a look.
    enum Check: String, Sendable {
        case sourceFailure, invalidCounts, ceiling, latency, minSamples, sequential, incident, watch, power, worse, healthy
    }

    /// The decision and every number behind it, before it is put in words.
    struct Assessment: Sendable {
        var verdict: RolloutVerdict
        var check: Check
        var treatment: CohortCounts
        var control: CohortCounts
        var elapsed: Duration
        var watch: Duration
        var isFinalStep: Bool
        var sourceFailure: String?
        /// Whether the control is concurrent.
        var concurrent = true
        /// p̂ₜ − p̂꜀, when both cohorts have outcomes.
        var difference: Double?
        /// The ceiling test's ln Λ, when it ran.
        var ceilingLogLR: Double?
        /// When the ceiling reverted over an incident's minutes: the ceiling it used there (the
        /// control's rate plus the allowance and two standard errors).
        var incidentCeiling: Double?
        var incidentCeilingTreatment = CohortCounts()
        /// The treatment's counts the error-rate ceiling was judged on.
        var ceilingTreatment = CohortCounts()
        var incidentCeilingControl = CohortCounts()
        /// The mSPRT's z, z*, ln Λ, when both cohorts reached the minimum sample.
        var z: Double?
        var zThreshold: Double?
        var sequentialLogLR: Double?
        var marginZ: Double?
        var marginLogLR: Double?
        var marginZThreshold: Double?
        /// The factor (≥ 1) by which the binomial variance of the difference was widened: the
        /// variance measured between minutes over the binomial one.
        var dispersion = 1.0
        /// At 100 % without a holdback: the variance of the baseline's drift between two windows of
        /// the step's length, added to the comparison's.
        var driftVariance = 0.0
        /// How many minutes the comparison saw, how many were comparable, and which were an incident's.
        var minuteCount = 0
        var comparableMinutes = 0
        var incidentMinutes = 0
        var incidentSeconds = 0.0
        /// Both cohorts over the incident minutes.
        var incidentTreatment = CohortCounts()
        var incidentControl = CohortCounts()
        /// Both cohorts over the other minutes: what the pass is judged on.
        var clearTreatment = CohortCounts()
        var clearControl = CohortCounts()
        /// The sequential test's threshold on ln Λ: ln(1/α), or ln(2/α) when it runs twice (incidents).
        var testThreshold = 0.0
        /// The difference the sequential test shown was on (the minutes that were not an incident's).
        var sequentialDifference: Double?
        /// δ − d − SE(d) at the end of the watch: the step passes only when it is ≥ 0.
        var healthyMargin: Double?
        /// The power check: the standard error at an increase of e, and the factor by which the
        /// sample must grow to be enough (≤ 1 when it is).
        var powerStandardError: Double?
        var powerGrowth: Double?

        /// Whether the hold means "not enough data".
        var isNotEnoughData: Bool { verdict == .hold && (check == .minSamples || check == .power) }
        /// The step's time that counts towards its watch: the elapsed time less the incident minutes'.
        var countedElapsed: Duration { .seconds(max(0, elapsed.rolloutSeconds - incidentSeconds)) }
    }

    /// The decision with its numbers; ``judge(treatment:control:stepElapsed:stepWatch:isFinalStep:sourceFailure:minutes:controlWindow:)``
    /// puts it in words. The simulator calls this directly, so it replays exactly the same decision.
    func assess(
        treatment: CohortCounts, control: CohortCounts, stepElapsed: Duration, stepWatch: Duration,
        isFinalStep: Bool, sourceFailure: String?, minutes: StepMinutes? = nil, controlWindow: ControlWindow = .concurrent
    ) -> Assessment {
        var a = Assessment(
            verdict: .hold, check: .sourceFailure, treatment: treatment, control: control, elapsed: stepElapsed,
            watch: stepWatch, isFinalStep: isFinalStep, sourceFailure: sourceFailure)
        a.testThreshold = logThreshold
        if sourceFailure != nil { return a }
        func usable(_ x: Double) -> Bool { x.isFinite && x >= 0 }
        func usableCounts(_ c: CohortCounts) -> Bool { usable(c.successes) && usable(c.failures) }
        guard usableCounts(treatment), usableCounts(control), treatment.p95LatencyMicros.map(usable) ?? true,
            minutes.map({ $0.treatment.allSatisfy(usableCounts) && $0.control.allSatisfy(usableCounts) }) ?? true
        else {
            a.check = .invalidCounts
            return a
        }
        var baseline: [CohortCounts] = []
        if case .beforeRollout(let b) = controlWindow {
            a.concurrent = false
            baseline = b
        }
        let c = limits.maxErrorRate
        let nt = treatment.total, nc = control.total
        let rateT = nt > 0 ? treatment.failures / nt : 0
        let rateC = nc > 0 ? control.failures / nc : 0
        if nt > 0 && nc > 0 { a.difference = rateT - rateC }

        // The minutes: as given, or the whole window as one block (its seconds not known).
        var tm = minutes?.treatment ?? [treatment]
        var cm = minutes?.control ?? [control]
        var seconds = minutes?.stepSeconds ?? [0]
        if a.concurrent && tm.count != cm.count {
            // Not aligned: judge the window as one block.
            tm = [treatment]
            cm = [control]
            seconds = [0]
        }
        a.minuteCount = tm.count(where: { $0.total > 0 })

        // 2. Incident minutes: the concurrent control above the ceiling (a thin one beyond chance:
        // two failures in six are not an incident), and the
        // minutes next to one whose control is above half the ceiling (an incident's edges, its
        // late outcomes).
        var incident = [Bool](repeating: false, count: tm.count)
        // The step's first minute, when the step began inside it, holds the treatment's outcomes
        // since the step began but the control's of the whole minute: their rates are not of the same
        // seconds, so it is an incident's when its control is above half the ceiling (and it is not
        // compared when its cohorts are off the split, below).
        let partialFirst = minutes != nil && (seconds.first ?? 60) < 60
        // Comparable minutes: their cohorts' outcomes are about in the step's split (see
        // ``StepMinutes/treatmentShare``); the others hold outcomes from before the step.
        var comparable = [Bool](repeating: true, count: tm.count)
        var oddsRatio = [Double](repeating: 1, count: tm.count)
        if a.concurrent, let share = minutes?.treatmentShare, share > 0, share < 1 {
            let expected = (1 - share) / share
            for i in tm.indices where i < cm.count {
                guard tm[i].total > 0, cm[i].total > 0 else { continue }
                oddsRatio[i] = (cm[i].total / tm[i].total) / expected
                comparable[i] = oddsRatio[i] <= Self.comparableOdds && oddsRatio[i] >= 1 / Self.comparableOdds
            }
        }
        if a.concurrent {
            for i in cm.indices where Self.isAbove(cm[i], rate: c) { incident[i] = true }
            let core = incident
            for i in cm.indices where !core[i] && cm[i].failures >= 2 && (cm[i].errorRate ?? 0) > c / 2 {
                if (i > 0 && core[i - 1]) || (i + 1 < core.count && core[i + 1]) || (i == 0 && partialFirst) { incident[i] = true }
            }
            // Within an incident the rate moves within the minute: there a smaller mix already
            // tells, so an incident minute is compared only when close to the split.
            for i in tm.indices where incident[i] {
                comparable[i] = comparable[i] && oddsRatio[i] <= Self.comparableIncidentOdds && oddsRatio[i] >= 1 / Self.comparableIncidentOdds
            }
        }
        a.comparableMinutes = comparable.count(where: { $0 })
        var clearT = CohortCounts(), clearC = CohortCounts()
        for i in tm.indices {
            if !comparable[i] && !incident[i] { continue }
            if incident[i] {
                a.incidentMinutes += 1
                a.incidentSeconds += i < seconds.count ? max(0, seconds[i]) : 0
                a.incidentTreatment.add(tm[i])
                a.incidentControl.add(cm[i])
            } else {
                clearT.add(tm[i])
                if a.concurrent { clearC.add(cm[i]) }
            }
        }
        if a.incidentMinutes == 0 && a.comparableMinutes == tm.count {
            clearT = treatment
            clearC = control
        } else if !a.concurrent {
            clearC = control
        }
        clearT.p95LatencyMicros = treatment.p95LatencyMicros
        a.clearTreatment = clearT
        a.clearControl = clearC
        let clearMinutes = tm.indices.filter { !incident[$0] && comparable[$0] }

        // 3. The error-rate ceiling, on the minutes that were not an incident's; and over the
        // incident's minutes, a ceiling at 1.5 times the control's rate then plus the allowance and
        // two of its standard errors (the treatment significantly worse than a failing control). With a
        // concurrent control, only over comparable minutes: one whose control holds outcomes from
        // before the step would not show an incident that began with the step.
        var ceilingT = clearT
        if a.concurrent && minutes != nil {
            ceilingT = CohortCounts()
            for i in tm.indices where !incident[i] && comparable[i] { ceilingT.add(tm[i]) }
        }
        if ceilingT.total >= Double(ceilingMinSamples) && ceilingT.total > 0 && (ceilingT.errorRate ?? 0) > c && c < 1 {
            a.ceilingLogLR = c <= 0 ? .infinity : ceilingLogLR(ceilingT)
            a.ceilingTreatment = ceilingT
            if let logLR = a.ceilingLogLR, logLR >= logThreshold {
                a.verdict = .revert
                a.check = .ceiling
                return a
            }
        }
        var it = CohortCounts(), ic = CohortCounts()
        for i in tm.indices where incident[i] && comparable[i] {
            it.add(tm[i])
            ic.add(cm[i])
        }
        if it.total >= Double(ceilingMinSamples), ic.total > 0 {
            let pc = ic.failures / ic.total
            let ceiling = Self.incidentTolerance * pc + max(0, limits.maxErrorIncrease) + 2 * (pc * (1 - pc) / ic.total).squareRoot()
            if ceiling < 1, (it.errorRate ?? 0) > ceiling {
                let logLR = ceilingLogLR(it, ceiling: ceiling)
                if logLR >= logThreshold {
                    a.ceilingLogLR = logLR
                    a.incidentCeiling = ceiling
                    a.incidentCeilingTreatment = it
                    a.incidentCeilingControl = ic
                    a.verdict = .revert
                    a.check = .ceiling
                    return a
                }
            }
        }

        // 4. The latency ceiling.
        if nt >= Double(ceilingMinSamples) && nt > 0, let limit = limits.maxP95LatencyMicros, let p95 = treatment.p95LatencyMicros, p95 > limit {
            a.verdict = .revert
            a.check = .latency
            return a
        }

        // 5. The minimum sample.
        let minSamples = Double(max(1, limits.minSamples))
        guard nt >= minSamples, nc >= minSamples else {
            a.check = .minSamples
            return a
        }

        // 6. The sequential comparison over the comparable minutes, paired by minute (a minute's
        // weight the inverse of its difference's variance, so an incident's minutes count little).
        // With minutes known, it needs at least two of them and 90 s of the step: the variance
        // between minutes is measured, not assumed.
        let increase = max(0, limits.maxErrorIncrease)
        let compared = tm.indices.filter { comparable[$0] }
        var comparedT = treatment, comparedC = control
        if compared.count < tm.count {
            comparedT = CohortCounts()
            comparedC = CohortCounts()
            for i in compared {
                comparedT.add(tm[i])
                if i < cm.count { comparedC.add(cm[i]) }
            }
        }
        let all = comparison(
            treatment: comparedT, control: comparedC, tm: tm, cm: cm, minutes: compared, concurrent: a.concurrent, baseline: baseline)
        let test = sequential(all, increase: increase, threshold: logThreshold)
        a.dispersion = all.dispersion
        a.driftVariance = all.drift
        a.z = test.z
        a.zThreshold = test.zThreshold
        a.sequentialLogLR = test.logLR
        a.marginZ = test.marginZ
        a.marginZThreshold = test.marginZThreshold
        a.marginLogLR = test.marginLogLR
        a.sequentialDifference = all.difference
        let enoughMinutes =
            minutes == nil
            || (all.minutes >= Self.sequentialMinMinutes && stepElapsed >= Self.sequentialMinElapsed)
        if test.reverts && enoughMinutes {
            a.verdict = .revert
            a.check = .sequential
            return a
        }

        // 9 needs the comparison over the minutes that were not an incident's.
        let clear =
            a.incidentMinutes == 0
            ? all
            : comparison(treatment: clearT, control: clearC, tm: tm, cm: cm, minutes: clearMinutes, concurrent: a.concurrent, baseline: baseline)

        // 7. An incident now (in the last two minutes): hold.
        if incident.suffix(2).contains(true) {
            a.check = .incident
            return a
        }

        // 8. The watch, not counting incident minutes.
        guard a.countedElapsed >= stepWatch else {
            a.check = .watch
            return a
        }

        // 9. Enough data to pass, on the minutes that were not an incident's.
        let ntc = clearT.total, ncc = clearC.total
        guard ntc > 0, ncc > 0 else {
            a.check = .power
            a.powerGrowth = .infinity
            return a
        }
        let rateCc = clearC.failures / ncc, rateTc = clearT.failures / ntc
        // The control's rate for the variance: with fewer than 5 failures, its upper bound (a
        // control without failures is not proof of a rate of 0).
        var rateCv = rateCc
        if clearC.failures < 5 {
            let j = (clearC.failures + 0.5) / (ncc + 1)
            rateCv = max(rateCc, min(1, j + 2 * (j * (1 - j) / ncc).squareRoot()))
        }
        let p1 = min(1, rateCv + detectableIncrease)
        // The dispersion only beyond its own noise (about √(2/(m−1)) for m minutes): a measured 1.2
        // over 60 minutes is chance, and would keep a thin but healthy step from ever passing.
        func beyondNoise(_ phi: Double) -> Double {
            let m = Double(max(2, clear.minutes))
            return max(1, phi - 2 * (2 / (m - 1)).squareRoot())
        }
        let se =
            (beyondNoise(clear.controlDispersion) * rateCv * (1 - rateCv) / ncc
            + beyondNoise(clear.treatmentDispersion) * p1 * (1 - p1) / ntc).squareRoot()
        a.powerStandardError = se
        let growth = (powerZ * se / detectableIncrease) * (powerZ * se / detectableIncrease)
        a.powerGrowth = growth
        guard growth <= 1 else {
            a.check = .power
            return a
        }

        // 10. Healthy: within the allowance by at least one standard error, and under the ceiling.
        let spread = clear.unpooledVariance.squareRoot()
        a.healthyMargin = increase - clear.difference - spread
        guard clear.difference + spread <= increase, rateTc <= c else {
            a.check = .worse
            return a
        }
        a.verdict = isFinalStep ? .complete : .advance
        a.check = .healthy
        return a
    }

    /// The fewest minutes with outcomes in both cohorts before the comparison may revert, when
    /// the minutes are known: with fewer, a burst in one cohort that covers every minute so far
    /// cannot be told from a regression, and the variance between minutes is not yet measured.
    static let sequentialMinMinutes = 2
    /// …and the step must have run this long (so that three minutes are not one whole and two slivers).
    static let sequentialMinElapsed: Duration = .seconds(90)
    /// During an incident the treatment is "significantly worse" only above this many times the
    /// control's rate (plus the allowance and two standard errors): within an incident's minutes
    /// the cohorts' rates differ by more than chance — late outcomes from before the incident, or
    /// from before the step, dilute one cohort more than the other.
    static let incidentTolerance = 1.5

    /// How far (as a factor on the odds) a minute's control-to-treatment outcomes may be from the
    /// step's split and still be compared.
    static let comparableOdds = 2.0
    /// …and an incident's minute (whose rate moves within it).
    static let comparableIncidentOdds = 1.25

    /// One comparison's mSPRT: "worse at all" at `threshold`, and "beyond the allowance".
    func sequential(
        _ c: Comparison, increase: Double, threshold: Double
    ) -> (
        z: Double, zThreshold: Double?, logLR: Double?, marginZ: Double?, marginZThreshold: Double?, marginLogLR: Double?, reverts: Bool
    ) {
        let d = c.difference
        let v = c.pooledVariance
        var z = 0.0, zThreshold: Double?, logLR: Double?
        if v > 0 {
            z = d / v.squareRoot()
            let spread = (v + tauSquared) / v
            zThreshold = ((v + tauSquared) / tauSquared * (2 * threshold + RolloutMath.log(spread))).squareRoot()
            logLR = -0.5 * RolloutMath.log(spread) + z * z * tauSquared / (2 * (v + tauSquared))
        }
        var marginZ: Double?, marginZThreshold: Double?, marginLogLR: Double?
        let vu = c.unpooledVariance
        if d > increase, vu > 0 {
            let zm = (d - increase) / vu.squareRoot()
            let spread = (vu + tauSquared) / vu
            marginZ = zm
            marginZThreshold = ((vu + tauSquared) / tauSquared * (2 * Self.marginLogThreshold + RolloutMath.log(spread))).squareRoot()
            marginLogLR = -0.5 * RolloutMath.log(spread) + zm * zm * tauSquared / (2 * (vu + tauSquared))
        }
        let reverts = d > increase && (logLR ?? -1) >= threshold && (marginLogLR ?? -1) >= Self.marginLogThreshold
        return (z, zThreshold, logLR, marginZ, marginZThreshold, marginLogLR, reverts)
    }

    /// The ceiling test's ln Λ for a cohort's counts: the mixture of the six alternatives whose
    /// odds are 2…64 times the ceiling's (``GuardLimits/maxErrorRate``, or `ceiling`).
    func ceilingLogLR(_ counts: CohortCounts, ceiling: Double? = nil) -> Double {
        var alternatives = ceilingAlternatives
        if let c = ceiling {
            guard c > 0 && c < 1 else { return c <= 0 ? .infinity : -.infinity }
            alternatives = Self.alternatives(ceiling: c)
        }
        var logLR = -Double.infinity
        for alt in alternatives {
            logLR = RolloutMath.logAddExp(logLR, counts.failures * alt.failure + counts.successes * alt.success)
        }
        return logLR - RolloutMath.log(Double(alternatives.count))
    }

    /// ln(pⱼ/c) and ln((1−pⱼ)/(1−c)) for the alternatives whose odds are 2, 4, …, 64 times c's.
    static func alternatives(ceiling c: Double) -> [(failure: Double, success: Double)] {
        guard c > 0 && c < 1 else { return [] }
        let odds = c / (1 - c)
        return (1...6).map { j in
            let altOdds = odds * Double(1 << j)
            let p = altOdds / (1 + altOdds)
            return (RolloutMath.log(p / c), RolloutMath.log((1 - p) / (1 - c)))
        }
    }

    /// Whether a minute's counts are above `rate`: with 200 outcomes or more, at all; with fewer,
    /// beyond chance — P(X ≥ failures) < 1 % for X binomial with the minute's outcomes at `rate`
    /// (exact to 100 outcomes, else the normal approximation with continuity correction).
    static func isAbove(_ counts: CohortCounts, rate: Double) -> Bool {
        let n = counts.total.rounded(), f = counts.failures.rounded()
        guard n > 0, f / n > rate, rate > 0, rate < 1 else { return n > 0 && f > 0 && rate <= 0 }
        // A well-filled minute above the rate at all: a baseline a few times lower does not get there
        // by chance, and an incident diluted by late outcomes from before it still counts.
        if n >= 200 && f >= 2 { return true }
        if n <= 100 {
            // P(X ≥ f) by summing the terms from f up, in log space.
            var tail = 0.0
            var k = f
            while k <= n {
                let logTerm =
                    RolloutMath.logFactorial(n) - RolloutMath.logFactorial(k) - RolloutMath.logFactorial(n - k)
                    + k * RolloutMath.log(rate) + (n - k) * RolloutMath.log(1 - rate)
                tail += RolloutMath.exp(logTerm)
                k += 1
            }
            return tail < 0.01
        }
        let z = (f - 0.5 - n * rate) / (n * rate * (1 - rate)).squareRoot()
        return z > 2.326
    }

    /// Whether one minute's counts show a rate above the ceiling on their own (the ceiling test at
    /// α): the drift measurement leaves such minutes of the baseline out.
    func isShownAboveCeiling(_ counts: CohortCounts) -> Bool {
        let c = limits.maxErrorRate
        guard counts.total > 0, let rate = counts.errorRate, rate > c, c < 1 else { return false }
        if c <= 0 { return true }
        return ceilingLogLR(counts) >= logThreshold
    }

    /// The difference of error rates over some minutes, and its variances.
    struct Comparison {
        var difference: Double
        /// Under H₀ (pooled rate), widened: what the "worse at all" test uses.
        var pooledVariance: Double
        /// With each cohort's own rate, widened: the "beyond the allowance" test and the pass.
        var unpooledVariance: Double
        /// The factor the binomial variance was widened by (concurrent: paired; else per cohort).
        var dispersion: Double
        var treatmentDispersion: Double
        var controlDispersion: Double
        var drift: Double
        /// How many minutes it was measured on (paired: with outcomes in both cohorts).
        var minutes: Int
    }

    /// Compares `treatment` with `control` (the sums over `minutes`). Concurrent: the difference is
    /// the minutes' differences weighted by the inverse of their binomial variance (a stratified
    /// estimate: what a minute does to both cohorts cancels, and a minute of high error rates counts
    /// little), and the variance measured between those weighted minutes (minutes as clusters)
    /// widens the binomial variance when larger. Before the rollout: each cohort's own variance
    /// between minutes widens its part, and the baseline's drift between two windows of this length
    /// is added.
    func comparison(
        treatment: CohortCounts, control: CohortCounts, tm: [CohortCounts], cm: [CohortCounts], minutes: [Int], concurrent: Bool,
        baseline: [CohortCounts]
    ) -> Comparison {
        let nt = treatment.total, nc = control.total
        let pt = nt > 0 ? treatment.failures / nt : 0, pc = nc > 0 ? control.failures / nc : 0
        let pooled = nt + nc > 0 ? (treatment.failures + control.failures) / (nt + nc) : 0
        let vt = nt > 0 ? pt * (1 - pt) / nt : 0, vc = nc > 0 ? pc * (1 - pc) / nc : 0
        let vPooled = nt > 0 && nc > 0 ? pooled * (1 - pooled) * (1 / nt + 1 / nc) : 0
        if concurrent && tm.count == cm.count && minutes.count > 1 {
            // Paired by minute: each minute's difference, weighted by the inverse of its variance
            // (its rate shrunk towards the window's by 20 outcomes, so a thin minute is not
            // trusted); the variance between the weighted minutes (minutes as clusters) widens it.
            var weights = 0.0, weighted = 0.0, unpooledSum = 0.0, m = 0.0
            var pairs: [(d: Double, w: Double)] = []
            for i in minutes where i < tm.count && tm[i].total > 0 && cm[i].total > 0 {
                let t = tm[i], k = cm[i]
                let di = t.failures / t.total - k.failures / k.total
                let pi = (t.failures + k.failures + 20 * pooled) / (t.total + k.total + 20)
                let vi = max(1e-12, pi * (1 - pi)) * (1 / t.total + 1 / k.total)
                let pti = (t.failures + 20 * pooled) / (t.total + 20), pci = (k.failures + 20 * pooled) / (k.total + 20)
                let ui = max(1e-12, pti * (1 - pti)) / t.total + max(1e-12, pci * (1 - pci)) / k.total
                let w = 1 / vi
                weights += w
                weighted += w * di
                unpooledSum += w * w * ui
                pairs.append((di, w))
                m += 1
            }
            if m >= 1 && weights > 0 {
                let d = weighted / weights
                let vModel = 1 / weights
                let vUnpooled = unpooledSum / (weights * weights)
                var phi = 1.0
                if m >= 2 {
                    var sum = 0.0
                    for p in pairs { sum += p.w * p.w * (p.d - d) * (p.d - d) }
                    phi = max(1, sum * m / (m - 1) / (weights * weights) / vModel)
                }
                return Comparison(
                    difference: d, pooledVariance: phi * vModel, unpooledVariance: phi * vUnpooled, dispersion: phi,
                    treatmentDispersion: phi, controlDispersion: phi, drift: 0, minutes: Int(m))
            }
        }
        if concurrent {
            return Comparison(
                difference: pt - pc, pooledVariance: vPooled, unpooledVariance: vt + vc, dispersion: 1,
                treatmentDispersion: 1, controlDispersion: 1, drift: 0, minutes: minutes.count)
        }
        let phiT = Self.dispersion(minutes.compactMap { $0 < tm.count ? tm[$0] : nil }, total: treatment)
        let phiC = Self.dispersion(cm, total: control)
        let drift = driftVariance(baseline, windowMinutes: minutes.count)
        let pooledWidened = nt > 0 && nc > 0 ? pooled * (1 - pooled) * (phiT / nt + phiC / nc) : 0
        return Comparison(
            difference: pt - pc, pooledVariance: pooledWidened + drift, unpooledVariance: phiT * vt + phiC * vc + drift,
            dispersion: max(phiT, phiC), treatmentDispersion: phiT, controlDispersion: phiC, drift: drift,
            minutes: minutes.count(where: { $0 < tm.count && tm[$0].total > 0 }))
    }

    /// A cohort's dispersion between minutes: the variance of its failure count measured from the
    /// minutes (cluster-robust, minutes as clusters) over the binomial one; at least 1, and 1 with
    /// fewer than two minutes of data.
    static func dispersion(_ minutes: [CohortCounts], total: CohortCounts) -> Double {
        let n = total.total
        guard n > 0 else { return 1 }
        let p = total.failures / n
        let binomial = n * p * (1 - p)
        guard binomial > 0 else { return 1 }
        var sum = 0.0, m = 0.0
        for x in minutes where x.total > 0 {
            let r = x.failures - p * x.total
            sum += r * r
            m += 1
        }
        guard m >= 2 else { return 1 }
        return max(1, sum * m / (m - 1) / binomial)
    }

    /// How far the baseline's error rate moves between two adjacent windows of `windowMinutes`
    /// minutes, beyond binomial noise: the mean of (r_after − r_before)² − its binomial variance
    /// over every pair of adjacent windows in `baseline` (minutes shown above the ceiling left out:
    /// incidents are not drift). Windows longer than half the baseline are measured at half its
    /// length. 0 without at least four minutes of baseline.
    func driftVariance(_ baseline: [CohortCounts], windowMinutes: Int) -> Double {
        let h = baseline.count
        let l = min(max(1, windowMinutes), h / 2)
        guard h >= 4, l >= 1 else { return 0 }
        // Prefix sums of the minutes' outcomes and failures, incidents left out.
        var n = [Double](repeating: 0, count: h + 1), f = [Double](repeating: 0, count: h + 1)
        for (i, x) in baseline.enumerated() {
            let keep = !isShownAboveCeiling(x)
            n[i + 1] = n[i] + (keep ? x.total : 0)
            f[i + 1] = f[i] + (keep ? x.failures : 0)
        }
        var sum = 0.0, count = 0.0
        for k in l...(h - l) {
            let na = n[k] - n[k - l], fa = f[k] - f[k - l]
            let nb = n[k + l] - n[k], fb = f[k + l] - f[k]
            guard na > 0, nb > 0 else { continue }
            let d = fb / nb - fa / na
            let p = (fa + fb) / (na + nb)
            sum += d * d - p * (1 - p) * (1 / na + 1 / nb)
            count += 1
        }
        return count > 0 ? max(0, sum / count) : 0
    }

    // MARK: - Words and evidence

    func reason(_ a: Assessment) -> String {
        let t = a.treatment, c = a.control
        let allowed = RolloutText.short(max(0, limits.maxErrorIncrease) * 100, 2) + " pp"
        func comparison() -> String {
            guard let d = a.difference else { return "" }
            let relation = d > max(0, limits.maxErrorIncrease) ? " > " : ", "
            return "treatment error rate \(RolloutText.percent(t.errorRate ?? 0)) vs control "
                + "\(RolloutText.percent(c.errorRate ?? 0)) (\(RolloutText.points(d))\(relation)\(allowed) allowed)"
        }
        func sequential() -> String {
            guard let z = a.z else { return "" }
            guard let threshold = a.zThreshold else { return "; sequential test: no errors to compare" }
            let relation = (a.sequentialLogLR ?? 0) >= a.testThreshold && z > 0 ? " ≥ " : " < "
            var text = "; sequential test z=\(RolloutText.fixed(z, 1))\(relation)\(RolloutText.fixed(threshold, 1))"
            if let zm = a.marginZ, let zmThreshold = a.marginZThreshold {
                let beyond = (a.marginLogLR ?? -1) >= Self.marginLogThreshold ? " ≥ " : " < "
                text += ", over the allowance z=\(RolloutText.fixed(zm, 1))\(beyond)\(RolloutText.fixed(zmThreshold, 1))"
            }
            return text
        }
        switch a.check {
        case .sourceFailure:
            return "metric source failed: \(a.sourceFailure ?? "unknown error")"
        case .invalidCounts:
            return "metric source failed: it gave negative or non-numeric counts"
        case .ceiling where a.incidentCeiling != nil:
            let it = a.incidentCeilingTreatment, ic = a.incidentCeilingControl
            return "during an incident the treatment failed at \(RolloutText.percent(it.errorRate ?? 0)) against the control's "
                + "\(RolloutText.percent(ic.errorRate ?? 0)): significantly worse (\(RolloutText.count(it.failures)) of "
                + "\(RolloutText.count(it.total)) outcomes; sequential test ln LR=\(RolloutText.fixed(a.ceilingLogLR ?? 0, 1)) ≥ "
                + "\(RolloutText.fixed(logThreshold, 1)) over \(RolloutText.percent(a.incidentCeiling ?? 0)))"
        case .ceiling:
            let t = a.ceilingTreatment
            return "treatment error rate \(RolloutText.percent(t.errorRate ?? 0)) is above the "
                + "\(RolloutText.percent(limits.maxErrorRate)) ceiling (\(RolloutText.count(t.failures)) of "
                + "\(RolloutText.count(t.total)) outcomes failed; sequential test ln LR="
                + "\(RolloutText.fixed(a.ceilingLogLR ?? 0, 1)) ≥ \(RolloutText.fixed(logThreshold, 1)))"
        case .latency:
            return "treatment p95 latency \(Self.latencyText(t.p95LatencyMicros ?? 0)) is above the "
                + "\(Self.latencyText(limits.maxP95LatencyMicros ?? 0)) ceiling"
        case .minSamples:
            let need = max(1, limits.minSamples)
            var short: [String] = []
            if t.total < Double(need) { short.append("treatment \(RolloutText.count(t.total)) of \(need) outcomes") }
            if c.total < Double(need) { short.append("control \(RolloutText.count(c.total)) of \(need) outcomes") }
            return "not enough data: " + short.joined(separator: ", ")
        case .sequential:
            return comparison() + sequential()
        case .incident:
            let ic = a.incidentControl, it = a.incidentTreatment
            let minutes = a.incidentMinutes == 1 ? "1 minute" : "\(a.incidentMinutes) minutes"
            let what =
                (it.errorRate ?? 0) > limits.maxErrorRate
                ? "both cohorts are failing at \(RolloutText.percent(ic.errorRate ?? 0)) and \(RolloutText.percent(it.errorRate ?? 0))"
                : "the control is failing at \(RolloutText.percent(ic.errorRate ?? 0)) (treatment \(RolloutText.percent(it.errorRate ?? 0)))"
            return what + ": an incident not caused by this flag; holding (control and treatment over \(minutes) above the "
                + "\(RolloutText.percent(limits.maxErrorRate)) ceiling, not counted towards the watch)"
        case .watch:
            let incidents = a.incidentSeconds > 0 ? ", \(RolloutText.duration(.seconds(a.incidentSeconds))) of incidents not counted" : ""
            return "watching (\(RolloutText.duration(a.countedElapsed)) of \(RolloutText.duration(a.watch))\(incidents)): "
                + comparison() + sequential()
        case .power:
            let growth = a.powerGrowth ?? 1
            return "not enough data: \(RolloutText.count(t.total)) treatment and \(RolloutText.count(c.total)) "
                + "control outcomes cannot show a \(RolloutText.short(detectableIncrease * 100, 2)) pp increase over the "
                + "control's \(RolloutText.percent(c.errorRate ?? 0)); needs about "
                + "\(RolloutText.count((t.total * growth).rounded(.up))) and "
                + "\(RolloutText.count((c.total * growth).rounded(.up))); holding"
        case .worse:
            if let d = a.difference, d > max(0, limits.maxErrorIncrease) {
                return comparison() + sequential() + " — not conclusive yet; watching on"
            }
            if let margin = a.healthyMargin, margin < 0, (t.errorRate ?? 0) <= limits.maxErrorRate {
                return comparison() + " — not within the allowance by a standard error yet; watching on"
            }
            return "treatment error rate \(RolloutText.percent(t.errorRate ?? 0)) is above the "
                + "\(RolloutText.percent(limits.maxErrorRate)) ceiling, not conclusively yet; watching on"
        case .healthy:
            return "healthy after \(RolloutText.duration(a.countedElapsed)): " + comparison() + " over "
                + "\(RolloutText.count(t.total)) and \(RolloutText.count(c.total)) outcomes"
                + (a.isFinalStep ? "; completing" : "; advancing")
        }
    }

    /// `350ms`, `1.2s`, `800µs`.
    static func latencyText(_ micros: Double) -> String {
        if micros >= 1_000_000 { return RolloutText.short(micros / 1_000_000, 2) + "s" }
        if micros >= 1000 { return RolloutText.short(micros / 1000, 1) + "ms" }
        return RolloutText.short(micros, 0) + "µs"
    }

    func evidence(_ a: Assessment) -> JSONValue {
        func number(_ x: Double?) -> JSONValue {
            guard let x, x.isFinite else { return .null }
            return x == x.rounded() && abs(x) < 9e15 ? .int(Int64(x)) : .double(x)
        }
        func cohort(_ c: CohortCounts) -> JSONValue {
            var o: [String: JSONValue] = [
                "successes": number(c.successes), "failures": number(c.failures), "total": number(c.total),
                "errorRate": number(c.errorRate),
            ]
            if let p95 = c.p95LatencyMicros { o["p95LatencyMicros"] = number(p95) }
            return .object(o)
        }
        var o: [String: JSONValue] = [
            "check": .string(a.check.rawValue),
            "verdict": .string(a.verdict.rawValue),
            "treatment": cohort(a.treatment),
            "control": cohort(a.control),
            "difference": number(a.difference),
            "maxErrorIncrease": number(limits.maxErrorIncrease),
            "maxErrorRate": number(limits.maxErrorRate),
            "minSamples": .int(Int64(limits.minSamples)),
            "alpha": number(alpha),
            "elapsedSeconds": number(a.elapsed.rolloutSeconds),
            "watchSeconds": number(a.watch.rolloutSeconds),
            "finalStep": .bool(a.isFinalStep),
            "notEnoughData": .bool(a.isNotEnoughData),
        ]
        if let limit = limits.maxP95LatencyMicros { o["maxP95LatencyMicros"] = number(limit) }
        o["controlKind"] = .string(a.concurrent ? "concurrent" : "before the rollout")
        o["minutes"] = .int(Int64(a.minuteCount))
        o["comparableMinutes"] = .int(Int64(a.comparableMinutes))
        o["countedSeconds"] = number(a.countedElapsed.rolloutSeconds.rounded(.down))
        if a.incidentMinutes > 0 {
            o["incident"] = .object([
                "minutes": .int(Int64(a.incidentMinutes)), "seconds": number(a.incidentSeconds),
                "treatment": cohort(a.incidentTreatment), "control": cohort(a.incidentControl),
            ])
        }
        if let margin = a.healthyMargin { o["healthyMargin"] = number(margin) }
        if let failure = a.sourceFailure { o["sourceFailure"] = .string(failure) }
        if a.z != nil {
            o["sequential"] = .object([
                "method":
                    "mSPRT, normal mixture over the difference of error rates paired by minute; H0: treatment <= control at alpha, and H0: difference <= maxErrorIncrease at likelihood ratio 1",
                "z": number(a.z), "threshold": number(a.zThreshold),
                "logLikelihoodRatio": number(a.sequentialLogLR), "logThreshold": number(a.testThreshold),
                "tau": number(tauSquared.squareRoot()),
                "dispersion": number(a.dispersion), "driftVariance": number(a.driftVariance),
                "difference": number(a.sequentialDifference),

                "marginZ": number(a.marginZ), "marginThreshold": number(a.marginZThreshold), "marginLogLikelihoodRatio": number(a.marginLogLR),
                "marginLogThreshold": number(Self.marginLogThreshold),
            ])
        }
        if let logLR = a.ceilingLogLR {
            o["ceilingTest"] = .object([
                "method": a.incidentCeiling == nil
                    ? "exact mixture SPRT, H0: treatment error rate <= maxErrorRate, over the minutes that were not an incident's"
                    : "exact mixture SPRT over the incident's minutes, H0: treatment error rate <= the control's then + maxErrorIncrease + 2 standard errors",
                "ceiling": number(a.incidentCeiling ?? limits.maxErrorRate),
                "logLikelihoodRatio": number(logLR), "logThreshold": number(logThreshold),
                "minSamples": .int(Int64(ceilingMinSamples)),
            ])
        }
        if let se = a.powerStandardError, let growth = a.powerGrowth {
            o["power"] = .object([
                "detectableIncrease": number(detectableIncrease), "standardError": number(se),
                "z": number(powerZ), "enough": .bool(growth <= 1),
                "neededTreatment": number((a.treatment.total * max(1, growth)).rounded(.up)),
                "neededControl": number((a.control.total * max(1, growth)).rounded(.up)),
            ])
        }
        // The deciding statistic and its threshold, whichever check decided.
        switch a.check {
        case .ceiling:
            o["statistic"] = number(a.ceilingLogLR)
            o["threshold"] = number(logThreshold)
        case .latency:
            o["statistic"] = number(a.treatment.p95LatencyMicros)
            o["threshold"] = number(limits.maxP95LatencyMicros)
        case .minSamples:
            o["statistic"] = number(min(a.treatment.total, a.control.total))
            o["threshold"] = .int(Int64(limits.minSamples))
        case .power:
            o["statistic"] = number(a.powerStandardError)
            o["threshold"] = number(detectableIncrease / powerZ)
        case .sequential, .watch, .worse, .healthy, .incident:
            o["statistic"] = number(a.z)
            o["threshold"] = number(a.zThreshold)
        case .sourceFailure, .invalidCounts:
            break
        }
        return .object(o)
    }
}
