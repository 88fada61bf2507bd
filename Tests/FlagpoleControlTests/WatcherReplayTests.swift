import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

/// The production judge, tested where it runs: random outcome traffic is written into the minute
/// buckets as clients write them, and the real ``RolloutWatcher`` (its default decider,
/// ``RolloutJudgeDecider``) reads them through the daemon's metric sources (``BuiltinMetricSource``,
/// pro-rating included) from a real Redis, on a ``ManualRolloutClock`` ticking at the watcher's
/// default interval. The grid is `flagctl rollout simulate`'s, per step (5 %, 25 %, and 100 % with
/// its control from the window before the rollout), and so are the goals.
///
/// Traffic: `req/s` is the treatment's rate, as in the simulator (where each cohort gets it). The
/// sticky split sends the treatment `percent` of the flag's requests, so the control gets the rest
/// (19 times the treatment's at 5 %, 3 times at 25 %, none at 100 %), and before the rollout the
/// whole flag's traffic went to the old variant — generated for an hour before, so that the 100 %
/// step has its control window. Arrivals are Poisson and failures binomial per cohort; each second
/// is flushed into the bucket of its minute. The seconds between two looks are drawn and written
/// per minute and cohort in one pipeline (Poisson counts add up and `HINCRBY` is additive: Redis
/// holds at every look what one flush a second would have left). Each run's rollout starts at a
/// random second of its minute, so the window edges fall everywhere in a minute and between looks.
///
/// Runs: the CI numbers (``Plan``) keep the test near 30 s in a debug build on 2 cores;
/// `FLAGPOLE_REPLAY_SCALE=k` multiplies every cell's runs, `FLAGPOLE_REPLAY_SEED` changes the
/// traffic, and `FLAGPOLE_REPLAY_CELLS=100-regression,…` replays only those cells. A fixed seed makes the result deterministic (the watcher, the source and the judge
/// are; cells run concurrently on separate environments and clocks, which does not change them).
@Suite("The production judge replayed through the real watcher, counters and Redis", .timeLimit(.minutes(replayTimeLimitMinutes)))
struct WatcherReplayTests {
    /// 2026-01-01T00:00:00Z, a minute boundary: the first look.
    static let firstLook: Int64 = 1_767_225_600

    /// Runs per cell in CI, and why these are enough (`FLAGPOLE_REPLAY_SCALE=k` multiplies them; a
    /// look costs about a millisecond of the test's and Redis' time, so an hour-long run costs 0.4 s):
    /// - regression (20 req/s, 1 % → 3 %): 100 per step. The goal needs ≥ 95 reverted within 5 min: a
    ///   watcher that detects 90 % of the time passes a step with probability 6 %, one at 85 % with
    ///   0.1 %. Cheap: a revert ends a run in about a minute.
    /// - healthy (20 req/s, 1 % → 1 %): 30 per step, an hour each, 90 healthy hours in all; the goal
    ///   (≤ 1 % per cell) then allows no false revert. A watcher that falsely reverts 5 % of healthy
    ///   hours passes with probability 1 %, one at 3 % with 6.5 %: CI catches a watcher several times
    ///   worse than the goal; `FLAGPOLE_REPLAY_SCALE=10` (900 hours) measures the goal itself.
    ///   The same runs check that healthy steps pass (≥ 95 %): a watcher that only holds would meet
    ///   the three goals.
    /// - trickle (0.1 req/s, 1 % → 1 %): 4 per step, an hour each. Not a matter of luck: an hour at
    ///   0.1 req/s is about 360 treatment outcomes where the power check needs about 2,000, so a single
    ///   pass means the watcher passes steps without the data; the runs start at different seconds
    ///   of the minute, so they cover the window edges.
    struct Plan: Sendable {
        var regressionRuns = 100
        var healthyRuns = 30
        var trickleRuns = 4
        var scale = 1
        var seed: UInt64 = 1
        /// Only these cells (`5-regression`, `100-healthy`, …), for looking into one; nil: all.
        var only: Set<String>?

