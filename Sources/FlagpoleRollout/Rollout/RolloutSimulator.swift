import FlagpoleCore

/// Replays synthetic traffic through the watcher's real decision code (``RolloutJudge``) and
/// measures how it behaves: how fast it reverts a regression, how often it reverts a healthy
/// rollout, and how often it holds for lack of data.
///
/// Each run is one rollout step, beginning at a random second of a minute. The treatment gets
/// `requestsPerSecond` requests a second and the control the same or ``Scenario/controlRequestsPerSecond``,
/// arriving at random (Poisson); each request fails with its cohort's error rate — the control at
/// the baseline, the treatment at the treatment rate — and the scenario's ``RolloutTraffic`` adds
/// shared incidents, drift, heavy users and late outcomes. Outcomes are counted per minute of their
/// arrival, as the built-in counters count them. Every ``Configuration/lookInterval`` the judge
/// sees the step's cumulative counts and its minutes; the run ends at the first verdict that is not
/// a hold, or at the end of the watch (the look at exactly ``Configuration/stepWatch``). Pure and
/// deterministic: the same seed gives the same result.
package struct RolloutSimulator: Sendable {
    /// How the simulated rollout is watched and judged.
    package struct Configuration: Sendable, Hashable {
        /// The limits the judge enforces. Default: ``GuardPolicy/builtIn``'s (5 % ceiling,
        /// 1 pp allowed increase, 200 samples, no latency ceiling).
        package var limits: GuardLimits
        /// The judge's false-revert bound per step. Default `0.01`.
        package var alpha: Double
        /// How often the watcher looks. Default 10 s.
        package var lookInterval: Duration
        /// How long the step is watched. Default 1 h.
        package var stepWatch: Duration
        /// A regression counts as detected when reverted within this. Default 5 min.
        package var detectionWindow: Duration
        /// Simulated rollouts per grid cell. Default 200.
        package var runs: Int
        /// The seed every cell's generator derives from. Default 1.
        package var seed: UInt64

        /// Creates a configuration; every default is stated on its property.
        package init(
            limits: GuardLimits = RolloutSimulator.builtInLimits, alpha: Double = 0.01,
            lookInterval: Duration = .seconds(10), stepWatch: Duration = .seconds(3600),
            detectionWindow: Duration = .seconds(300), runs: Int = 200, seed: UInt64 = 1
        ) {
            self.limits = limits
            self.alpha = alpha
            self.lookInterval = lookInterval
            self.stepWatch = stepWatch
            self.detectionWindow = detectionWindow
            self.runs = runs
            self.seed = seed
        }
    }

    /// The limits of ``GuardPolicy/builtIn``.
    package static let builtInLimits = GuardLimits(
        maxErrorRate: GuardPolicy.builtIn.maxErrorRate ?? 0.05,
        maxErrorIncrease: GuardPolicy.builtIn.maxErrorIncrease ?? 0.01,
        minSamples: GuardPolicy.builtIn.minSamples ?? 200)

    /// One cell of the grid: a traffic level, the two cohorts' true error rates, and the kind of traffic.
    package struct Scenario: Sendable, Hashable {
        /// Requests a second in the treatment (and in the control, unless ``controlRequestsPerSecond``).
        package var requestsPerSecond: Double
        /// The control's error rate (0…1).
        package var baselineErrorRate: Double
        /// The treatment's error rate (0…1); equal to the baseline means no regression.
        package var treatmentErrorRate: Double
        /// Requests a second in the control when the cohorts are unequal; nil: the treatment's.
        package var controlRequestsPerSecond: Double?
        /// What else happens to the traffic. Default: ``RolloutTraffic/plain``.
        package var traffic: RolloutTraffic

        /// Creates a scenario.
        package init(
            requestsPerSecond: Double, baselineErrorRate: Double, treatmentErrorRate: Double, controlRequestsPerSecond: Double? = nil,
            traffic: RolloutTraffic = .plain
        ) {
            self.requestsPerSecond = requestsPerSecond
            self.baselineErrorRate = baselineErrorRate
            self.treatmentErrorRate = treatmentErrorRate
            self.controlRequestsPerSecond = controlRequestsPerSecond
            self.traffic = traffic
        }

        /// The control's requests a second.
        package var controlRate: Double { controlRequestsPerSecond ?? requestsPerSecond }
        /// Whether every run has a shared incident during the step (``RolloutTraffic/Incidents/oneWithin``).
        package var hasIncidentInStep: Bool { traffic.incidents?.oneWithin != nil }
        /// The traffic's name, with the cohorts' rates when unequal: `unequal 20/80 req/s+incidents`.
        package var trafficName: String {
            guard let c = controlRequestsPerSecond, c != requestsPerSecond else { return traffic.name }
            let cohorts = "unequal \(RolloutText.short(requestsPerSecond, 3))/\(RolloutText.short(c, 3)) req/s"
            return traffic == .plain ? cohorts : cohorts + "+" + traffic.name
        }

        /// Whether the treatment is worse than the control.
        package var isRegression: Bool { treatmentErrorRate > baselineErrorRate }
    }

    /// What the runs of one scenario did.
    package struct CellResult: Sendable, Hashable {
        /// The scenario.
        package var scenario: Scenario
        /// How many rollouts were simulated.
        package var runs: Int
        /// Simulated hours of watching: with no regression, the time each run was watched (to its
        /// revert, its pass, or the end of its watch — later when incidents held its clock back);
        /// with a regression, runs × the step's watch.
        package var simulatedHours: Double
        /// Runs that ended in a revert, at any time.
        package var reverts: Int
        /// Runs reverted within the detection window.
        package var revertsWithinWindow: Int
        /// Runs that passed (advanced) at the end of the watch.
        package var passes: Int
        /// Runs still holding at the end of the watch because of "not enough data".
        package var notEnoughDataHolds: Int
        /// Runs still holding at the end of the watch for another reason (worse than allowed but not conclusive).
        package var otherHolds: Int
        /// The median time to revert over all runs (a run never reverted counts as never); nil when
        /// at most half the runs reverted.
        package var medianDetection: Duration?
        /// The 95th percentile of the time to revert the same way; nil when at most 95 % reverted.
        package var p95Detection: Duration?

        /// A cell's results from their parts, for runs simulated elsewhere (the watcher's replay test
        /// counts the same things through the real watcher and prints them with ``RolloutSimulator/gridLines(_:detectionWindow:showRuns:)``).
        package init(
            scenario: RolloutSimulator.Scenario, runs: Int, simulatedHours: Double, reverts: Int, revertsWithinWindow: Int, passes: Int,
            notEnoughDataHolds: Int, otherHolds: Int, medianDetection: Duration? = nil, p95Detection: Duration? = nil
        ) {
            self.scenario = scenario
            self.runs = runs
            self.simulatedHours = simulatedHours
            self.reverts = reverts
            self.revertsWithinWindow = revertsWithinWindow
            self.passes = passes
            self.notEnoughDataHolds = notEnoughDataHolds
            self.otherHolds = otherHolds
            self.medianDetection = medianDetection
            self.p95Detection = p95Detection
        }

        /// Share of runs reverted within the detection window (0…1).
        package var detectionRate: Double { runs > 0 ? Double(revertsWithinWindow) / Double(runs) : 0 }
        /// Reverts per simulated hour; a false-revert rate when the scenario is not a regression.
        package var revertsPerHour: Double { simulatedHours > 0 ? Double(reverts) / simulatedHours : 0 }
        /// Share of runs that ended the watch holding for "not enough data" (0…1).
        package var notEnoughDataShare: Double { runs > 0 ? Double(notEnoughDataHolds) / Double(runs) : 0 }
        /// Share of runs that passed (0…1).
        package var passShare: Double { runs > 0 ? Double(passes) / Double(runs) : 0 }
    }

    /// The configuration.
    package let configuration: Configuration
    let judge: RolloutJudge

    /// A simulator with the given configuration.
    package init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.judge = RolloutJudge(limits: configuration.limits, alpha: configuration.alpha)
    }

    /// How one run ended.
    enum Ending: Sendable, Hashable {
        case reverted(atSecond: Int64)
        case passed(atSecond: Int64)
        case notEnoughData(atSecond: Int64)
        case holding(atSecond: Int64)

        /// How long the step was watched.
        var watched: Int64 {
            switch self {
            case .reverted(let s), .passed(let s), .notEnoughData(let s), .holding(let s): return s
            }
        }
    }

    /// Simulates every run of one scenario.
    package func run(_ scenario: Scenario) -> CellResult {
        var random = SimulationRandom(seed: Self.seed(configuration.seed, scenario))
        var revertTimes: [Int64] = []
        var result = CellResult(
            scenario: scenario, runs: max(0, configuration.runs),
            simulatedHours: Double(max(0, configuration.runs)) * configuration.stepWatch.rolloutSeconds / 3600,
            reverts: 0, revertsWithinWindow: 0, passes: 0, notEnoughDataHolds: 0, otherHolds: 0)
        let window = configuration.detectionWindow.components.seconds
        var watched: Int64 = 0
        for _ in 0..<result.runs {
            let ending = simulateOne(scenario, &random)
            watched += ending.watched
            switch ending {
            case .reverted(let second):
                result.reverts += 1
                if second <= window { result.revertsWithinWindow += 1 }
                revertTimes.append(second)
            case .passed: result.passes += 1
            case .notEnoughData: result.notEnoughDataHolds += 1
            case .holding: result.otherHolds += 1
            }
        }
        // Hours watched: a run that reverts stops; one held by incidents goes on past the watch.
        if scenario.isRegression == false { result.simulatedHours = Double(watched) / 3600 }
        let sorted = revertTimes.sorted().map { Duration.seconds($0) }
        result.medianDetection = CellResult.detectionQuantile(0.5, revertTimes: sorted, runs: result.runs)
        result.p95Detection = CellResult.detectionQuantile(0.95, revertTimes: sorted, runs: result.runs)
        return result
    }

    /// Simulates every combination of traffic level and treatment error rate, in that order
    /// (traffic levels outer).
    package func runGrid(
        requestsPerSecond: [Double], baselineErrorRate: Double, treatmentErrorRates: [Double]
    )
        -> [CellResult]
    {
        requestsPerSecond.flatMap { rps in
            treatmentErrorRates.map { rate in
                run(Scenario(requestsPerSecond: rps, baselineErrorRate: baselineErrorRate, treatmentErrorRate: rate))
            }
        }
    }

    /// One rollout step, look by look.
    func simulateOne(_ scenario: Scenario, _ random: inout SimulationRandom) -> Ending {
        let look = max(1, configuration.lookInterval.components.seconds)
        let watch = max(look, configuration.stepWatch.components.seconds)
        // The step's clock leaves incident minutes out: a step held by them is watched on, up to twice its watch.
        let limit = 2 * watch
        let start = Int64(random.next() % 60)  // the step begins at this second of minute 0
        let treatmentRate = scenario.requestsPerSecond, controlRate = scenario.controlRate
        var traffic = RolloutTraffic.Run(
            traffic: scenario.traffic, stepStart: start, from: start, to: start + limit,
            treatmentShare: treatmentRate / max(1e-12, treatmentRate + controlRate), seed: random.next())
        var treatment = CohortCounts(), control = CohortCounts()
        var tm: [CohortCounts] = [], cm: [CohortCounts] = [], seconds: [Double] = []
        var second: Int64 = 0
        while second < limit {
            let next = min(limit, second + look)
            traffic.requests(
                from: start + second, to: start + next, treatmentRate: treatmentRate, controlRate: controlRate,
                treatmentErrorRate: scenario.treatmentErrorRate, controlErrorRate: scenario.baselineErrorRate,
                baselineErrorRate: scenario.baselineErrorRate)
            second = next
            let now = start + second
            let minutes = Int((now - 1) / 60) + 1
            while tm.count < minutes {
                tm.append(CohortCounts())
                cm.append(CohortCounts())
                seconds.append(0)
            }
            for o in traffic.arrived(before: now) where o.minute >= 0 {
                let i = Int(o.minute)
                while tm.count <= i {
                    tm.append(CohortCounts())
                    cm.append(CohortCounts())
                    seconds.append(0)
                }
                let counts = CohortCounts(successes: Double(o.successes), failures: Double(o.failures))
                if o.cohort == .treatment {
                    tm[i].add(counts)
                    treatment.add(counts)
                } else {
                    cm[i].add(counts)
                    control.add(counts)
                }
            }
            for i in seconds.indices {
                let m = Int64(i) * 60
                seconds[i] = Double(max(0, min(now, m + 60) - max(start, m)))
            }
            let a = judge.assess(
                treatment: treatment, control: control, stepElapsed: .seconds(second),
                stepWatch: .seconds(watch), isFinalStep: false, sourceFailure: nil,
                minutes: StepMinutes(treatment: tm, control: cm, stepSeconds: seconds), controlWindow: .concurrent)
            switch a.verdict {
            case .revert:
                return .reverted(atSecond: second)
            case .advance, .complete: return .passed(atSecond: second)
            case .hold:
                // At the end of the watch the run ends, unless the clock is behind because of incidents.
                let clockBehind = a.check == .incident || a.check == .watch
                if second >= watch && (!clockBehind || second >= limit) {
                    return a.isNotEnoughData ? .notEnoughData(atSecond: second) : .holding(atSecond: second)
                }
            }
        }
        return .holding(atSecond: second)
    }

    /// A cell's seed: the configuration's seed mixed with the scenario, so a cell's result does not
    /// depend on which other cells the grid has.
    static func seed(_ seed: UInt64, _ scenario: Scenario) -> UInt64 {
        var state = seed
        var mixed = SimulationRandom.splitMix(&state)
        for value in [scenario.requestsPerSecond, scenario.baselineErrorRate, scenario.treatmentErrorRate] {
            state = mixed ^ value.bitPattern
            mixed = SimulationRandom.splitMix(&state)
        }
        // Other traffic than the plain default is mixed in by its name (FNV-1a), so plain cells keep their seeds.
        let name = scenario.trafficName
        if name != "plain" {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            state = mixed ^ hash
            mixed = SimulationRandom.splitMix(&state)
        }
        return mixed
    }
}

