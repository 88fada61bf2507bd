/// Replays synthetic traffic through the watcher's real decision code (``RolloutJudge``) and
/// measures how it behaves: how fast it reverts a regression, how often it reverts a healthy
/// rollout, and how often it holds for lack of data.
///
/// Each run is one rollout step. Both cohorts get `requestsPerSecond` requests a second, arriving
/// evenly (⌊rate · t⌋ by time t); each request fails independently (Bernoulli) with the cohort's
/// error rate — the control at the baseline, the treatment at the treatment rate. Every
/// ``Configuration/lookInterval`` the judge sees the step's cumulative counts; the run ends at the
/// first verdict that is not a hold, or at the end of the watch (the look at exactly
/// ``Configuration/stepWatch``). Pure and deterministic: the same seed gives the same result.
public struct RolloutSimulator: Sendable {
    /// How the simulated rollout is watched and judged.
    public struct Configuration: Sendable, Hashable {
        /// The limits the judge enforces. Default: ``GuardPolicy/builtIn``'s (5 % ceiling,
        /// 1 pp allowed increase, 200 samples, no latency ceiling).
        public var limits: GuardLimits
        /// The judge's false-revert bound per step. Default `0.01`.
        public var alpha: Double
        /// How often the watcher looks. Default 10 s.
        public var lookInterval: Duration
        /// How long the step is watched. Default 1 h.
        public var stepWatch: Duration
        /// A regression counts as detected when reverted within this. Default 5 min.
        public var detectionWindow: Duration
        /// Simulated rollouts per grid cell. Default 200.
        public var runs: Int
        /// The seed every cell's generator derives from. Default 1.
        public var seed: UInt64

        /// Creates a configuration; every default is stated on its property.
        public init(
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
    public static let builtInLimits = GuardLimits(
        maxErrorRate: GuardPolicy.builtIn.maxErrorRate ?? 0.05,
        maxErrorIncrease: GuardPolicy.builtIn.maxErrorIncrease ?? 0.01,
        minSamples: GuardPolicy.builtIn.minSamples ?? 200)

    /// One cell of the grid: a traffic level and the two cohorts' true error rates.
    public struct Scenario: Sendable, Hashable {
        /// Requests a second in each cohort.
        public var requestsPerSecond: Double
        /// The control's error rate (0…1).
        public var baselineErrorRate: Double
        /// The treatment's error rate (0…1); equal to the baseline means no regression.
        public var treatmentErrorRate: Double

        /// Creates a scenario.
        public init(requestsPerSecond: Double, baselineErrorRate: Double, treatmentErrorRate: Double) {
            self.requestsPerSecond = requestsPerSecond
            self.baselineErrorRate = baselineErrorRate
            self.treatmentErrorRate = treatmentErrorRate
        }

        /// Whether the treatment is worse than the control.
        public var isRegression: Bool { treatmentErrorRate > baselineErrorRate }
    }

    /// What the runs of one scenario did.
    public struct CellResult: Sendable, Hashable {
        /// The scenario.
        public var scenario: Scenario
        /// How many rollouts were simulated.
        public var runs: Int
        /// Simulated hours of watching: runs × the step's watch.
        public var simulatedHours: Double
        /// Runs that ended in a revert, at any time.
        public var reverts: Int
        /// Runs reverted within the detection window.
        public var revertsWithinWindow: Int
        /// Runs that passed (advanced) at the end of the watch.
        public var passes: Int
        /// Runs still holding at the end of the watch because of "not enough data".
        public var notEnoughDataHolds: Int
        /// Runs still holding at the end of the watch for another reason (worse than allowed but not conclusive).
        public var otherHolds: Int
        /// The median time to revert over all runs (a run never reverted counts as never); nil when
        /// at most half the runs reverted.
        public var medianDetection: Duration?
        /// The 95th percentile of the time to revert the same way; nil when at most 95 % reverted.
        public var p95Detection: Duration?

        /// A cell's results from their parts, for runs simulated elsewhere (the watcher's replay test
        /// counts the same things through the real watcher and prints them with ``RolloutSimulator/gridLines(_:detectionWindow:showRuns:)``).
        public init(
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
        public var detectionRate: Double { runs > 0 ? Double(revertsWithinWindow) / Double(runs) : 0 }
        /// Reverts per simulated hour; a false-revert rate when the scenario is not a regression.
        public var revertsPerHour: Double { simulatedHours > 0 ? Double(reverts) / simulatedHours : 0 }
        /// Share of runs that ended the watch holding for "not enough data" (0…1).
        public var notEnoughDataShare: Double { runs > 0 ? Double(notEnoughDataHolds) / Double(runs) : 0 }
        /// Share of runs that passed (0…1).
        public var passShare: Double { runs > 0 ? Double(passes) / Double(runs) : 0 }
    }

    /// The configuration.
    public let configuration: Configuration
    let judge: RolloutJudge

    /// A simulator with the given configuration.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.judge = RolloutJudge(limits: configuration.limits, alpha: configuration.alpha)
    }

    /// How one run ended.
    enum Ending: Sendable, Hashable {
        case reverted(atSecond: Int64)
        case passed
        case notEnoughData
        case holding
    }

    /// Simulates every run of one scenario.
    public func run(_ scenario: Scenario) -> CellResult {
        var random = SimulationRandom(seed: Self.seed(configuration.seed, scenario))
        var revertTimes: [Int64] = []
        var result = CellResult(
            scenario: scenario, runs: max(0, configuration.runs),
            simulatedHours: Double(max(0, configuration.runs)) * configuration.stepWatch.rolloutSeconds / 3600,
            reverts: 0, revertsWithinWindow: 0, passes: 0, notEnoughDataHolds: 0, otherHolds: 0)
        let window = configuration.detectionWindow.components.seconds
        for _ in 0..<result.runs {
            switch simulateOne(scenario, &random) {
            case .reverted(let second):
                result.reverts += 1
                if second <= window { result.revertsWithinWindow += 1 }
                revertTimes.append(second)
            case .passed: result.passes += 1
            case .notEnoughData: result.notEnoughDataHolds += 1
            case .holding: result.otherHolds += 1
            }
        }
        let sorted = revertTimes.sorted().map { Duration.seconds($0) }
        result.medianDetection = CellResult.detectionQuantile(0.5, revertTimes: sorted, runs: result.runs)
        result.p95Detection = CellResult.detectionQuantile(0.95, revertTimes: sorted, runs: result.runs)
        return result
    }

    /// Simulates every combination of traffic level and treatment error rate, in that order
    /// (traffic levels outer).
    public func runGrid(requestsPerSecond: [Double], baselineErrorRate: Double, treatmentErrorRates: [Double])
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
        var treatment = CohortCounts(), control = CohortCounts()
        var arrived = 0
        var second: Int64 = 0
        while second < watch {
            second = min(watch, second + look)
            let total = Int((scenario.requestsPerSecond * Double(second)).rounded(.down))
            let requests = total - arrived
            arrived = total
            let ft = random.binomial(trials: requests, probability: scenario.treatmentErrorRate)
            let fc = random.binomial(trials: requests, probability: scenario.baselineErrorRate)
            treatment.failures += Double(ft)
            treatment.successes += Double(requests - ft)
            control.failures += Double(fc)
            control.successes += Double(requests - fc)
            let a = judge.assess(
                treatment: treatment, control: control, stepElapsed: .seconds(second),
                stepWatch: .seconds(watch), isFinalStep: false, sourceFailure: nil)
            switch a.verdict {
            case .revert: return .reverted(atSecond: second)
            case .advance, .complete: return .passed
            case .hold:
                if second >= watch { return a.isNotEnoughData ? .notEnoughData : .holding }
            }
        }
        return .holding
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
        return mixed
    }
}

extension RolloutSimulator {
    /// One of the goals for the judge, checked against a grid's results.
    public struct Goal: Sendable, Hashable {
        /// What the goal asks, in words.
        public var name: String
        /// Whether the grid meets it; nil when the grid lacks the cells to check it.
        public var passed: Bool?
        /// The measured numbers.
        public var detail: String
    }

