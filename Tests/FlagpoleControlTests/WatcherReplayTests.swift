import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

/// The production judge, tested where it runs: random outcome traffic is written into the minute
/// buckets as clients write them, and the real ``RolloutWatcher`` (its default decider,
/// ``RolloutJudgeDecider``) reads them through the daemon's metric sources (``BuiltinMetricSource``,
/// pro-rating included) from a real Redis, on a ``ManualRolloutClock`` ticking at the watcher's
/// default interval. Steps of 5 %, 25 %, 100 % (its control the window before the rollout) and 100 %
/// with a 2 % holdback (its control the holdback).
///
/// Traffic is ``RolloutTraffic`` — the simulator's model — as real traffic comes: `req/s` is the
/// smaller cohort's rate (the treatment's below 100 %, the holdback's at 100 % with one, so the flag
/// gets 1,000 req/s there), the sticky split gives the other cohort the rest; before the rollout the
/// whole flag's traffic is the old variant's. `real` traffic has shared incidents (1–5 min at
/// 10–50 % in both cohorts, one an hour), a baseline drifting ±50 % within an hour, three heavy users
/// (0.5 % of the requests each, all failing for 1–3 min about every two hours) and half the outcomes
/// up to a minute late. At 100 % without a holdback a shared incident reverts by design (no
/// concurrent control to tell it from a regression), so that step's healthy cell has drift and late
/// outcomes only. `incident` cells force a shared incident within each step's first 3 minutes.
/// Outcomes land in the bucket of the minute they are recorded in; each run's rollout starts at a
/// random second of its minute.
///
/// Runs: the CI numbers (``Plan``) keep the test near a minute in a debug build on 2 cores;
/// `FLAGPOLE_REPLAY_RUNS=200` runs at least 200 in every cell (about 15 minutes),
/// `FLAGPOLE_REPLAY_SEED` changes the traffic, and `FLAGPOLE_REPLAY_CELLS=100h-regression,…` replays
/// only those cells. A fixed seed makes the result deterministic.
@Suite("The production judge replayed through the real watcher, counters and Redis", .timeLimit(.minutes(replayTimeLimitMinutes)))
struct WatcherReplayTests {
    /// 2026-01-01T00:00:00Z, a minute boundary: the first look.
    static let firstLook: Int64 = 1_767_225_600

    /// Runs per cell in CI, and why these are enough (a look costs about 2 ms of the test's and
    /// Redis' time in a debug build; `FLAGPOLE_REPLAY_RUNS=n` gives every cell at least n runs,
    /// `FLAGPOLE_REPLAY_SCALE=k` multiplies all but the regressions'):
    /// - regression (1 % → 3 %, real traffic): 200 per step, the goal's own count. Cheap: a revert
    ///   ends a run in about two minutes, and a run not reverted in 15 minutes ends there. 40 at
    ///   100 % without a holdback, which has no goal (it is reported); there a `plain` cell (1 % → 3 %
    ///   in plain traffic, 200 runs) is held to the goal instead.
    /// - incident (1 % → 1 %, a shared incident in the step's first 3 minutes): 40 per step, 10
    ///   minutes each. The goal is no revert at all; a watcher that reverts on 5 % of incidents
    ///   passes the three cells with probability 0.95^120 = 0.2 %. Nor is the rule a matter of luck:
    ///   the runs vary the incident's size, length and timing against the minute and the step.
    /// - healthy (1 % → 1 %, real traffic): 8 per step, an hour each (longer when incidents hold
    ///   the clock back), 32 hours in all; the goal (≤ 1 % of hours) then allows no false revert. A
    ///   watcher falsely reverting 10 % of hours passes with probability 3 %: CI catches a watcher
    ///   ten times worse than the goal; `FLAGPOLE_REPLAY_RUNS=200` (800 hours) measures the goal.
    ///   The same runs check that healthy steps with a concurrent control pass within two hours (≥ 95 %).
    /// - trickle (0.1 req/s): 2 per step, an hour each (the watch; not watched on). Not luck: an hour at 0.1 req/s is about 360
    ///   treatment outcomes where the power check needs about 2,000.
    struct Plan: Sendable {
        var regressionRuns = 200
        var reportedRegressionRuns = 40
        var incidentRuns = 40
        var healthyRuns = 8
        var trickleRuns = 2
        var scale = 1
        var seed: UInt64 = 1
        /// Only these cells (`5-regression`, `100h-incident`, …), for looking into one; nil: all.
        var only: Set<String>?

