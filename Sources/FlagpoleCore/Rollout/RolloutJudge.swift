/// What the judge decided about a rollout step after one look, why, and on what evidence.
public struct RolloutJudgement: Sendable, Hashable {
    /// Hold, advance, complete or revert.
    public var verdict: RolloutVerdict
    /// One line for people, e.g. `treatment error rate 3.1% vs control 1.0% (+2.1 pp > 1 pp
    /// allowed); sequential test z=4.2 > 3.6` or `not enough data: treatment 12 of 200 outcomes`.
    public var reason: String
    /// A JSON object for the audit: the check that decided (`check`), both cohorts' counts and
    /// rates, the difference, the deciding `statistic` and its `threshold`, `alpha`, the details of
    /// the sequential test, the ceiling test and the power check, and the step's elapsed and watch
    /// seconds.
    public var evidence: JSONValue

    /// Creates a judgement.
    public init(verdict: RolloutVerdict, reason: String, evidence: JSONValue) {
        self.verdict = verdict
        self.reason = reason
        self.evidence = evidence
    }
}

/// The watcher's decision: given one step's cumulative treatment and control counts, hold,
/// advance, complete or revert. Pure and deterministic; it keeps no state between looks, so the
/// watcher calls it at every look (every 10 s by default) with the counts since the step began.
///
/// The checks, in order:
///
/// 1. **Metric source failed** (or gave negative or non-numeric counts): hold, never a pass.
/// 2. **Error-rate ceiling** — revert at once when the treatment's error rate is *shown* to be
///    above ``GuardLimits/maxErrorRate`` (c): at least ``ceilingMinSamples`` treatment outcomes
///    (50, or `minSamples` when smaller, so a burst of a few errors cannot trip it), and an exact
///    sequential probability ratio test of H₀: p ≤ c. Its statistic is the mixture likelihood
///    ratio Λ = ⅙ Σⱼ (pⱼ/c)^f ((1−pⱼ)/(1−c))^s over six alternatives pⱼ whose odds are 2, 4, …,
///    64 times the ceiling's odds (f failures, s successes). For every p ≤ c, Λ is a
///    nonnegative supermartingale with mean ≤ 1, so by Ville's inequality P(Λ ever ≥ 1/α) ≤ α —
///    exact for Bernoulli outcomes, however many looks, with no normal approximation.
/// 3. **Latency ceiling** — when ``GuardLimits/maxP95LatencyMicros`` and the treatment's p95 are
///    both known and the treatment has ``ceilingMinSamples`` outcomes: revert when p95 is above.
/// 4. **Minimum sample** — below ``GuardLimits/minSamples`` in either cohort: hold, "not enough
///    data".
/// 5. **Sequential comparison** — revert when the treatment is significantly worse than the
///    control *and* the evidence favours an increase beyond the allowance δ
///    (``GuardLimits/maxErrorIncrease``). Both use the mixture sequential probability ratio test
///    (mSPRT, Robbins 1970; Johari et al., "Always valid inference", 2017) on d = p̂ₜ − p̂꜀ with a
///    normal mixing distribution of scale τ = max(δ, 0.1 pp):
///
///        Λ(d₀, V) = √(V/(V+τ²)) · exp((d−d₀)² τ² / (2V(V+τ²)))   for d > d₀, else 0.
///
///    *Worse at all* (the test that carries α): H₀: pₜ ≤ p꜀, d₀ = 0, V = p̄(1−p̄)(1/nₜ + 1/n꜀)
///    with p̄ the pooled error rate; it rejects when Λ ≥ 1/α, the same as
///    z = d/√V ≥ z* = √((V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V))). Under H₀, Λ is (asymptotically) a
///    nonnegative martingale with mean 1, so by Ville's inequality the chance that it *ever*
///    reaches 1/α — at a look every 10 s for an hour, or forever — is at most α. Peeking costs
///    nothing because z* already grows with the data (≈3.6 at a few thousand outcomes for
///    α = 1 %, against 2.33 for a single look).
///
///    *Beyond the allowance*: d₀ = δ, V = p̂ₜ(1−p̂ₜ)/nₜ + p̂꜀(1−p̂꜀)/n꜀, Λ ≥ 1 — the data must
///    favour "more than δ worse" over "exactly δ worse" even after the mixture's penalty for
///    looking often (z over the allowance ≈ 1.7 or more at a few thousand outcomes). This keeps a
///    regression within the allowance (1 % → 1.5 % with 1 pp allowed) from being reverted on a
///    lucky run, without being 99 % sure of the excess: being that sure at every look needs z ≥ 3.6
///    *over the allowance*, which at 20 requests/s per cohort takes more than 5 minutes for a
///    1 % → 3 % regression in a third of runs.
///
///    So α bounds the false reverts of a rollout that is no worse; a rollout exactly δ worse is
///    reverted in about a quarter of hour-long steps, one half the allowance worse in under 2 %, and
///    one clearly beyond it fast (1 % → 3 % at 20 requests/s: median 70 s, 95 % within 3 min). The normal approximation is weakest with
///    few errors; the minimum sample and τ (which makes z* large while V is large next to τ²)
///    keep small samples conservative, and `flagctl rollout simulate` measures the real rates.
/// 6. **Watch** — before `stepWatch` has passed: hold ("watching").
/// 7. **Enough data to pass** — the step passes only when its data could have shown an increase
///    of the allowed size: e = max(δ, 0.1 pp) ≥ (z₁₋α + z₀.₈) · √(p꜀(1−p꜀)/n꜀ + p₁(1−p₁)/nₜ), with
///    p꜀ the control's rate and p₁ = p꜀ + e (the fixed-sample size for a one-sided test at α with
///    80 % power). Otherwise hold with "not enough data" and the sample it would need — so a flag
///    with 0.1 requests/s never passes on 360 outcomes an hour.
/// 8. **Healthy** — the measured increase plus one standard error, d + √(p̂ₜ(1−p̂ₜ)/nₜ +
///    p̂꜀(1−p̂꜀)/n꜀), is within the allowance and the treatment's rate is not above the ceiling:
///    advance, or complete on the final step (so a clear regression does not pass on one lucky
///    hour of thin traffic). Otherwise hold and keep
///    watching (the sequential test stays valid however long the step is watched).
///
/// `alpha` is the chance of a false revert by either test when the treatment is in fact no worse
/// than the control (default 1 %, per step, however often the watcher looks).
public struct RolloutJudge: Sendable {
    /// The limits the step is judged by.
    public let limits: GuardLimits
    /// The false-revert bound of each sequential test (default `0.01`).
    public let alpha: Double

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
    public var ceilingMinSamples: Int { min(limits.minSamples, 50) }

