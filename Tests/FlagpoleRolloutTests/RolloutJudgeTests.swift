import Testing

@testable import FlagpoleCore
@testable import FlagpoleRollout

@Suite("Rollout judge")
struct RolloutJudgeTests {
    /// The built-in limits: 5% ceiling, 1 pp allowed increase, 200 samples.
    static let limits = GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 200)
    let judge = RolloutJudge(limits: limits)

    /// Counts with `total` outcomes of which `failures` failed.
    static func counts(_ total: Double, failing failures: Double, p95: Double? = nil) -> CohortCounts {
        CohortCounts(successes: total - failures, failures: failures, p95LatencyMicros: p95)
    }

    func look(
        _ treatment: CohortCounts, _ control: CohortCounts, at elapsed: Duration = .seconds(300),
        final: Bool = false, failure: String? = nil, judge: RolloutJudge? = nil
    ) -> RolloutJudgement {
        (judge ?? self.judge).judge(
            treatment: treatment, control: control, stepElapsed: elapsed, stepWatch: .seconds(3600),
            isFinalStep: final, sourceFailure: failure)
    }

    static func check(_ j: RolloutJudgement) -> String? { j.evidence["check"]?.stringValue }

    // MARK: - Verdict rules

    @Test("a failed metric source holds, even on data that would revert or pass")
    func sourceFailure() {
        let bad = look(Self.counts(6000, failing: 600), Self.counts(6000, failing: 60), failure: "connection refused")
        #expect(bad.verdict == .hold)
        #expect(bad.reason == "metric source failed: connection refused")
        #expect(bad.evidence["sourceFailure"] == .string("connection refused"))
        let done = look(Self.counts(72000, failing: 720), Self.counts(72000, failing: 720), at: .seconds(3600), failure: "timeout")
        #expect(done.verdict == .hold)
    }

    @Test("negative or non-numeric counts hold as a source failure", arguments: [-1.0, .nan, .infinity])
    func invalidCounts(_ bad: Double) {
        let j = look(CohortCounts(successes: 5000, failures: bad), Self.counts(5000, failing: 50))
        #expect(j.verdict == .hold)
        #expect(j.reason.hasPrefix("metric source failed:"))
    }

    @Test("below the minimum sample in either cohort: hold with not enough data")
    func minSamples() {
        let j = look(Self.counts(12, failing: 0), Self.counts(5000, failing: 50), at: .seconds(3600))
        #expect(j.verdict == .hold)
        #expect(j.reason == "not enough data: treatment 12 of 200 outcomes")
        #expect(j.evidence["notEnoughData"] == .bool(true))
        let both = look(Self.counts(150, failing: 3), Self.counts(199, failing: 2), at: .seconds(7200), final: true)
        #expect(both.verdict == .hold)
        #expect(both.reason == "not enough data: treatment 150 of 200 outcomes, control 199 of 200 outcomes")
        #expect(look(Self.counts(5000, failing: 50), Self.counts(20, failing: 0), at: .seconds(3600)).verdict == .hold)
    }

    @Test("a handful of errors in a few requests does not trip the ceiling")
    func ceilingNeedsEvidence() {
        #expect(look(Self.counts(10, failing: 5), Self.counts(10, failing: 0)).verdict == .hold)
        #expect(look(Self.counts(10, failing: 10), Self.counts(10, failing: 0)).verdict == .hold)
        // Just above the ceiling is not yet shown to be above it.
        let near = look(Self.counts(1000, failing: 60), Self.counts(1000, failing: 55))
        #expect(near.verdict == .hold)
    }

    @Test("a treatment clearly above the ceiling reverts at once, before the minimum sample")
    func ceilingReverts() {
        let j = look(Self.counts(50, failing: 30), Self.counts(40, failing: 0), at: .seconds(10))
        #expect(j.verdict == .revert)
        #expect(Self.check(j) == "ceiling")
        #expect(j.reason.hasPrefix("treatment error rate 60.0% is above the 5.0% ceiling (30 of 50 outcomes failed"))
        #expect(j.evidence["statistic"]?.numberValue ?? 0 >= j.evidence["threshold"]?.numberValue ?? .infinity)
        // With no concurrent control (100 % without a holdback) the ceiling is absolute.
        let alone = judge.judge(
            treatment: Self.counts(4000, failing: 400), control: Self.counts(4000, failing: 400), stepElapsed: .seconds(300),
            stepWatch: .seconds(3600), isFinalStep: true, controlWindow: .beforeRollout(baseline: []))
        #expect(alone.verdict == .revert)
    }

    @Test("the ceiling test is exact: it needs more failures for a ceiling closer to the rate")
    func ceilingThreshold() {
        // The smallest number of failures in 200 outcomes that reverts, per ceiling.
        func smallest(_ ceiling: Double) -> Int? {
            let j = RolloutJudge(limits: GuardLimits(maxErrorRate: ceiling, maxErrorIncrease: 1, minSamples: 200))
            return (0...200).first {
                look(Self.counts(200, failing: Double($0)), Self.counts(200, failing: 0), judge: j).verdict == .revert
            }
        }
        let low = smallest(0.02), high = smallest(0.1)
        #expect(low != nil && high != nil)
        if let low, let high {
            #expect(low > 4)  // 2% of 200 is 4: more than that is needed to be sure
            #expect(high > 20)
            #expect(low < high)
        }
    }

    @Test("a p95 above the latency ceiling reverts; below it, unknown, or too few outcomes does not")
    func latency() {
        let limits = GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 200, maxP95LatencyMicros: 300_000)
        let j = RolloutJudge(limits: limits)
        let slow = look(Self.counts(100, failing: 0, p95: 350_000), Self.counts(100, failing: 0, p95: 100_000), judge: j)
        #expect(slow.verdict == .revert)
        #expect(slow.reason == "treatment p95 latency 350ms is above the 300ms ceiling")
        #expect(Self.check(slow) == "latency")
        #expect(look(Self.counts(100, failing: 0, p95: 250_000), Self.counts(100, failing: 0), judge: j).verdict == .hold)
        #expect(look(Self.counts(100, failing: 0), Self.counts(100, failing: 0), judge: j).verdict == .hold)
        #expect(look(Self.counts(5, failing: 0, p95: 900_000), Self.counts(100, failing: 0), judge: j).verdict == .hold)
        // No ceiling set: never checked.
        #expect(look(Self.counts(100, failing: 0, p95: 9e9), Self.counts(100, failing: 0)).verdict == .hold)
    }

    @Test("1% to 3% over 6000 outcomes each reverts, with the statistic and threshold in the evidence")
    func regressionReverts() {
        let j = look(Self.counts(6000, failing: 180), Self.counts(6000, failing: 60))
        #expect(j.verdict == .revert)
        #expect(Self.check(j) == "sequential")
        #expect(
            j.reason.hasPrefix(
                "treatment error rate 3.0% vs control 1.0% (+2.0 pp > 1 pp allowed); sequential test z=7.8 ≥ 3.6, over the allowance z="))
        let e = j.evidence
        #expect(e["treatment"]?["failures"] == .int(180))
        #expect(e["control"]?["total"] == .int(6000))
        #expect(e["alpha"] == .double(0.01))
        #expect(e["elapsedSeconds"] == .int(300))
        #expect(e["difference"]?.numberValue.map { abs($0 - 0.02) < 1e-12 } == true)
        let z = e["statistic"]?.numberValue ?? 0, threshold = e["threshold"]?.numberValue ?? .infinity
        #expect(z > threshold)
        #expect(abs(z - 7.82) < 0.01)
    }

    @Test("an increase within the allowance does not revert and passes after the watch")
    func withinAllowance() {
        let t = Self.counts(72000, failing: 1080), c = Self.counts(72000, failing: 720)  // 1.5% vs 1%
        #expect(look(t, c, at: .seconds(600)).verdict == .hold)
        let done = look(t, c, at: .seconds(3600))
        #expect(done.verdict == .advance)
        #expect(done.reason.hasPrefix("healthy after 1h: treatment error rate 1.5% vs control 1.0% (+0.5 pp, 1 pp allowed)"))
    }

    @Test("significantly worse, but not beyond the allowance: no revert")
    func significantButAllowed() {
        // 1.9% vs 1.0% on 20000 each: z against "no worse" is large, the excess over 1 pp is not shown.
        let j = look(Self.counts(20000, failing: 380), Self.counts(20000, failing: 200))
        #expect(j.verdict == .hold)
        #expect(j.evidence["sequential"]?["z"]?.numberValue ?? 0 > j.evidence["sequential"]?["threshold"]?.numberValue ?? .infinity)
    }

    @Test("healthy steps pass only after the watch: advance, or complete on the final step")
    func passesAfterWatch() {
        let t = Self.counts(72000, failing: 650), c = Self.counts(72000, failing: 720)
        let early = look(t, c, at: .seconds(1800))
        #expect(early.verdict == .hold)
        #expect(early.reason.hasPrefix("watching (30m of 1h): treatment error rate 0.90% vs control 1.0%"))
        #expect(look(t, c, at: .seconds(3599)).verdict == .hold)
        #expect(look(t, c, at: .seconds(3600)).verdict == .advance)
        #expect(look(t, c, at: .seconds(5000), final: true).verdict == .complete)
        #expect(Self.check(look(t, c, at: .seconds(3600))) == "healthy")
    }

    @Test("the minimum sample is not enough to pass: at 0.1 requests/s an hour's data holds")
    func notEnoughPower() {
        let j = look(Self.counts(360, failing: 4), Self.counts(360, failing: 3), at: .seconds(3600), final: true)
        #expect(j.verdict == .hold)
        #expect(j.reason.hasPrefix("not enough data: 360 treatment and 360 control outcomes cannot show a 1 pp increase"))
        #expect(j.evidence["notEnoughData"] == .bool(true))
        #expect(j.evidence["power"]?["enough"] == .bool(false))
        // No errors at all is no proof either.
        #expect(look(Self.counts(360, failing: 0), Self.counts(360, failing: 0), at: .seconds(3600)).verdict == .hold)
        // An hour at 1 request/s is.
        #expect(look(Self.counts(3600, failing: 36), Self.counts(3600, failing: 36), at: .seconds(3600)).verdict == .advance)
    }

    @Test("worse than allowed at the end of the watch but not conclusive: hold, not pass")
    func worseNotConclusive() {
        let j = look(Self.counts(3600, failing: 90), Self.counts(3600, failing: 45), at: .seconds(3600))  // 2.5% vs 1.25%
        #expect(j.verdict == .hold)
        #expect(Self.check(j) == "worse")
        #expect(j.reason.hasSuffix("not conclusive yet; watching on"))
        // Within the allowance, but not by a standard error (1.8% vs 1.0% on 3600 each): hold.
        let close = look(Self.counts(3600, failing: 65), Self.counts(3600, failing: 36), at: .seconds(3600))
        #expect(close.verdict == .hold)
        #expect(close.reason.hasSuffix("not within the allowance by a standard error yet; watching on"))
        #expect(close.evidence["healthyMargin"]?.numberValue ?? 0 < 0)
        // Above the ceiling by the point estimate only: hold as well.
        let high = RolloutJudge(limits: GuardLimits(maxErrorRate: 0.012, maxErrorIncrease: 0.01, minSamples: 200))
        #expect(look(Self.counts(3600, failing: 45), Self.counts(3600, failing: 44), at: .seconds(3600), judge: high).verdict == .hold)
    }

    // MARK: - Minutes: incidents, bursts, drift

    /// A step's minutes: `rates` gives each minute's (treatment, control) error rate, with `nt` and
    /// `nc` outcomes a minute; every minute whole.
    static func minutes(_ rates: [(Double, Double)], nt: Double = 1200, nc: Double = 4800) -> (CohortCounts, CohortCounts, StepMinutes) {
        var t = CohortCounts(), c = CohortCounts()
        var tm: [CohortCounts] = [], cm: [CohortCounts] = []
        for (rt, rc) in rates {
            tm.append(counts(nt, failing: (nt * rt).rounded()))
            cm.append(counts(nc, failing: (nc * rc).rounded()))
            t.add(tm.last!)
            c.add(cm.last!)
        }
        return (t, c, StepMinutes(treatment: tm, control: cm, stepSeconds: rates.map { _ in 60 }))
    }

    func look(_ m: (CohortCounts, CohortCounts, StepMinutes), at elapsed: Duration, window: ControlWindow = .concurrent) -> RolloutJudgement {
        judge.judge(
            treatment: m.0, control: m.1, stepElapsed: elapsed, stepWatch: .seconds(3600), isFinalStep: false, minutes: m.2,
            controlWindow: window)
    }

    @Test("issue 14: a shared incident holds instead of reverting; the same counts with no concurrent control revert")
    func sharedIncidentHolds() {
        // Step 1 at 20 % of 100 outcomes/s, 1 % errors, then a minute failing 20 % of both cohorts.
        let m = Self.minutes([(0.01, 0.01), (0.2, 0.21)])
        let j = look(m, at: .seconds(120))
        #expect(j.verdict == .hold)
        #expect(Self.check(j) == "incident")
        #expect(j.reason.hasPrefix("both cohorts are failing at 21.0% and 20.0%: an incident not caused by this flag; holding"))
        #expect(j.evidence["incident"]?["minutes"] == .int(1))
        // The treatment alone is above the ceiling: the old rule, and still the rule without a concurrent control.
        #expect((m.0.errorRate ?? 0) > 0.05)
        #expect(look(m, at: .seconds(120), window: .beforeRollout(baseline: [])).verdict == .revert)
        #expect(
            judge.judge(
                treatment: m.0, control: m.1, stepElapsed: .seconds(120), stepWatch: .seconds(3600), isFinalStep: false,
                controlWindow: .beforeRollout(baseline: [])
            ).verdict == .revert)
        // Without minutes (a Prometheus source) the window is one block: the control is failing too, so hold.
        #expect(judge.judge(treatment: m.0, control: m.1, stepElapsed: .seconds(120), stepWatch: .seconds(3600), isFinalStep: false).verdict == .hold)
    }

    @Test("the ceiling still reverts at once when the treatment is above it and the concurrent control is not")
    func ceilingRevertsWithoutIncident() {
        let j = look(Self.minutes([(0.01, 0.01), (0.2, 0.01)]), at: .seconds(90))
        #expect(j.verdict == .revert)
        #expect(Self.check(j) == "ceiling")
    }

    @Test("during an incident, a treatment significantly worse than the control still reverts")
    func worseDuringIncident() {
        let j = look(Self.minutes([(0.01, 0.01), (0.6, 0.2)]), at: .seconds(120))
        // Up to half as bad again as the control is still the incident (late outcomes mix the minutes).
        #expect(Self.check(look(Self.minutes([(0.01, 0.01), (0.28, 0.2)]), at: .seconds(120))) == "incident")
        #expect(j.verdict == .revert)
        #expect(Self.check(j) == "ceiling")
        #expect(j.reason.hasPrefix("during an incident the treatment failed at 60.0% against the control's 20.0%: significantly worse"))
        // Within the allowance of the failing control: an incident, not the flag.
        #expect(Self.check(look(Self.minutes([(0.01, 0.01), (0.205, 0.2)]), at: .seconds(120))) == "incident")
    }

    @Test("incident minutes do not count towards the watch, nor the pass")
    func incidentClock() {
        var rates = [(Double, Double)](repeating: (0.01, 0.01), count: 60)
        rates[30] = (0.3, 0.3)
        rates[31] = (0.3, 0.3)
        let m = Self.minutes(rates)
        let early = look(m, at: .seconds(3600))
        #expect(early.verdict == .hold)
        #expect(Self.check(early) == "watch")
        #expect(early.reason.hasPrefix("watching (58m of 1h, 2m of incidents not counted)"))
        let m2 = Self.minutes(rates + [(0.01, 0.01), (0.01, 0.01)])
        let done = look(m2, at: .seconds(3720))
        #expect(done.verdict == .advance)
        #expect(done.reason.hasPrefix("healthy after 1h"))
    }

    @Test("a burst in one cohort's minute is not many independent failures: the minutes widen the variance")
    func burstInOneCohort() {
        // Ten minutes; one minute of the treatment fails at 20 % (a heavy user's spell), the rest at 1 %.
        var rates = [(Double, Double)](repeating: (0.01, 0.01), count: 10)
        rates[5] = (0.2, 0.01)
        let m = Self.minutes(rates)
        // Judged as independent outcomes, it is a clear regression…
        #expect(
            judge.judge(treatment: m.0, control: m.1, stepElapsed: .seconds(600), stepWatch: .seconds(3600), isFinalStep: false).verdict == .revert)
        // …minute by minute, one bad minute is not.
        let j = look(m, at: .seconds(600))
        #expect(j.verdict == .hold)
        #expect(j.evidence["sequential"]?["dispersion"]?.numberValue ?? 0 > 5)
        // A regression in every minute is still reverted.
        #expect(look(Self.minutes([(0.03, 0.01), (0.03, 0.01), (0.03, 0.01), (0.03, 0.01), (0.03, 0.01)]), at: .seconds(300)).verdict == .revert)
    }

    @Test("a minute bad for both cohorts cancels in the paired comparison")
    func pairedMinutes() {
        // Unequal cohorts and a shared minute at 40 % in each: unpaired, the minute's weight differs.
        let m = Self.minutes([(0.01, 0.01), (0.01, 0.01), (0.4, 0.4), (0.015, 0.01), (0.015, 0.01)], nt: 600, nc: 5400)
        let j = look(m, at: .seconds(300))
        #expect(j.verdict == .hold)
        #expect(abs(j.evidence["sequential"]?["difference"]?.numberValue ?? 1) < 0.01)
    }

    @Test("at 100 % without a holdback, the baseline's measured drift widens the before/after comparison")
    func driftWidens() {
        // The hour after at 3.5 %, the hour before at 2 %: 1.5 pp over a 1 pp allowance.
        let after = (0..<60).map { _ in Self.counts(1200, failing: 42) }
        let before = (0..<60).map { _ in Self.counts(1200, failing: 24) }
        var t = CohortCounts(), c = CohortCounts()
        for x in after { t.add(x) }
        for x in before { c.add(x) }
        let minutes = StepMinutes(treatment: after, control: before, stepSeconds: after.map { _ in 60 })
        func verdict(_ baseline: [CohortCounts]) -> RolloutJudgement {
            judge.judge(
                treatment: t, control: c, stepElapsed: .seconds(3600), stepWatch: .seconds(3600), isFinalStep: true, minutes: minutes,
                controlWindow: .beforeRollout(baseline: baseline))
        }
        // A flat baseline: a regression.
        #expect(verdict((0..<180).map { _ in Self.counts(1200, failing: 24) }).verdict == .revert)
        // A baseline that has drifted ±50 % every two hours: the same difference is within its drift.
        let drifting = (0..<180).map { i in
            Self.counts(1200, failing: (1200 * 0.02 * (1 + 0.5 * RolloutMath.sin(2 * Double.pi * Double(i) / 120))).rounded())
        }
        let j = verdict(drifting)
        #expect(j.verdict != .revert)
        #expect(j.evidence["sequential"]?["driftVariance"]?.numberValue ?? 0 > 0)
    }

    // MARK: - The sequential test's properties

    @Test("more treatment failures never undo a revert (monotone in the evidence)")
    func monotoneInFailures() {
        for control in [0.0, 20, 60] {
            let verdicts = (0...600).map { look(Self.counts(6000, failing: Double($0)), Self.counts(6000, failing: control)).verdict }
            let first = verdicts.firstIndex(of: .revert)
            #expect(first != nil)
            if let first { #expect(verdicts[first...].allSatisfy { $0 == .revert }) }
        }
    }

    @Test("at fixed rates, more outcomes never undo a revert, and the statistic grows")
    func monotoneInSample() {
        var reverted = false
        var lastZ = -Double.infinity
        for n in stride(from: 200.0, through: 20000, by: 100) {
            let j = look(Self.counts(n, failing: n * 0.025), Self.counts(n, failing: n * 0.01))
            let z = j.evidence["sequential"]?["z"]?.numberValue ?? 0
            #expect(z > lastZ)
            lastZ = z
            if reverted { #expect(j.verdict == .revert) }
            reverted = reverted || j.verdict == .revert
        }
        #expect(reverted)
    }

    @Test("a smaller alpha needs more evidence")
    func alphaOrders() {
        let t = Self.counts(6000, failing: 180), c = Self.counts(6000, failing: 60)
        func threshold(_ alpha: Double) -> Double {
            RolloutJudge(limits: Self.limits, alpha: alpha).judge(
                treatment: t, control: c, stepElapsed: .seconds(60), stepWatch: .seconds(3600), isFinalStep: false
            ).evidence["sequential"]?["threshold"]?.numberValue ?? 0
        }
        #expect(threshold(0.001) > threshold(0.01))
        #expect(threshold(0.01) > threshold(0.05))
        // The mSPRT threshold is above the single-look one-sided z (2.33 at 1%).
        #expect(threshold(0.01) > 2.33)
    }

    @Test("the threshold grows slowly with the data, as an always-valid test's must")
    func thresholdGrows() {
        func threshold(_ n: Double) -> Double {
            look(Self.counts(n, failing: n * 0.01), Self.counts(n, failing: n * 0.01)).evidence["sequential"]?["threshold"]?.numberValue ?? 0
        }
        let at = [2000.0, 20000, 200000, 2_000_000].map(threshold)
        #expect(zip(at, at.dropFirst()).allSatisfy { $0 < $1 })
        #expect(at[3] < 6)
    }

    @Test("a whole-number-free Prometheus count is judged like any other")
    func fractionalCounts() {
        let j = look(CohortCounts(successes: 5820.4, failures: 179.6), CohortCounts(successes: 5940.2, failures: 59.8))
        #expect(j.verdict == .revert)
        #expect(j.reason.contains("3.0% vs control 1.0%"))
    }

    // MARK: - The numbers underneath

    @Test("log, exp and the normal quantile agree with known values")
    func math() {
        for (x, expected) in [(1.0, 0.0), (2.0, 0.693147180559945309), (10.0, 2.302585092994045684), (1e-300, -690.775527898213705)] {
            #expect(abs(RolloutMath.log(x) - expected) <= 1e-14 * max(1, abs(expected)))
        }
        for (x, expected) in [(0.0, 1.0), (1.0, 2.718281828459045235), (-20.0, 2.061153622438557828e-9), (100.0, 2.688117141816135448e43)] {
            #expect(abs(RolloutMath.exp(x) - expected) <= 1e-14 * expected)
        }
        #expect(abs(RolloutMath.normalQuantile(0.99) - 2.326347874040841) < 1e-9)
        #expect(abs(RolloutMath.normalQuantile(0.8) - 0.8416212335729143) < 1e-9)
        #expect(abs(RolloutMath.normalQuantile(0.001) + 3.090232306167813) < 1e-9)
        #expect(abs(RolloutMath.normalCDF(1.959963984540054) - 0.975) < 1e-12)
    }

    @Test("reasons print numbers without exponents")
    func text() {
        #expect(RolloutText.percent(0.031) == "3.1%")
        #expect(RolloutText.percent(0.0045) == "0.45%")
        #expect(RolloutText.points(0.021) == "+2.1 pp")
        #expect(RolloutText.points(-0.001) == "-0.1 pp")
        #expect(RolloutText.points(-0.0005) == "-0.05 pp")
        #expect(RolloutText.percent(0.009967) == "1.0%")
        #expect(RolloutText.fixed(1e-7, 2) == "0.00")
        #expect(RolloutText.short(1.0, 2) == "1")
        #expect(RolloutText.count(12) == "12")
        #expect(RolloutText.count(59.8) == "59.8")
    }
}