        static var fromEnvironment: Plan {
            var plan = Plan()
            let environment = ProcessInfo.processInfo.environment
            if let k = environment["FLAGPOLE_REPLAY_SCALE"].flatMap(Int.init), k >= 1 {
                plan.scale = k
                plan.regressionRuns *= k
                plan.healthyRuns *= k
                plan.trickleRuns *= k
            }
            if let seed = environment["FLAGPOLE_REPLAY_SEED"].flatMap(UInt64.init) { plan.seed = seed }
            if let cells = environment["FLAGPOLE_REPLAY_CELLS"] { plan.only = Set(cells.split(separator: ",").map(String.init)) }
            return plan
        }
    }

    /// One cell: a step percentage and a scenario of the simulator's grid.
    struct Cell: Sendable {
        var percent: Int
        var scenario: RolloutSimulator.Scenario
        var runs: Int
        var name: String

        /// The rollout's steps: the cell's step is the first, so it is judged from its start.
        var steps: [Int] { [5, 25, 100].filter { $0 >= percent } }
        /// Requests a second under the new variant once the step runs.
        var treatmentRate: Double { scenario.requestsPerSecond }
        /// Requests a second under the old variant once the step runs.
        var controlRate: Double { scenario.requestsPerSecond * Double(100 - percent) / Double(percent) }
        /// Requests a second before the rollout, all under the old variant.
        var flagRate: Double { scenario.requestsPerSecond * 100 / Double(percent) }
        /// The seed of the cell's traffic: the plan's, mixed with the cell's name (FNV-1a), so that a
        /// cell replayed alone draws what it draws in the whole grid.
        func seed(_ seed: UInt64) -> UInt64 {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            return hash
        }
        /// How much traffic to generate before the first look: the hour before the rollout at 100 %.
        var history: Int64 { percent == 100 ? 62 * 60 : 2 * 60 }
    }

    /// How one run ended.
    enum Ending: Sendable, Hashable {
        case reverted(afterSeconds: Int64, check: String)
        case passed
        case notEnoughData
        case holding(check: String)
    }

    /// What the runs of one cell did.
    struct CellReplay: Sendable {
        var cell: Cell
        var result: RolloutSimulator.CellResult
        /// Reverts by the judge's deciding check (`ceiling`, `sequential`, …).
        var revertChecks: [String: Int]
        var criticalAlerts: Int
        var looks: Int
        var wall: Duration
    }

    /// One run: a flag of its own with its rollout and its traffic.
    struct Run {
        var flag: String
        var start: Int64
        var random: SimulationRandom
        var started = false
        var ending: Ending?
    }

