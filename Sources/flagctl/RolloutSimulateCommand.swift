import ArgumentParser
import FlagpoleCore
import FlagpoleRollout

/// `flagctl rollout simulate`: replays synthetic traffic through the watcher's decision code.
struct RolloutSimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Replay synthetic traffic through the real decision code: detection time and false-revert rate.",
        discussion: """
            Every cell of the grid (traffic level × treatment error rate) simulates --runs rollout \
            steps: both cohorts get --rps requests a second, failing at random (the control at \
            --baseline, the treatment at the cell's rate); the watcher's judge looks every \
            --interval for --watch and the step ends at its first revert or pass. The table shows \
            how many runs were reverted within --window and within the watch, the median and 95th \
            percentile time to revert (over all runs; "-" when too few reverted), and how many \
            passed or ended holding for "not enough data".

            Then rows of real traffic (--traffic), each at 20 req/s with no regression and with 1% -> 3%: \
            unequal cohorts (20 and 80 req/s); shared incidents (1-5 min at 10-50% errors in both \
            cohorts, about one an hour); an incident in every step (within its first 3 minutes); a \
            baseline drifting ±50% within an hour; three heavy users (0.5% of the requests each) whose \
            requests all fail for 1-3 minutes about every two hours; half the outcomes up to a minute \
            late; and all of these at once (real).

            Then one line per goal: a regression from 1% to 3% at 20 req/s reverted within 5 minutes \
            in at least 95% of runs; with no regression, false reverts in at most 1% of simulated \
            hours (both on plain traffic and on the real row, every effect at once; the rows of one \
            effect alone are for reading); no revert caused by an incident in the step; at 0.1 req/s \
            never a pass, "not enough data" instead. A goal whose cell is not in the grid is skipped.

            Exit status: 0 every goal checked passes, 1 a goal fails, 2 usage error.
            """)

    @Option(help: "Simulated rollout steps per grid cell.")
    var runs = 200

    @Option(help: "The seed of the random traffic: the same seed prints the same numbers.")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Requests a second in each cohort, comma-separated.", valueName: "list"))
    var rps = "0.1,1,5,20,100"

    @Option(help: ArgumentHelp("The control's error rate (0.01 = 1%).", valueName: "rate"))
    var baseline = 0.01

    @Option(
        help: ArgumentHelp(
            "The treatment's error rates, comma-separated; the baseline's own rate is the no-regression cell.",
            valueName: "list"))
    var treatment = "0.01,0.015,0.02,0.03,0.05,0.1"

    @Option(
        help: ArgumentHelp(
            "Rows of real traffic, comma-separated: unequal, incidents, incident, drift, heavy, late, real; or none.", valueName: "list"))
    var traffic = RolloutSimulateCommand.trafficKinds.map(\.name).joined(separator: ",")

    @Option(help: ArgumentHelp("The error-rate ceiling (default 0.05).", valueName: "rate"))
    var maxErrorRate: Double?

    @Option(help: ArgumentHelp("The allowed increase over the control, absolute (default 0.01 = 1 pp).", valueName: "rate"))
    var maxErrorIncrease: Double?

    @Option(help: ArgumentHelp("Outcomes each cohort needs before anything but hold (default 200).", valueName: "n"))
    var minSamples: Int?

    @Option(help: ArgumentHelp("How long each step is watched (default 1h).", valueName: "duration"))
    var watch: String?

    @Option(help: ArgumentHelp("How often the watcher looks.", valueName: "duration"))
    var interval = "10s"

    @Option(help: ArgumentHelp("A regression counts as detected when reverted within this.", valueName: "duration"))
    var window = "5m"

    @Option(help: ArgumentHelp("The judge's false-revert bound per step.", valueName: "alpha"))
    var alpha = 0.01

    @Flag(help: "Print the results as JSON.")
    var json = false

    /// The parsed comma-separated lists and durations.
    struct Parsed {
        var rps: [Double]
        var treatment: [Double]
        var traffic: [(name: String, scenario: (Double, Double) -> RolloutSimulator.Scenario)]
        var configuration: RolloutSimulator.Configuration
    }

    /// The rows of real traffic by name: each a scenario at 20 req/s from a baseline and a treatment rate.
    static let trafficKinds: [(name: String, scenario: @Sendable (Double, Double) -> RolloutSimulator.Scenario)] = [
        ("unequal", { .init(requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, controlRequestsPerSecond: 80) }),
        ("incidents", { .init(requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, traffic: .init(incidents: .init())) }),
        (
            "incident",
            {
                .init(
                    requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, traffic: .init(incidents: .init(perHour: 0, oneWithin: 180))
                )
            }
        ),
        ("drift", { .init(requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, traffic: .init(drift: .init())) }),
        ("heavy", { .init(requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, traffic: .init(heavyUsers: .init())) }),
        ("late", { .init(requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, traffic: .init(lateness: .init())) }),
        ("real", { .init(requestsPerSecond: 20, baselineErrorRate: $0, treatmentErrorRate: $1, controlRequestsPerSecond: 80, traffic: .real) }),
    ]

    func parsed() throws -> Parsed {
        func numbers(_ text: String, _ option: String, _ valid: (Double) -> Bool, _ expected: String) throws -> [Double] {
            let parts = text.split(separator: ",").map { Double($0.filter { $0 != " " }) }
            guard !parts.isEmpty, parts.allSatisfy({ $0.map(valid) ?? false }) else {
                throw ValidationError("--\(option) must be comma-separated \(expected), not \"\(text)\"")
            }
            return parts.map { $0! }
        }
        func rate(_ x: Double) -> Bool { x >= 0 && x <= 1 }
        func duration(_ text: String, _ option: String) throws -> Duration {
            guard let d = DurationText.parse(text), d >= .seconds(1) else {
                throw ValidationError("--\(option) must be a duration of at least 1s like 10s, 5m or 1h, not \"\(text)\"")
            }
            return d
        }
        let builtIn = RolloutSimulator.builtInLimits
        let limits = GuardLimits(
            maxErrorRate: maxErrorRate ?? builtIn.maxErrorRate,
            maxErrorIncrease: maxErrorIncrease ?? builtIn.maxErrorIncrease,
            minSamples: minSamples ?? builtIn.minSamples)
        guard rate(limits.maxErrorRate) else { throw ValidationError("--max-error-rate must be between 0 and 1") }
        guard rate(limits.maxErrorIncrease) else { throw ValidationError("--max-error-increase must be between 0 and 1") }
        guard limits.minSamples >= 1 else { throw ValidationError("--min-samples must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard rate(baseline) else { throw ValidationError("--baseline must be between 0 and 1") }
        guard alpha > 0 && alpha < 0.5 else { throw ValidationError("--alpha must be between 0 and 0.5") }
        let configuration = RolloutSimulator.Configuration(
            limits: limits, alpha: alpha, lookInterval: try duration(interval, "interval"),
            stepWatch: try watch.map { try duration($0, "watch") } ?? (GuardPolicy.builtIn.watch ?? .seconds(3600)),
            detectionWindow: try duration(window, "window"), runs: runs, seed: seed)
        var kinds: [(name: String, scenario: (Double, Double) -> RolloutSimulator.Scenario)] = []
        let names = traffic.split(separator: ",").map { $0.filter { $0 != " " } }
        if names != ["none"] {
            for name in names {
                guard let kind = Self.trafficKinds.first(where: { $0.name == name }) else {
                    throw ValidationError(
                        "--traffic must be a comma-separated list of \(Self.trafficKinds.map(\.name).joined(separator: ", ")), or none; not \"\(name)\""
                    )
                }
                kinds.append((kind.name, kind.scenario))
            }
        }
        return Parsed(
            rps: try numbers(rps, "rps", { $0 > 0 && $0 <= 1_000_000 }, "request rates above 0"),
            treatment: try numbers(treatment, "treatment", rate, "error rates between 0 and 1"),
            traffic: kinds, configuration: configuration)
    }

    func validate() throws {
        _ = try parsed()
    }

    func run() throws {
        let p = try parsed()
        let simulator = RolloutSimulator(configuration: p.configuration)
        var cells = simulator.runGrid(requestsPerSecond: p.rps, baselineErrorRate: baseline, treatmentErrorRates: p.treatment)
        for kind in p.traffic {
            for rate in [baseline, 0.03] { cells.append(simulator.run(kind.scenario(baseline, rate))) }
        }
        let goals = RolloutSimulator.goals(cells)
        if json {
            print(Self.json(p.configuration, cells, goals).prettyJSONString)
        } else {
            print(Self.text(p.configuration, cells, goals))
        }
        if goals.contains(where: { $0.passed == false }) { throw ExitCode.failure }
    }

    // MARK: - Printing

    /// `x` with at most `decimals` places, trailing zeros dropped.
    static func short(_ x: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let r = (x * scale).rounded() / scale
        var text = r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
        if text == "-0" { text = "0" }
        return text
    }

    static func text(_ c: RolloutSimulator.Configuration, _ cells: [RolloutSimulator.CellResult], _ goals: [RolloutSimulator.Goal]) -> String {
        var out = [
            "\(c.runs) runs per cell, seed \(c.seed); a look every \(DurationText.format(c.lookInterval)) for "
                + "\(DurationText.format(c.stepWatch)); ceiling \(short(c.limits.maxErrorRate * 100, 2))%, "
                + "allowed increase \(short(c.limits.maxErrorIncrease * 100, 2)) pp, min samples \(c.limits.minSamples), "
                + "alpha \(short(c.alpha, 4))",
            "",
        ]
        out += RolloutSimulator.gridLines(cells, detectionWindow: c.detectionWindow)
        out.append("")
        out += RolloutSimulator.goalLines(goals)
        return out.joined(separator: "\n")
    }

    static func json(_ c: RolloutSimulator.Configuration, _ cells: [RolloutSimulator.CellResult], _ goals: [RolloutSimulator.Goal]) -> JSONValue {
        func seconds(_ d: Duration?) -> JSONValue { d.map { .int($0.components.seconds) } ?? .null }
        return .object([
            "configuration": .object([
                "runs": .int(Int64(c.runs)), "seed": .string(String(c.seed)),
                "lookIntervalSeconds": seconds(c.lookInterval), "watchSeconds": seconds(c.stepWatch),
                "detectionWindowSeconds": seconds(c.detectionWindow), "alpha": .double(c.alpha),
                "maxErrorRate": .double(c.limits.maxErrorRate), "maxErrorIncrease": .double(c.limits.maxErrorIncrease),
                "minSamples": .int(Int64(c.limits.minSamples)),
            ]),
            "cells": .array(
                cells.map { cell in
                    .object([
                        "requestsPerSecond": .double(cell.scenario.requestsPerSecond),
                        "controlRequestsPerSecond": .double(cell.scenario.controlRate),
                        "traffic": .string(cell.scenario.trafficName),
                        "baselineErrorRate": .double(cell.scenario.baselineErrorRate),
                        "treatmentErrorRate": .double(cell.scenario.treatmentErrorRate),
                        "runs": .int(Int64(cell.runs)), "simulatedHours": .double(cell.simulatedHours),
                        "reverts": .int(Int64(cell.reverts)), "revertsWithinWindow": .int(Int64(cell.revertsWithinWindow)),
                        "detectionRate": .double(cell.detectionRate), "revertsPerHour": .double(cell.revertsPerHour),
                        "medianDetectionSeconds": seconds(cell.medianDetection), "p95DetectionSeconds": seconds(cell.p95Detection),
                        "passes": .int(Int64(cell.passes)), "notEnoughDataHolds": .int(Int64(cell.notEnoughDataHolds)),
                        "otherHolds": .int(Int64(cell.otherHolds)),
                    ])
                }),
            "goals": .array(
                goals.map { goal in
                    .object(["name": .string(goal.name), "passed": goal.passed.map(JSONValue.bool) ?? .null, "detail": .string(goal.detail)])
                }),
        ])
    }
}