    /// The three goals of the rollout simulator:
    ///
    /// 1. at 20 requests/s per cohort with a 1 % baseline, a regression to 3 % is reverted within
    ///    the detection window (5 min) in at least 95 % of runs;
    /// 2. with no regression, false reverts in at most 1 % of simulated hours, in every traffic level;
    /// 3. at 0.1 requests/s no run passes: every run that is not reverted ends the watch holding
    ///    with "not enough data".
    public static func goals(_ cells: [CellResult]) -> [Goal] {
        func same(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(1, abs(b)) }
        var goals: [Goal] = []

        let detection = cells.filter {
            same($0.scenario.requestsPerSecond, 20) && same($0.scenario.baselineErrorRate, 0.01)
                && same($0.scenario.treatmentErrorRate, 0.03)
        }
        let name1 = "20 req/s, 1% -> 3%: reverted within 5 min in >= 95% of runs"
        if let cell = detection.first {
            goals.append(Goal(
                name: name1, passed: cell.detectionRate >= 0.95,
                detail: "\(RolloutText.fixed(cell.detectionRate * 100, 1))% of \(cell.runs) runs, median "
                    + (cell.medianDetection.map(RolloutText.duration) ?? "never")))
        } else {
            goals.append(Goal(name: name1, passed: nil, detail: "the grid has no such cell"))
        }

        let healthy = cells.filter { $0.scenario.treatmentErrorRate == $0.scenario.baselineErrorRate }
        let name2 = "no regression: false reverts in <= 1% of simulated hours"
        if healthy.isEmpty {
            goals.append(Goal(name: name2, passed: nil, detail: "the grid has no cell without a regression"))
        } else {
            let worst = healthy.max { $0.revertsPerHour < $1.revertsPerHour }!
            let reverts = healthy.reduce(0) { $0 + $1.reverts }
            let hours = healthy.reduce(0.0) { $0 + $1.simulatedHours }
            goals.append(Goal(
                name: name2, passed: healthy.allSatisfy { $0.revertsPerHour <= 0.01 },
                detail: "\(reverts) in \(RolloutText.short(hours, 1)) hours; worst "
                    + "\(RolloutText.fixed(worst.revertsPerHour * 100, 2))% at "
                    + "\(RolloutText.short(worst.scenario.requestsPerSecond, 3)) req/s"))
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
            goals.append(Goal(
                name: name3, passed: passes == 0 && other == 0,
                detail: "\(runs) runs: \(notEnough) not enough data, \(reverts) reverted, \(passes) passed, "
                    + "\(other) held for another reason"))
        }
        return goals
    }
}