    static let flagDefinition: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]

    // MARK: - Traffic

    /// Draws the outcomes of seconds `(from, to]` of `run` into `counts`: per minute and cohort, the
    /// pre-rollout flag traffic up to the rollout's start second, the step's split after it.
    static func traffic(_ run: inout Run, cell: Cell, from: Int64, to: Int64, into counts: inout [OutcomeBucketWriter.Bucket: OutcomeBucketWriter.Counts]) {
        var t = from
        while t < to {
            let minute = (t + 1) / 60
            var last = min(to, minute * 60 + 59)
            let before = t + 1 <= run.start
            if before { last = min(last, run.start) }
            let seconds = Double(last - t)
            func draw(_ variant: String, rate: Double, errorRate: Double) {
                guard rate > 0 else { return }
                let n = run.random.poisson(mean: rate * seconds)
                guard n > 0 else { return }
                let failed = run.random.binomial(trials: n, probability: errorRate)
                let bucket = OutcomeBucketWriter.Bucket(flag: run.flag, minute: minute, variant: variant)
                counts[bucket, default: .init()].ok += Int64(n - failed)
                counts[bucket, default: .init()].err += Int64(failed)
            }
            if before {
                draw("off", rate: cell.flagRate, errorRate: cell.scenario.baselineErrorRate)
            } else {
                draw("on", rate: cell.treatmentRate, errorRate: cell.scenario.treatmentErrorRate)
                draw("off", rate: cell.controlRate, errorRate: cell.scenario.baselineErrorRate)
            }
            t = last
        }
    }

    // MARK: - One cell

    /// Replays every run of `cell` in its own environment, with its own watcher and clock.
    static func replay(_ cell: Cell, server: RedisServer, seed: UInt64) async throws -> CellReplay {
        let began = ContinuousClock.now
        let environment = "replay-\(cell.name)"
        let root = server.directory.appendingPathComponent(environment)
        try FileManager.default.createDirectory(at: root.appendingPathComponent(environment), withIntermediateDirectories: true)
        let writerClient = RedisClient(configuration: server.configuration)
        let watcherClient = RedisClient(configuration: server.configuration)
        let control = try EnvironmentControl(environment: environment, client: writerClient, directory: FlagDirectory(root: root.path))
        let flags = (0..<cell.runs).map { "run-" + String(1000 + $0).dropFirst() }
        var sync = StoreChange(audit: AuditEntry(action: "sync", actor: "replay", at: firstLook - cell.history, flags: flags))
        sync.setDefinitions = Dictionary(uniqueKeysWithValues: flags.map { ($0, flagDefinition) })
        try await control.store.apply(sync, expectedRevision: 0)
        let writer = OutcomeBucketWriter(client: writerClient, layout: control.store.layout)

        let clock = ManualRolloutClock(startMilliseconds: firstLook * 1000)
        let alerts = CollectingAlerts()
        // The daemon's watcher: the default decider, the standard metric sources (on this clock).
        let watcher = try RolloutWatcher(
            configuration: .init(environment: environment, holderID: "replay"), client: watcherClient,
            metricSource: RolloutWatcher.standardMetricSources(environment: environment, client: watcherClient, now: { clock.nowSeconds() }),
            alerts: alerts, clock: clock, logger: Logger(label: "replay", factory: { _ in SwiftLogNoOpLogHandler() }))
        let interval = watcher.configuration.interval.components.seconds

        var cellRandom = SimulationRandom(seed: seed)
        var runs = flags.map { flag in
            Run(flag: flag, start: firstLook + Int64(cellRandom.next() % 60), random: SimulationRandom(seed: cellRandom.next()))
        }
        var counts: [OutcomeBucketWriter.Bucket: OutcomeBucketWriter.Counts] = [:]
        for i in runs.indices { traffic(&runs[i], cell: cell, from: firstLook - cell.history, to: firstLook, into: &counts) }
        try await writer.flush(counts)

        var watch: Int64 = 0
        var looks = 0
        var now = firstLook
        while runs.contains(where: { $0.ending == nil }) {
            for i in runs.indices where !runs[i].started && runs[i].start <= now {
                var request = EnvironmentControl.RolloutStart(flag: runs[i].flag, target: "on")
                request.steps = cell.steps
                request.actor = "replay"
                request.now = runs[i].start
                let record = try await control.startRollout(request)
                watch = record.watchSeconds
                runs[i].started = true
            }
            let report = try await watcher.tick()
            var ended: [Int] = []
            for i in runs.indices where runs[i].started && runs[i].ending == nil {
                looks += 1
                let elapsed = now - runs[i].start
                switch report.actions[runs[i].flag] {
                case "revert":
                    let record = try await control.store.rollout(flag: runs[i].flag)
                    runs[i].ending = .reverted(afterSeconds: elapsed, check: record?.evidence?["check"]?.stringValue ?? "?")
                case "advance", "complete":
                    runs[i].ending = .passed
                    ended.append(i)
                case "hold":
                    if elapsed >= watch { ended.append(i) }
                case let other:
                    Issue.record("\(environment)/\(runs[i].flag): the watcher did \(other ?? "nothing") \(elapsed) s into the step")
                    runs[i].ending = .holding(check: other ?? "none")
                    ended.append(i)
                }
            }
            if !ended.isEmpty {
                let observations = try await control.store.readRollouts().observations
                for i in ended {
                    if runs[i].ending == nil {
                        let evidence = observations[runs[i].flag]?.evidence
                        runs[i].ending = evidence?["notEnoughData"] == .bool(true) ? .notEnoughData : .holding(check: evidence?["check"]?.stringValue ?? "?")
                    }
                    // The run is over: end its rollout so that the watcher stops looking at it.
                    if try await control.store.rollout(flag: runs[i].flag)?.status.isActive == true {
                        _ = try await control.driveRollout(.abort, flag: runs[i].flag, actor: "replay", reason: "run over", now: now)
                    }
                }
            }
            counts = [:]
            for i in runs.indices where runs[i].ending == nil {
                traffic(&runs[i], cell: cell, from: now, to: now + interval, into: &counts)
            }
            try await writer.flush(counts)
            clock.advance(by: .seconds(interval))
            now += interval
        }

        let endings = runs.compactMap(\.ending)
        let revertTimes = endings.compactMap { e -> Duration? in
            if case .reverted(let s, _) = e { return .seconds(s) }
            return nil
        }.sorted()
        var checks: [String: Int] = [:]
        for case .reverted(_, let check) in endings { checks[check, default: 0] += 1 }
        let window: Duration = .seconds(300)
        let result = RolloutSimulator.CellResult(
            scenario: cell.scenario, runs: cell.runs, simulatedHours: Double(cell.runs) * Double(watch) / 3600,
            reverts: revertTimes.count, revertsWithinWindow: revertTimes.filter { $0 <= window }.count,
            passes: endings.filter { $0 == .passed }.count, notEnoughDataHolds: endings.filter { $0 == .notEnoughData }.count,
            otherHolds: endings.filter { if case .holding = $0 { return true } else { return false } }.count,
            medianDetection: RolloutSimulator.CellResult.detectionQuantile(0.5, revertTimes: revertTimes, runs: cell.runs),
            p95Detection: RolloutSimulator.CellResult.detectionQuantile(0.95, revertTimes: revertTimes, runs: cell.runs))
        await writerClient.close()
        await watcherClient.close()
        return CellReplay(
            cell: cell, result: result, revertChecks: checks, criticalAlerts: alerts.all.filter { $0.severity == .critical }.count,
            looks: looks, wall: began.duration(to: .now))
    }

    // MARK: - The test

    @Test("steps of 5 %, 25 % and 100 %: 1 % → 3 % at 20 req/s reverted within 5 min in ≥ 95 % of runs, false reverts in ≤ 1 % of healthy hours, a trickle never passes")
    func replayGrid() async throws {
        let plan = Plan.fromEnvironment
        var cells: [Cell] = []
        for percent in [5, 25, 100] {
            cells.append(Cell(
                percent: percent, scenario: .init(requestsPerSecond: 20, baselineErrorRate: 0.01, treatmentErrorRate: 0.03),
                runs: plan.regressionRuns, name: "\(percent)-regression"))
            cells.append(Cell(
                percent: percent, scenario: .init(requestsPerSecond: 20, baselineErrorRate: 0.01, treatmentErrorRate: 0.01),
                runs: plan.healthyRuns, name: "\(percent)-healthy"))
            cells.append(Cell(
                percent: percent, scenario: .init(requestsPerSecond: 0.1, baselineErrorRate: 0.01, treatmentErrorRate: 0.01),
                runs: plan.trickleRuns, name: "\(percent)-trickle"))
        }
        if let only = plan.only { cells = cells.filter { only.contains($0.name) } }
        let began = ContinuousClock.now
        let replays = try await RedisServer.withServer { server in
            try await withThrowingTaskGroup(of: CellReplay.self) { group in
                for cell in cells {
                    group.addTask { try await Self.replay(cell, server: server, seed: cell.seed(plan.seed)) }
                }
                var all: [CellReplay] = []
                for try await r in group { all.append(r) }
                return all
            }
        }
        let wall = began.duration(to: .now)

        var lines = [
            "replay: the real RolloutWatcher (RolloutJudgeDecider) + BuiltinMetricSource + Redis; a look every 10s for 1h; "
                + "runs per cell: \(plan.regressionRuns) (1% -> 3%), \(plan.healthyRuns) (none), \(plan.trickleRuns) (0.1 req/s); "
                + "seed \(plan.seed); \(replays.reduce(0) { $0 + $1.looks }) looks in \(DurationText.format(.seconds(wall.components.seconds)))",
        ]
        for percent in [5, 25, 100] {
            let step = cells.filter { $0.percent == percent }.compactMap { c in replays.first { $0.cell.name == c.name } }
            let results = step.map(\.result)
            let control = percent == 100 ? "control: the hour before the rollout at the same rate" : "control: the other \(100 - percent)%, \((100 - percent) / percent)x the treatment's traffic"
            lines += ["", "step \(percent)% (\(control))"]
            lines += RolloutSimulator.gridLines(results, detectionWindow: .seconds(300), showRuns: true)
            let goals = RolloutSimulator.goals(results)
            lines += RolloutSimulator.goalLines(goals)
            for r in step where !r.revertChecks.isEmpty {
                lines.append("  \(r.cell.name): reverts by check \(r.revertChecks.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \(r.looks) looks in \(DurationText.format(.seconds(r.wall.components.seconds)))")
            }
            for goal in goals where plan.only == nil || goal.passed != nil {
                #expect(goal.passed == true, "step \(percent)%: \(goal.name): \(goal.detail)")
            }
            for r in step {
                #expect(r.criticalAlerts == r.result.reverts, "\(r.cell.name): every revert alerts once")
                // A healthy step with enough traffic passes: a watcher that only ever holds would meet the three goals.
                if !r.cell.scenario.isRegression && r.cell.scenario.requestsPerSecond >= 20 {
                    #expect(r.result.passShare >= 0.95, "\(r.cell.name): \(r.result.passes) of \(r.result.runs) healthy steps passed")
                }
            }
        }
        // The simulator on the same scenarios, for comparison (it is pure and fast: its default runs).
        let simulator = RolloutSimulator(configuration: .init(seed: plan.seed))
        var scenarios: [RolloutSimulator.Scenario] = []
        for c in cells where !scenarios.contains(c.scenario) { scenarios.append(c.scenario) }
        lines += ["", "flagctl rollout simulate on the same scenarios: \(simulator.configuration.runs) runs per cell, equal cohorts fed to the judge directly"]
        lines += RolloutSimulator.gridLines(scenarios.map(simulator.run), detectionWindow: .seconds(300))
        print(lines.joined(separator: "\n"))
    }
}

/// 5 minutes per `FLAGPOLE_REPLAY_SCALE` (the CI run takes well under one).
private let replayTimeLimitMinutes: Int = 5 * WatcherReplayTests.Plan.fromEnvironment.scale

extension SimulationRandom {
    /// A Poisson draw with the given mean: by multiplication of uniforms below a mean of 10, else
    /// by Hörmann's transformed rejection (PTRS, 1993), exact at every mean.
    mutating func poisson(mean: Double) -> Int {
        guard mean > 0 else { return 0 }
        if mean < 10 {
            let limit = Foundation.exp(-mean)
            var k = 0
            var p = nextOpenUnit()
            while p > limit {
                k += 1
                p *= nextOpenUnit()
            }
            return k
        }
        let root = mean.squareRoot()
        let logMean = Foundation.log(mean)
        let b = 0.931 + 2.53 * root
        let a = -0.059 + 0.02483 * b
        let inverseAlpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = nextOpenUnit() - 0.5
            let v = nextOpenUnit()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + mean + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if Foundation.log(v) + Foundation.log(inverseAlpha) - Foundation.log(a / (us * us) + b) <= -mean + k * logMean - Foundation.lgamma(k + 1) {
                return Int(k)
            }
        }
    }
}