extension RolloutSimulator {
    /// One of the goals for the judge, checked against a grid's results.
    package struct Goal: Sendable, Hashable {
        /// What the goal asks, in words.
        package var name: String
        /// Whether the grid meets it; nil when the grid lacks the cells to check it.
        package var passed: Bool?
        /// The measured numbers.
        package var detail: String

        /// A goal checked elsewhere (the watcher's replay test), printed with ``RolloutSimulator/goalLines(_:)``.
        package init(name: String, passed: Bool?, detail: String) {
            self.name = name
            self.passed = passed
            self.detail = detail
        }
    }

    /// The goals of the rollout simulator:
    ///
    /// 1. at 20 requests/s per cohort with a 1 % baseline, a regression to 3 % is reverted within
    ///    the detection window (5 min) in at least 95 % of runs;
    /// 2. with no regression, false reverts in at most 1 % of simulated hours, in every traffic level;
    /// 3. when the grid has cells with a shared incident in every step: none of them is reverted;
    /// 4. at 0.1 requests/s no run passes: every run that is not reverted ends the watch holding
    ///    with "not enough data".
    ///
    /// Goals 1 and 2 hold in every cell they concern with plain traffic or ``RolloutTraffic/real``
    /// traffic; the rows of one effect alone are not checked (an incident in a step's first minutes
    /// blanks the comparison: with both cohorts at 20 req/s the incidents row reverts about 93 % of
    /// 1 % → 3 % regressions within 5 minutes).
    package static func goals(_ cells: [CellResult]) -> [Goal] {
        func same(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(1, abs(b)) }
        var goals: [Goal] = []

        // Goals 1 and 2 are checked on plain traffic and on real traffic with every effect (the rows
        // of one effect alone are there to be read, not checked).
        func checked(_ c: CellResult) -> Bool { c.scenario.traffic == .plain || c.scenario.traffic == .real }
        let detection = cells.filter {
            checked($0) && same($0.scenario.requestsPerSecond, 20) && same($0.scenario.baselineErrorRate, 0.01)
                && same($0.scenario.treatmentErrorRate, 0.03)
        }
        let name1 = "20 req/s, 1% -> 3%: reverted within 5 min in >= 95% of runs"
        if let worst = detection.min(by: { $0.detectionRate < $1.detectionRate }) {
            goals.append(
                Goal(
                    name: name1, passed: detection.allSatisfy { $0.detectionRate >= 0.95 },
                    detail: (detection.count > 1 ? "worst of \(detection.count) cells (\(worst.scenario.trafficName)): " : "")
                        + "\(RolloutText.fixed(worst.detectionRate * 100, 1))% of \(worst.runs) runs, median "
                        + (worst.medianDetection.map(RolloutText.duration) ?? "never")))
        } else {
            goals.append(Goal(name: name1, passed: nil, detail: "the grid has no such cell"))
        }

        let healthy = cells.filter { checked($0) && $0.scenario.treatmentErrorRate == $0.scenario.baselineErrorRate }
        let name2 = "no regression: false reverts in <= 1% of simulated hours"
        if healthy.isEmpty {
            goals.append(Goal(name: name2, passed: nil, detail: "the grid has no cell without a regression"))
        } else {
            let worst = healthy.max { $0.revertsPerHour < $1.revertsPerHour }!
            let reverts = healthy.reduce(0) { $0 + $1.reverts }
            let hours = healthy.reduce(0.0) { $0 + $1.simulatedHours }
            goals.append(
                Goal(
                    name: name2, passed: healthy.allSatisfy { $0.revertsPerHour <= 0.01 },
                    detail: "\(reverts) in \(RolloutText.short(hours, 1)) hours; worst "
                        + "\(RolloutText.fixed(worst.revertsPerHour * 100, 2))% at "
                        + "\(RolloutText.short(worst.scenario.requestsPerSecond, 3)) req/s"
                        + (worst.scenario.trafficName == "plain" ? "" : " (\(worst.scenario.trafficName))")))
        }

        let incident = cells.filter { $0.scenario.hasIncidentInStep && !$0.scenario.isRegression }
        if !incident.isEmpty {
            let runs = incident.reduce(0) { $0 + $1.runs }
            let reverts = incident.reduce(0) { $0 + $1.reverts }
            goals.append(
                Goal(
                    name: "a shared incident during the step: no revert", passed: reverts == 0,
                    detail:
                        "\(reverts) reverts in \(runs) runs with an incident (10-50% errors in both cohorts for 1-5 min) in the step's first minutes")
            )
        }

        let slow = cells.filter { same($0.scenario.requestsPerSecond, 0.1) }
        let name3 = "0.1 req/s: holds with \"not enough data\", never passes"
        if slow.isEmpty {
            goals.append(Goal(name: name3, passed: nil, detail: "the grid has no 0.1 req/s cell"))
        } else {
            let runs = slow.reduce(0) { $0 + $1.runs }
            let passes = slow.reduce(0) { $0 + $1.passes }
            let other = slow.reduce(0) { $0 + $1.otherHolds }
            let notEnough = slow.reduce(0) { $0 + $1.notEnoughDataHolds }
            let reverts = slow.reduce(0) { $0 + $1.reverts }
            goals.append(
                Goal(
                    name: name3, passed: passes == 0 && other == 0,
                    detail: "\(runs) runs: \(notEnough) not enough data, \(reverts) reverted, \(passes) passed, "
                        + "\(other) held for another reason"))
        }
        return goals
    }
}