    /// A judge for the given limits. `alpha` (default `0.01`) is the false-revert bound of each
    /// sequential test; values outside 1e-9…0.5 are clamped into it.
    public init(limits: GuardLimits, alpha: Double = 0.01) {
        let alpha = alpha.isNaN ? 0.01 : min(0.5, max(1e-9, alpha))
        self.limits = limits
        self.alpha = alpha
        self.logThreshold = RolloutMath.log(1 / alpha)
        let increase = limits.maxErrorIncrease.isFinite ? max(0, limits.maxErrorIncrease) : 0
        self.detectableIncrease = max(increase, 0.001)
        self.tauSquared = detectableIncrease * detectableIncrease
        self.powerZ = RolloutMath.normalQuantile(1 - alpha) + RolloutMath.normalQuantile(0.8)
        let c = limits.maxErrorRate
        var alternatives: [(Double, Double)] = []
        if c > 0 && c < 1 {
            let odds = c / (1 - c)
            for j in 1...6 {
                let altOdds = odds * Double(1 << j)
                let p = altOdds / (1 + altOdds)
                alternatives.append((RolloutMath.log(p / c), RolloutMath.log((1 - p) / (1 - c))))
            }
        }
        self.ceilingAlternatives = alternatives
    }

    /// Judges one look at a step from its cumulative counts.
    ///
    /// - Parameters:
    ///   - treatment: the step's cumulative outcomes from the cohort that got the new variant.
    ///   - control: the same from the cohort that did not (at 100 %, the window before the rollout).
    ///   - stepElapsed: how long the step has been running.
    ///   - stepWatch: how long the step is watched before it may pass.
    ///   - isFinalStep: whether passing completes the rollout rather than advancing it.
    ///   - sourceFailure: what went wrong reading the metric source, if it failed: the judge holds.
    public func judge(
        treatment: CohortCounts, control: CohortCounts, stepElapsed: Duration, stepWatch: Duration,
        isFinalStep: Bool, sourceFailure: String? = nil
    ) -> RolloutJudgement {
        let a = assess(
            treatment: treatment, control: control, stepElapsed: stepElapsed, stepWatch: stepWatch,
            isFinalStep: isFinalStep, sourceFailure: sourceFailure)
        return RolloutJudgement(verdict: a.verdict, reason: reason(a), evidence: evidence(a))
    }

