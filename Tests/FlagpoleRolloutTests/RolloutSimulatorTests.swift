import Testing

@testable import FlagpoleCore
@testable import FlagpoleRollout

@Suite("Rollout simulator")
struct RolloutSimulatorTests {
    static func simulator(runs: Int, seed: UInt64 = 42) -> RolloutSimulator {
        RolloutSimulator(configuration: .init(runs: runs, seed: seed))
    }

    static func scenario(_ rps: Double, _ treatment: Double) -> RolloutSimulator.Scenario {
        .init(requestsPerSecond: rps, baselineErrorRate: 0.01, treatmentErrorRate: treatment)
    }

    // MARK: - The generator

    @Test("the generator is fixed by its seed")
    func seeded() {
        var a = SimulationRandom(seed: 7), b = SimulationRandom(seed: 7), c = SimulationRandom(seed: 8)
        let xs = (0..<8).map { _ in a.next() }
        #expect(xs == (0..<8).map { _ in b.next() })
        #expect(xs != (0..<8).map { _ in c.next() })
        // SplitMix64's first output for state 0 (the reference implementation's value).
        var state: UInt64 = 0
        #expect(SimulationRandom.splitMix(&state) == 0xE220_A839_7B1D_CDAF)
    }

    @Test("binomial draws have the right edges and mean")
    func binomial() {
        var r = SimulationRandom(seed: 1)
        #expect(r.binomial(trials: 0, probability: 0.5) == 0)
        #expect(r.binomial(trials: 100, probability: 0) == 0)
        #expect(r.binomial(trials: 100, probability: 1) == 100)
        for p in [0.01, 0.3, 0.9] {
            var sum = 0
            for _ in 0..<4000 {
                let k = r.binomial(trials: 200, probability: p)
                #expect(k >= 0 && k <= 200)
                sum += k
            }
            let mean = Double(sum) / 4000
            // The mean's standard error is √(200 p (1−p) / 4000) ≤ 0.12: allow 6 of them.
            #expect(abs(mean - 200 * p) < 0.7)
        }
        let u = r.nextOpenUnit()
        #expect(u > 0 && u <= 1)
    }

    // MARK: - Runs

    @Test("the same seed gives the same cell; the cell does not depend on the rest of the grid")
    func deterministic() {
        let sim = Self.simulator(runs: 30)
        let one = sim.run(Self.scenario(20, 0.03))
        #expect(one == sim.run(Self.scenario(20, 0.03)))
        let grid = sim.runGrid(requestsPerSecond: [5, 20], baselineErrorRate: 0.01, treatmentErrorRates: [0.05, 0.03])
        #expect(grid.count == 4)
        #expect(grid[3] == one)
        #expect(grid.map(\.scenario.requestsPerSecond) == [5, 5, 20, 20])
    }