        static var fromEnvironment: Plan {
            var plan = Plan()
            let environment = ProcessInfo.processInfo.environment
            if let k = environment["FLAGPOLE_REPLAY_SCALE"].flatMap(Int.init), k >= 1 {
                plan.scale = k
                plan.incidentRuns *= k
                plan.healthyRuns *= k
                plan.trickleRuns *= k
                plan.reportedRegressionRuns *= k
            }
            if let n = environment["FLAGPOLE_REPLAY_RUNS"].flatMap(Int.init), n >= 1 {
                plan.scale = max(plan.scale, (n + 7) / 8)
                plan.regressionRuns = max(plan.regressionRuns, n)
                plan.reportedRegressionRuns = max(plan.reportedRegressionRuns, n)
                plan.incidentRuns = max(plan.incidentRuns, n)
                plan.healthyRuns = max(plan.healthyRuns, n)
                plan.trickleRuns = max(plan.trickleRuns, n)
            }
            if let seed = environment["FLAGPOLE_REPLAY_SEED"].flatMap(UInt64.init) { plan.seed = seed }
            if let cells = environment["FLAGPOLE_REPLAY_CELLS"] { plan.only = Set(cells.split(separator: ",").map(String.init)) }
            return plan
        }
    }

    /// A step of the grid.
    struct Step: Sendable, Hashable {
        var percent: Int
        var holdback: Double
        var name: String { holdback > 0 ? "\(percent)h" : "\(percent)" }
        var concurrent: Bool { percent < 100 || holdback > 0 }
        /// The share of the flag's requests in the treatment during the step.
        var treatmentShare: Double { percent < 100 ? Double(percent) / 100 : (100 - holdback) / 100 }
        /// Regressions must be reverted within this: 10 min with a thin holdback, else 5.
        var detectionWindow: Duration { holdback > 0 ? .seconds(600) : .seconds(300) }
        var title: String {
            switch (percent, holdback > 0) {
            case (100, true):
                "step 100% with a \(RolloutSplit.percentText(holdback)) holdback (control: the holdback, req/s its rate; the treatment gets 49x)"
            case (100, false): "step 100% without a holdback (control: the window before the rollout; req/s the treatment's)"
            default: "step \(percent)% (control: the other \(100 - percent)%, \((100 - percent) / percent)x the treatment's traffic)"
            }
        }
    }

    /// `plain`: a regression in plain traffic (independent outcomes, no incident, drift, heavy user
    /// or lateness), the conditions the first replay goal was set for; replayed at 100 % without a
    /// holdback, where `regression`'s real traffic is reported only.
    enum Kind: String, Sendable { case regression, plain, incident, healthy, trickle }

    /// One cell: a step and a scenario.
    struct Cell: Sendable {
        var step: Step
        var kind: Kind
        var scenario: RolloutSimulator.Scenario
        var runs: Int
        var name: String { "\(step.name)-\(kind.rawValue)" }
        /// How long a run is watched at most (seconds of the step).
        var limit: Int64 {
            switch kind {
            case .regression, .plain: 900
            case .incident: 600
            case .healthy, .trickle: 7200
            }
        }
        /// Requests a second: the flag's, and each cohort's during the step.
        var flagRate: Double {
            step.percent < 100
                ? scenario.requestsPerSecond * 100 / Double(step.percent)
                : step.holdback > 0 ? scenario.requestsPerSecond * 100 / step.holdback : scenario.requestsPerSecond
        }
        var treatmentRate: Double { flagRate * step.treatmentShare }
        var controlRate: Double { flagRate - treatmentRate }
        /// The seed of the cell's traffic: the plan's, mixed with the cell's name (FNV-1a).
        func seed(_ seed: UInt64) -> UInt64 {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            return hash
        }
        /// Traffic before the first look: for the control at 100 % without a holdback, its hour and
        /// the three hours the watcher measures the baseline's drift on.
        var history: Int64 { step.concurrent ? 2 * 60 : (RolloutWatcher.baselineMinutes + 2) * 60 }
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
        var revertChecks: [String: Int]
        var criticalAlerts: Int
        var warningAlerts: Int
        var looks: Int
        var wall: Duration
    }