    // MARK: - The decision

    /// Which check decided a look.
    enum Check: String, Sendable {
        case sourceFailure, invalidCounts, ceiling, latency, minSamples, sequential, watch, power, worse, healthy
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
        /// p̂ₜ − p̂꜀, when both cohorts have outcomes.
        var difference: Double?
        /// The ceiling test's ln Λ, when it ran.
        var ceilingLogLR: Double?
        /// The mSPRT's z, z*, ln Λ, when both cohorts reached the minimum sample.
        var z: Double?
        var zThreshold: Double?
        var sequentialLogLR: Double?
        var marginZ: Double?
        var marginLogLR: Double?
        var marginZThreshold: Double?
        /// δ − d − SE(d) at the end of the watch: the step passes only when it is ≥ 0.
        var healthyMargin: Double?
        /// The power check: the standard error at an increase of e, and the factor by which the
        /// sample must grow to be enough (≤ 1 when it is).
        var powerStandardError: Double?
        var powerGrowth: Double?

        /// Whether the hold means "not enough data".
        var isNotEnoughData: Bool { verdict == .hold && (check == .minSamples || check == .power) }
    }

    /// The decision with its numbers; ``judge(treatment:control:stepElapsed:stepWatch:isFinalStep:sourceFailure:)``
    /// puts it in words. The simulator calls this directly, so it replays exactly the same decision.
    func assess(
        treatment: CohortCounts, control: CohortCounts, stepElapsed: Duration, stepWatch: Duration,
        isFinalStep: Bool, sourceFailure: String?
    ) -> Assessment {
        var a = Assessment(
            verdict: .hold, check: .sourceFailure, treatment: treatment, control: control, elapsed: stepElapsed,
            watch: stepWatch, isFinalStep: isFinalStep, sourceFailure: sourceFailure)
        if sourceFailure != nil { return a }
        func usable(_ x: Double) -> Bool { x.isFinite && x >= 0 }
        guard usable(treatment.successes), usable(treatment.failures), usable(control.successes),
            usable(control.failures), treatment.p95LatencyMicros.map(usable) ?? true
        else {
            a.check = .invalidCounts
            return a
        }
        let nt = treatment.total, nc = control.total
        let ft = treatment.failures, fc = control.failures
        let rateT = nt > 0 ? ft / nt : 0
        let rateC = nc > 0 ? fc / nc : 0
        if nt > 0 && nc > 0 { a.difference = rateT - rateC }
        let ceilingReady = nt >= Double(ceilingMinSamples) && nt > 0

        // 2. The error-rate ceiling.
        let c = limits.maxErrorRate
        if ceilingReady && rateT > c && c < 1 {
            if c <= 0 {
                a.ceilingLogLR = .infinity
            } else {
                var logLR = -Double.infinity
                for alt in ceilingAlternatives {
                    logLR = RolloutMath.logAddExp(logLR, ft * alt.failure + treatment.successes * alt.success)
                }
                a.ceilingLogLR = logLR - RolloutMath.log(Double(ceilingAlternatives.count))
            }
            if let logLR = a.ceilingLogLR, logLR >= logThreshold {
                a.verdict = .revert
                a.check = .ceiling
                return a
            }
        }

        // 3. The latency ceiling.
        if ceilingReady, let limit = limits.maxP95LatencyMicros, let p95 = treatment.p95LatencyMicros, p95 > limit {
            a.verdict = .revert
            a.check = .latency
            return a
        }

        // 4. The minimum sample.
        let minSamples = Double(max(1, limits.minSamples))
        guard nt >= minSamples, nc >= minSamples else {
            a.check = .minSamples
            return a
        }

        // 5. The sequential comparison.
        let d = rateT - rateC
        let increase = max(0, limits.maxErrorIncrease)
        let pooled = (ft + fc) / (nt + nc)
        let v = pooled * (1 - pooled) * (1 / nt + 1 / nc)
        if v > 0 {
            let z = d / v.squareRoot()
            let spread = (v + tauSquared) / v
            a.z = z
            a.zThreshold = ((v + tauSquared) / tauSquared * (2 * logThreshold + RolloutMath.log(spread))).squareRoot()
            a.sequentialLogLR = -0.5 * RolloutMath.log(spread) + z * z * tauSquared / (2 * (v + tauSquared))
        } else {
            a.z = 0
        }
        if d > increase {
            let vu = rateT * (1 - rateT) / nt + rateC * (1 - rateC) / nc
            if vu > 0 {
                let zm = (d - increase) / vu.squareRoot()
                let spread = (vu + tauSquared) / vu
                a.marginZ = zm
                a.marginZThreshold = ((vu + tauSquared) / tauSquared * (2 * Self.marginLogThreshold + RolloutMath.log(spread))).squareRoot()
                a.marginLogLR = -0.5 * RolloutMath.log((vu + tauSquared) / vu) + zm * zm * tauSquared / (2 * (vu + tauSquared))
            }
        }
        if d > increase, let logLR = a.sequentialLogLR, logLR >= logThreshold, let m = a.marginLogLR, m >= Self.marginLogThreshold {
            a.verdict = .revert
            a.check = .sequential
            return a
        }

        // 6. The watch.
        guard stepElapsed >= stepWatch else {
            a.check = .watch
            return a
        }

        // 7. Enough data to pass.
        let p1 = min(1, rateC + detectableIncrease)
        let se = (rateC * (1 - rateC) / nc + p1 * (1 - p1) / nt).squareRoot()
        a.powerStandardError = se
        let growth = (powerZ * se / detectableIncrease) * (powerZ * se / detectableIncrease)
        a.powerGrowth = growth
        guard growth <= 1 else {
            a.check = .power
            return a
        }

        // 8. Healthy: within the allowance by at least one standard error, and under the ceiling.
        let spread = (rateT * (1 - rateT) / nt + rateC * (1 - rateC) / nc).squareRoot()
        a.healthyMargin = increase - d - spread
        guard d + spread <= increase, rateT <= c else {
            a.check = .worse
            return a
        }
        a.verdict = isFinalStep ? .complete : .advance
        a.check = .healthy
        return a
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
            let relation = (a.sequentialLogLR ?? 0) >= logThreshold && z > 0 ? " ≥ " : " < "
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
        case .ceiling:
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
        case .watch:
            return "watching (\(RolloutText.duration(a.elapsed)) of \(RolloutText.duration(a.watch))): "
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
            return "healthy after \(RolloutText.duration(a.elapsed)): " + comparison() + " over "
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
        if let margin = a.healthyMargin { o["healthyMargin"] = number(margin) }
        if let failure = a.sourceFailure { o["sourceFailure"] = .string(failure) }
        if a.z != nil {
            o["sequential"] = .object([
                "method": "mSPRT, normal mixture over the difference of error rates; H0: treatment <= control at alpha, and H0: difference <= maxErrorIncrease at likelihood ratio 1",
                "z": number(a.z), "threshold": number(a.zThreshold),
                "logLikelihoodRatio": number(a.sequentialLogLR), "logThreshold": number(logThreshold),
                "tau": number(tauSquared.squareRoot()),
                "marginZ": number(a.marginZ), "marginThreshold": number(a.marginZThreshold), "marginLogLikelihoodRatio": number(a.marginLogLR),
                "marginLogThreshold": number(Self.marginLogThreshold),
            ])
        }
        if let logLR = a.ceilingLogLR {
            o["ceilingTest"] = .object([
                "method": "exact mixture SPRT, H0: treatment error rate <= maxErrorRate",
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
        case .sequential, .watch, .worse, .healthy:
            o["statistic"] = number(a.z)
            o["threshold"] = number(a.zThreshold)
        case .sourceFailure, .invalidCounts:
            break
        }
        return .object(o)
    }
}