    @Test("every run ends one way: counts add up, times are looks within the watch")
    func accounting() {
        let cell = Self.simulator(runs: 40).run(Self.scenario(1, 0.02))
        #expect(cell.reverts + cell.passes + cell.notEnoughDataHolds + cell.otherHolds == 40)
        #expect(cell.revertsWithinWindow <= cell.reverts)
        #expect(cell.simulatedHours == 40)
        if let median = cell.medianDetection { #expect(median.components.seconds % 10 == 0 && median <= .seconds(3600)) }
    }

    @Test("a total outage reverts at the first look")
    func outage() {
        let cell = Self.simulator(runs: 20).run(Self.scenario(20, 1))
        #expect(cell.revertsWithinWindow == 20)
        #expect(cell.p95Detection == .seconds(10))
    }

    // MARK: - The goals, with a fixed seed

    @Test("goal 1: at 20 req/s, 1% → 3% is reverted within 5 minutes in at least 95% of runs")
    func detection() {
        let cell = Self.simulator(runs: 400).run(Self.scenario(20, 0.03))
        #expect(cell.detectionRate >= 0.95)
        #expect(cell.medianDetection.map { $0 <= .seconds(150) } == true)
        #expect(RolloutSimulator.goals([cell]).first?.passed == true)
    }

    @Test("goal 2: with no regression, false reverts in at most 1% of simulated hours", arguments: [1.0, 20])
    func falseReverts(_ rps: Double) {
        let cell = Self.simulator(runs: 300).run(Self.scenario(rps, 0.01))
        #expect(cell.revertsPerHour <= 0.01)
        // And they pass: the watch ends with enough data at these rates.
        #expect(cell.passShare >= 0.95)
    }

    @Test("goal 3: at 0.1 req/s the rollout never passes and says not enough data", arguments: [0.01, 0.03])
    func slowTraffic(_ treatment: Double) {
        let cell = Self.simulator(runs: 100).run(Self.scenario(0.1, treatment))
        #expect(cell.passes == 0)
        #expect(cell.notEnoughDataShare == 1)
        #expect(RolloutSimulator.goals([cell]).last?.passed == true)
    }

    @Test("a regression within the allowance is rarely reverted")
    func allowedRegression() {
        let cell = Self.simulator(runs: 200).run(Self.scenario(20, 0.015))
        #expect(cell.revertsPerHour <= 0.03)
    }

    // MARK: - Real traffic

    @Test("the traffic model: late outcomes are recorded later, none lost; an incident fails both cohorts")
    func trafficModel() {
        let late = RolloutTraffic(lateness: .init(share: 1, longest: 60))
        var run = RolloutTraffic.Run(traffic: late, stepStart: 0, from: 0, to: 600, treatmentShare: 0.5, seed: 3)
        run.requests(from: 0, to: 60, treatmentRate: 10, controlRate: 10, treatmentErrorRate: 0.1, controlErrorRate: 0.1, baselineErrorRate: 0.1)
        let early = run.arrived(before: 60)
        let rest = run.arrived(before: 600)
        #expect(!rest.isEmpty && rest.allSatisfy { $0.minute >= 0 && $0.minute <= 1 })
        let total = (early + rest).reduce(0) { $0 + $1.successes + $1.failures }
        #expect(total > 1000 && total < 1400)  // Poisson, mean 1200
        #expect(run.arrived(before: 10_000).isEmpty)

        let incident = RolloutTraffic(
            incidents: .init(perHour: 0, shortest: 120, longest: 120, lowestErrorRate: 0.5, highestErrorRate: 0.5, oneWithin: 1))
        var i = RolloutTraffic.Run(traffic: incident, stepStart: 60, from: 0, to: 600, treatmentShare: 0.2, seed: 4)
        #expect(i.incidentSpans.count == 1 && i.incidentSpans[0].from == 60 && i.incidentSpans[0].to == 180)
        i.requests(from: 60, to: 180, treatmentRate: 20, controlRate: 80, treatmentErrorRate: 0.01, controlErrorRate: 0.01, baselineErrorRate: 0.01)
        var f = [RolloutTraffic.Cohort.treatment: 0, .control: 0], n = f
        for o in i.arrived(before: 180) {
            f[o.cohort, default: 0] += o.failures
            n[o.cohort, default: 0] += o.successes + o.failures
        }
        for cohort in [RolloutTraffic.Cohort.treatment, .control] {
            let rate = Double(f[cohort]!) / Double(n[cohort]!)
            #expect(abs(rate - 0.505) < 0.05, "\(cohort): \(rate)")
        }
    }

    @Test("a shared incident in every step's first minutes: no run reverts, and the incident's minutes extend the watch")
    func incidentInEveryStep() {
        let scenario = RolloutSimulator.Scenario(
            requestsPerSecond: 20, baselineErrorRate: 0.01, treatmentErrorRate: 0.01, controlRequestsPerSecond: 80,
            traffic: .init(incidents: .init(perHour: 0, oneWithin: 180)))
        let cell = RolloutSimulator(configuration: .init(stepWatch: .seconds(1200), runs: 60, seed: 5)).run(scenario)
        #expect(cell.reverts == 0)
        #expect(cell.passShare >= 0.95)
        #expect(cell.simulatedHours > 60 * 1200 / 3600)  // watched longer than the watch: incident minutes do not count
        #expect(RolloutSimulator.goals([cell]).contains { $0.name.hasPrefix("a shared incident") && $0.passed == true })
    }

    // MARK: - Goal bookkeeping

    static func cell(
        _ rps: Double, _ treatment: Double, runs: Int = 100, reverts: Int = 0, within: Int = 0, passes: Int = 0,
        notEnough: Int = 0, other: Int = 0
    ) -> RolloutSimulator.CellResult {
        .init(
            scenario: scenario(rps, treatment), runs: runs, simulatedHours: Double(runs), reverts: reverts,
            revertsWithinWindow: within, passes: passes, notEnoughDataHolds: notEnough, otherHolds: other)
    }

    @Test("goals pass, fail, or are skipped when the grid lacks the cell")
    func goals() {
        let good = RolloutSimulator.goals([
            Self.cell(20, 0.03, reverts: 100, within: 96), Self.cell(20, 0.01, reverts: 1, passes: 99),
            Self.cell(0.1, 0.01, notEnough: 100),
        ])
        #expect(good.map(\.passed) == [true, true, true])
        let bad = RolloutSimulator.goals([
            Self.cell(20, 0.03, reverts: 100, within: 94), Self.cell(5, 0.01, reverts: 2, passes: 98),
            Self.cell(0.1, 0.01, passes: 1, notEnough: 99),
        ])
        #expect(bad.map(\.passed) == [false, false, false])
        #expect(bad[1].detail.contains("at 5 req/s"))
        #expect(RolloutSimulator.goals([Self.cell(5, 0.05)]).map(\.passed) == [nil, nil, nil])
    }
}