    /// One run: a flag of its own with its rollout and its traffic.
    struct Run {
        var flag: String
        var start: Int64
        var traffic: RolloutTraffic.Run
        var started = false
        var ending: Ending?
        var watched: Int64 = 0
    }

    static let flagDefinition: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]

    // MARK: - Traffic

    /// Draws the requests of seconds `[from, to)` of `run` (the flag's before its start, the step's
    /// split after), and adds the outcomes recorded before `to` to `counts`.
    static func traffic(
        _ run: inout Run, cell: Cell, from: Int64, to: Int64, into counts: inout [OutcomeBucketWriter.Bucket: OutcomeBucketWriter.Counts]
    ) {
        let s = cell.scenario
        func piece(_ a: Int64, _ b: Int64, step: Bool) {
            guard b > a else { return }
            run.traffic.requests(
                from: a, to: b, treatmentRate: step ? cell.treatmentRate : 0, controlRate: step ? cell.controlRate : cell.flagRate,
                treatmentErrorRate: s.treatmentErrorRate, controlErrorRate: s.baselineErrorRate, baselineErrorRate: s.baselineErrorRate)
        }
        piece(from, min(to, run.start), step: false)
        piece(max(from, run.start), to, step: true)
        for o in run.traffic.arrived(before: to) {
            let bucket = OutcomeBucketWriter.Bucket(flag: run.flag, minute: o.minute, variant: o.cohort == .treatment ? "on" : "off")
            counts[bucket, default: .init()].ok += Int64(o.successes)
            counts[bucket, default: .init()].err += Int64(o.failures)
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
        let flags = (0..<cell.runs).map { "run-" + String(10000 + $0).dropFirst() }
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
        var runs = flags.map { flag -> Run in
            let start = firstLook + Int64(cellRandom.next() % 60)
            let traffic = RolloutTraffic.Run(
                traffic: cell.scenario.traffic, stepStart: start, from: firstLook - cell.history, to: start + cell.limit + 120,
                treatmentShare: cell.step.treatmentShare, seed: cellRandom.next())
            return Run(flag: flag, start: start, traffic: traffic)
        }
        var counts: [OutcomeBucketWriter.Bucket: OutcomeBucketWriter.Counts] = [:]
        for i in runs.indices {
            traffic(&runs[i], cell: cell, from: firstLook - cell.history, to: firstLook, into: &counts)
            if counts.count > 20_000 {
                try await writer.flush(counts)
                counts = [:]
            }
        }
        try await writer.flush(counts)

        var watch: Int64 = 0
        var looks = 0
        var now = firstLook
        while runs.contains(where: { $0.ending == nil }) {
            for i in runs.indices where !runs[i].started && runs[i].start <= now {
                var request = EnvironmentControl.RolloutStart(flag: runs[i].flag, target: "on")
                request.steps = cell.step.percent < 100 ? [cell.step.percent, 100] : [100]
                request.holdback = cell.step.holdback
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
                runs[i].watched = elapsed
                switch report.actions[runs[i].flag] {
                case .revert:
                    let record = try await control.store.rollout(flag: runs[i].flag)
                    runs[i].ending = .reverted(afterSeconds: elapsed, check: record?.evidence?["check"]?.stringValue ?? "?")
                case .advance, .complete:
                    runs[i].ending = .passed
                    ended.append(i)
                case .hold:
                    // A step still holding at the end of its watch is watched on (incidents hold its
                    // clock back; a heavy user's spell needs more minutes to tell), up to twice the watch.
                    if elapsed >= min(cell.limit, cell.kind == .healthy ? 2 * watch : watch) { ended.append(i) }
                case let other:
                    Issue.record(
                        "\(environment)/\(runs[i].flag): the watcher did \(other.map(String.init(describing:)) ?? "nothing") \(elapsed) s into the step"
                    )
                    runs[i].ending = .holding(check: other.map(String.init(describing:)) ?? "none")
                    ended.append(i)
                }
            }
            if !ended.isEmpty {
                let observations = try await control.store.readRollouts().observations
                for i in ended {
                    if runs[i].ending == nil {
                        let evidence = observations[runs[i].flag]?.evidence
                        runs[i].ending =
                            evidence?["notEnoughData"] == .bool(true) ? .notEnoughData : .holding(check: evidence?["check"]?.stringValue ?? "?")
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
        let window = cell.step.detectionWindow
        // Hours watched: with no regression, each run to its end (past the watch when incidents held its clock).
        let hours = cell.scenario.isRegression ? Double(cell.runs) * Double(watch) / 3600 : Double(runs.reduce(0) { $0 + $1.watched }) / 3600
        let result = RolloutSimulator.CellResult(
            scenario: cell.scenario, runs: cell.runs, simulatedHours: hours,
            reverts: revertTimes.count, revertsWithinWindow: revertTimes.filter { $0 <= window }.count,
            passes: endings.filter { $0 == .passed }.count, notEnoughDataHolds: endings.filter { $0 == .notEnoughData }.count,
            otherHolds: endings.filter { if case .holding = $0 { return true } else { return false } }.count,
            medianDetection: RolloutSimulator.CellResult.detectionQuantile(0.5, revertTimes: revertTimes, runs: cell.runs),
            p95Detection: RolloutSimulator.CellResult.detectionQuantile(0.95, revertTimes: revertTimes, runs: cell.runs))
        await writerClient.close()
        await watcherClient.close()
        return CellReplay(
            cell: cell, result: result, revertChecks: checks, criticalAlerts: alerts.all.filter { $0.severity == .critical }.count,
            warningAlerts: alerts.all.filter { $0.severity == .warning }.count, looks: looks, wall: began.duration(to: .now))
    }

    // MARK: - The test

    static let steps = [
        Step(percent: 5, holdback: 0), Step(percent: 25, holdback: 0), Step(percent: 100, holdback: 0), Step(percent: 100, holdback: 2),
    ]

    static func cells(_ plan: Plan) -> [Cell] {
        var cells: [Cell] = []
        let incident = RolloutTraffic(incidents: .init(perHour: 0, oneWithin: 180), lateness: .init())
        for step in steps {
            // A shared incident reverts at 100 % without a holdback by design: that step's healthy traffic drifts only.
            let healthy = step.concurrent ? RolloutTraffic.real : RolloutTraffic(drift: .init(), lateness: .init())
            func scenario(_ rps: Double, _ treatment: Double, _ traffic: RolloutTraffic) -> RolloutSimulator.Scenario {
                .init(requestsPerSecond: rps, baselineErrorRate: 0.01, treatmentErrorRate: treatment, traffic: traffic)
            }
            cells.append(
                Cell(
                    step: step, kind: .regression, scenario: scenario(20, 0.03, .real),
                    runs: step.concurrent ? plan.regressionRuns : plan.reportedRegressionRuns))
            cells.append(
                Cell(
                    step: step, kind: .incident, scenario: scenario(20, 0.01, incident),
                    runs: step.concurrent ? plan.incidentRuns : max(1, plan.incidentRuns / 5)))
            if !step.concurrent {
                cells.append(Cell(step: step, kind: .plain, scenario: scenario(20, 0.03, .plain), runs: plan.regressionRuns))
            }
            cells.append(Cell(step: step, kind: .healthy, scenario: scenario(20, 0.01, healthy), runs: plan.healthyRuns))
            cells.append(Cell(step: step, kind: .trickle, scenario: scenario(0.1, 0.01, healthy), runs: plan.trickleRuns))
        }
        if let only = plan.only { cells = cells.filter { only.contains($0.name) } }
        return cells
    }

    /// The issue's goals for one step's cells, as `(name, passed, detail)`; nil `passed`: reported only.
    static func goals(_ step: Step, _ replays: [CellReplay]) -> [RolloutSimulator.Goal] {
        func cell(_ kind: Kind) -> CellReplay? { replays.first { $0.cell.step == step && $0.cell.kind == kind } }
        var goals: [RolloutSimulator.Goal] = []
        if let r = cell(.regression)?.result {
            let window = DurationText.format(step.detectionWindow)
            goals.append(
                .init(
                    name: "1% -> 3% with incidents, drift, heavy users and late outcomes: reverted within \(window) in >= 95% of runs",
                    passed: step.concurrent ? r.detectionRate >= 0.95 : nil,
                    detail:
                        "\(String(format: "%.1f", r.detectionRate * 100))% of \(r.runs) runs, median \(r.medianDetection.map(DurationText.format) ?? "never")"
                        + (step.concurrent ? "" : " (reported: no goal for 100% without a holdback)")))
        }
        if let r = cell(.plain)?.result {
            let window = DurationText.format(step.detectionWindow)
            goals.append(
                .init(
                    name: "1% -> 3% in plain traffic: reverted within \(window) in >= 95% of runs", passed: r.detectionRate >= 0.95,
                    detail:
                        "\(String(format: "%.1f", r.detectionRate * 100))% of \(r.runs) runs, median \(r.medianDetection.map(DurationText.format) ?? "never")"
                ))
        }
        if let r = cell(.incident)?.result {
            goals.append(
                .init(
                    name: "a shared incident in the step: no revert caused by it",
                    passed: step.concurrent ? r.reverts == 0 : nil,
                    detail: "\(r.reverts) reverts in \(r.runs) runs"
                        + (step.concurrent ? "" : " (by design: no concurrent control, the ceiling reverts)")))
        }
        if let r = cell(.healthy)?.result {
            goals.append(
                .init(
                    name: "no regression: false reverts in <= 1% of watched hours", passed: r.revertsPerHour <= 0.01,
                    detail: "\(r.reverts) in \(String(format: "%.0f", r.simulatedHours)) hours"))
            // Not the issue's goal, but a watcher that only holds would meet the others.
            goals.append(
                .init(
                    name: "no regression: >= 95% of steps pass within twice the watch", passed: step.concurrent ? r.passShare >= 0.95 : nil,
                    detail: "\(String(format: "%.1f", r.passShare * 100))% passed"
                        + (step.concurrent ? "" : " (reported: before/after, the baseline's drift makes some steps hold)")))
        }
        if let r = cell(.trickle)?.result {
            goals.append(
                .init(
                    name: "0.1 req/s: never passes", passed: r.passes == 0,
                    detail: "\(r.runs) runs: \(r.notEnoughDataHolds) not enough data, \(r.reverts) reverted, \(r.passes) passed"))
        }
        return goals
    }

    @Test(
        "steps of 5 %, 25 %, 100 % and 100 % with a 2 % holdback, real traffic: regressions reverted in time, no revert for a shared incident, false reverts in ≤ 1 % of hours, a trickle never passes"
    )
    func replayGrid() async throws {
        let plan = Plan.fromEnvironment
        let cells = Self.cells(plan)
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
            "replay: the real RolloutWatcher (RolloutJudgeDecider) + BuiltinMetricSource + Redis; a look every 10s; seed \(plan.seed); "
                + "\(replays.reduce(0) { $0 + $1.looks }) looks in \(DurationText.format(.seconds(wall.components.seconds)))"
        ]
        for step in Self.steps {
            let step_ = replays.filter { $0.cell.step == step }.sorted { $0.cell.kind.rawValue < $1.cell.kind.rawValue }
            guard !step_.isEmpty else { continue }
            lines += ["", step.title]
            lines += RolloutSimulator.gridLines(step_.map(\.result), detectionWindow: step.detectionWindow, showRuns: true)
            let goals = Self.goals(step, step_)
            lines += RolloutSimulator.goalLines(goals).map { $0.replacingOccurrences(of: "SKIP  ", with: "INFO  ") }
            for r in step_ {
                let checks = r.revertChecks.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                lines.append(
                    "  \(r.cell.name): \(checks.isEmpty ? "no reverts" : "reverts by check " + checks); \(r.warningAlerts) incident warnings; \(r.looks) looks in \(DurationText.format(.seconds(r.wall.components.seconds)))"
                )
            }
            for goal in goals where goal.passed != nil {
                #expect(goal.passed == true, "step \(step.name): \(goal.name): \(goal.detail)")
            }
            for r in step_ {
                #expect(r.criticalAlerts == r.result.reverts, "\(r.cell.name): every revert alerts once")
                if r.cell.kind == .incident && step.concurrent {
                    #expect(r.warningAlerts >= r.cell.runs / 2, "\(r.cell.name): incidents warn (\(r.warningAlerts) in \(r.cell.runs) runs)")
                }
            }
        }
        // The docs quote this run's grid (scripts/update-figures), not numbers typed by hand.
        Figures.write(
            "replay-grid", "```\n" + lines.filter { !($0.hasPrefix("  ") && $0.contains(" looks in ")) }.joined(separator: "\n") + "\n```\n")
    }
}

/// 5 minutes per `FLAGPOLE_REPLAY_SCALE` (the CI run takes about one).
private let replayTimeLimitMinutes: Int = 5 * WatcherReplayTests.Plan.fromEnvironment.scale
