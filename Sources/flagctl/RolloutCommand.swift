import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation

/// `flagctl rollout …`: guarded rollouts.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Turn a flag on at once or in steps, watched by `flagctl daemon`, reverted by itself on a regression.",
        discussion: """
            start puts the first step live at once; `flagctl daemon --env ENV` (the watcher) then watches each step, advances, completes, or reverts and pins the flag, and alerts. Every step is a sticky split: users in the new variant stay in it as it grows.
            """,
        subcommands: [
            Start.self, Status.self, List.self, Pause.self, Resume.self, Abort.self, Promote.self, RolloutSimulateCommand.self,
        ]
    )

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Start a guarded rollout of FLAG to a variant.",
            discussion: """
                Defaults for --steps, --watch, --holdback and the guards come from the flag's metadata (rollout.steps, rollout.watch, rollout.holdback, rollout.maxErrorRate, …), then the guard section of flags/flagpole.yaml, then Flagpole's: straight to 100%, watched 1h, no holdback, max error rate 5%, max increase 1 point, 200 samples. A start inside a freeze window is refused unless --force (recorded in the audit).

                Promotion gate: when flags/flagpole.yaml says `prod: {requirePassIn: test}`, a start in prod is refused unless a rollout of the same flag to the same variant completed in test (not aborted, reverted, stopped or a dry run) and the variant has the same value in both; the refusal says what is missing and which command gets it. --force overrides it: the audit records it and the alert targets hear of it.

                With --holdback 2%, the final step serves the variant to all but a sticky 2% of users while it is watched, and compares with them (a concurrent control: an incident or a drifting baseline affects both); the holdback is released when the rollout completes. Without one, the final step compares with the window before the rollout, widened by how much the baseline drifts.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var change: ChangeOptions
        @Argument(help: "The flag key.") var flag: String
        @Option(name: .customLong("to"), help: ArgumentHelp("The variant to roll out.", valueName: "variant")) var target: String
        @Option(help: ArgumentHelp("Steps in percent, increasing, ending at 100 (default: straight to 100).", valueName: "5,25,50,100"))
        var steps: String?
        @Option(
            help: ArgumentHelp(
                "How long each step is watched (default: the flag's guard policy, else the project's, else 1h).", valueName: "duration"))
        var watch: String?
        @Option(
            help: ArgumentHelp(
                "Keep this share of users (0…50%) on the old variant while the final step is watched, as its concurrent control; released on completion (default: the guard policy's, else none).",
                valueName: "percent")) var holdback: String?
        @Option(
            help: ArgumentHelp(
                "Revert at once above this treatment error rate, unless the concurrent control is above it too (an incident: hold) (0…1).",
                valueName: "fraction")) var maxErrorRate: Double?
        @Option(help: ArgumentHelp("Revert when the treatment's error rate exceeds the control's by more than this (0…1).", valueName: "fraction"))
        var maxErrorIncrease: Double?
        @Option(help: ArgumentHelp("The fewest outcomes per cohort before anything but hold is decided.", valueName: "n")) var minSamples: Int?
        @Option(help: ArgumentHelp("Revert above this treatment p95 latency, e.g. 800ms.", valueName: "duration")) var maxP95Latency: String?
        @Option(help: ArgumentHelp("Where the error rates come from: builtin (the client library's counters) or prometheus.", valueName: "source"))
        var metric: String?
        @Option(help: ArgumentHelp("The Prometheus server, with --metric prometheus.", valueName: "url")) var prometheusUrl: String?
        @Option(help: ArgumentHelp("The PromQL query for a cohort's error rate, with --metric prometheus.", valueName: "promql")) var prometheusQuery:
            String?
        @Flag(
            help:
                "A dry run of the guards: the first step goes live, the watcher judges it but never acts (it reports \"would revert\"); promote or abort it yourself."
        ) var dryRun = false
        @Flag(help: "Start even inside a freeze window or without the promotion gate's pass (recorded in the audit and alerted).") var force = false
        @Flag(help: "Print the rollout as JSON.") var json = false

        func validate() throws {
            if let steps, parseSteps(steps) == nil {
                throw ValidationError("--steps '\(steps)': write increasing percentages between 1 and 100 ending at 100, e.g. 5,25,50,100")
            }
            if let watch, DurationText.parse(watch).map({ $0 > .zero }) != true {
                throw ValidationError("--watch '\(watch)' is not a positive duration (e.g. 1h, 30m, 90s)")
            }
            if let maxP95Latency, DurationText.parse(maxP95Latency).map({ $0 > .zero }) != true {
                throw ValidationError("--max-p95-latency '\(maxP95Latency)' is not a positive duration (e.g. 800ms)")
            }
            for (name, value) in [("--max-error-rate", maxErrorRate), ("--max-error-increase", maxErrorIncrease)] {
                if let value, !(value >= 0 && value <= 1) { throw ValidationError("\(name) must be a fraction between 0 and 1 (0.02 means 2%)") }
            }
            if let minSamples, minSamples < 1 { throw ValidationError("--min-samples must be at least 1") }
            if let holdback, GuardPolicy.holdbackPercent(.string(holdback)) == nil {
                throw ValidationError("--holdback '\(holdback)' must be a percentage between 0 and 50, e.g. 2%")
            }
            if let metric, metric != "builtin" && metric != "prometheus" { throw ValidationError("--metric must be builtin or prometheus") }
        }

        func run() async throws {
            let control = try global.control()
            var request = EnvironmentControl.RolloutStart(flag: flag, target: target)
            request.steps = steps.flatMap(parseSteps)
            request.watch = watch.flatMap(DurationText.parse)
            request.holdback = holdback.flatMap { GuardPolicy.holdbackPercent(.string($0)) }
            request.maxErrorRate = maxErrorRate
            request.maxErrorIncrease = maxErrorIncrease
            request.minSamples = minSamples
            request.maxP95Latency = maxP95Latency.flatMap(DurationText.parse)
            request.metric = metric
            request.prometheusURL = prometheusUrl
            request.prometheusQuery = prometheusQuery
            request.dryRun = dryRun
            request.force = force
            request.actor = change.resolvedActor
            request.reason = change.reason
            let record = try await startRolloutAlerting(control, request)
            if json {
                Output.json(record.json)
                return
            }
            let steps = record.steps.map { "\($0)%" }.joined(separator: " → ")
            print(
                "\(control.environment): rollout \(record.id) started\(record.dryRun ? " (dry run: the watcher judges but never acts; promote or abort it yourself)" : ""): \(flag) → \(record.targetVariant), steps \(steps), each watched \(DurationText.format(.seconds(record.watchSeconds))) (revision \(record.revision))"
            )
            if !record.forcedWindows.isEmpty {
                print("forced through freeze window(s): \(record.forcedWindows.joined(separator: ", ")) (recorded in the audit)")
            }
            if let gate = record.forcedGate { print("forced through the promotion gate: \(gate) (recorded in the audit)") }
            print("guards: \(guardsText(record))")
            print(
                "the watcher (flagctl daemon --env \(control.environment)) decides; follow it with flagctl rollout status \(flag) --env \(control.environment) --follow"
            )
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "A rollout's step, time left, cohorts, error rates, the current verdict and why, and whether a watcher is live.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The flag key (default: every rollout of the environment).") var flag: String?
        @Flag(help: "Keep printing every 2 s until the rollout ends.") var follow = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let control = try global.control()
            while true {
                let read = try await reportingErrors { try await control.store.readRollouts() }
                let now = Int64(Date().timeIntervalSince1970)
                var records = read.rollouts.values.sorted { $0.startedAt > $1.startedAt }
                if let flag {
                    records = records.filter { $0.flag == flag }
                    if records.isEmpty {
                        Output.error("flag '\(flag)' has no rollout in \(control.environment) (flagctl rollout list --env \(control.environment))")
                        throw ExitCode.failure
                    }
                }
                if json {
                    Output.json([
                        "environment": .string(control.environment), "revision": .int(read.revision),
                        "watcher": watcherJSON(read.lease, now: now),
                        "rollouts": .array(
                            records.map { r in
                                var o = r.json.objectValue ?? [:]
                                o["observation"] = read.observations[r.flag].flatMap { $0.rolloutID == r.id ? $0.json : nil } ?? .null
                                o["stepSecondsLeft"] = r.status.isActive ? .int(max(0, r.watchSeconds - elapsed(r, now: now))) : .null
                                return .object(o)
                            }),
                    ])
                } else {
                    if records.isEmpty { print("\(control.environment): no rollouts") }
                    for r in records {
                        printStatus(r, observation: read.observations[r.flag], lease: read.lease, now: now, environment: control.environment)
                    }
                    for p in read.problems { print("problem: \(p.message)") }
                }
                guard follow, records.contains(where: { $0.status.isActive }) else { return }
                try await Task.sleep(for: .seconds(2))
                if !json { print("") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every flag's rollout, running or the last one that ended.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let control = try global.control()
            let read = try await reportingErrors { try await control.store.readRollouts() }
            let records = read.rollouts.values.sorted { $0.startedAt > $1.startedAt }
            if json {
                Output.json(.array(records.map(\.json)))
                return
            }
            if records.isEmpty {
                print("\(control.environment): no rollouts (flagctl rollout start FLAG --to VARIANT --env \(control.environment))")
                return
            }
            Output.table(
                ["FLAG", "ROLLOUT", "TARGET", "STATUS", "STEP", "STARTED", "BY", "NOTE"],
                records.map { r in
                    [
                        r.flag, r.id, r.targetVariant, r.status.rawValue + (r.dryRun ? " (dry run)" : ""),
                        "\(r.stepIndex + 1)/\(r.steps.count) \(r.percent)%", Output.time(r.startedAt), r.startedBy,
                        r.wouldRevert ?? r.statusReason ?? "",
                    ]
                })
            let live = read.lease.map { $0.isLive(atMilliseconds: Int64(Date().timeIntervalSince1970 * 1000)) } ?? false
            if records.contains(where: { $0.status.isActive }) && !live {
                print(
                    "warning: no live watcher in \(control.environment): nothing is watching these rollouts; start one with flagctl daemon --env \(control.environment)"
                )
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pause", abstract: "Hold a rollout at its current step: the watcher reports but neither advances nor reverts.")
        @OptionGroup var drive: DriveOptions
        func run() async throws { try await drive.run(.pause) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume", abstract: "Continue a paused rollout; the step's clock goes on where it stopped.")
        @OptionGroup var drive: DriveOptions
        func run() async throws { try await drive.run(.resume) }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "abort", abstract: "End a rollout and put the flag back exactly as it was before it (no pin).")
        @OptionGroup var drive: DriveOptions
        func run() async throws { try await drive.run(.abort) }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "promote", abstract: "Finish a rollout now: the target variant for everyone.")
        @OptionGroup var drive: DriveOptions
        func run() async throws { try await drive.run(.promote) }
    }

    struct DriveOptions: ParsableArguments {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var change: ChangeOptions
        @Argument(help: "The flag key.") var flag: String
        @Flag(help: "Print the rollout as JSON.") var json = false

        func run(_ command: EnvironmentControl.RolloutCommand) async throws {
            let control = try global.control()
            let record = try await reportingErrors {
                try await control.driveRollout(command, flag: flag, actor: change.resolvedActor, reason: change.reason)
            }
            if json {
                Output.json(record.json)
                return
            }
            switch command {
            case .pause:
                print(
                    "\(control.environment): rollout \(record.id) of \(flag) paused at \(record.percent)% (revision \(record.revision)); flagctl rollout resume \(flag) continues it"
                )
            case .resume:
                print("\(control.environment): rollout \(record.id) of \(flag) running again at \(record.percent)% (revision \(record.revision))")
            case .abort:
                let what = record.before.override.map { "its override before the rollout (\($0.override.summary))" } ?? "the files' definition"
                print("\(control.environment): rollout \(record.id) of \(flag) aborted (revision \(record.revision)); \(flag) serves \(what) again")
            case .promote:
                print(
                    "\(control.environment): rollout \(record.id) of \(flag) promoted: \(record.targetVariant) for everyone (revision \(record.revision)); make the files agree: set defaultVariant: \(record.targetVariant) and remove its targeting"
                )
            }
        }
    }
}

/// `5,25,50,100` → [5, 25, 50, 100], or nil when not increasing percentages ending at 100.
func parseSteps(_ text: String) -> [Int]? {
    let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "%", with: "")) }
    guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
    let steps = parts.map { $0! }
    guard steps.allSatisfy({ $0 >= 1 && $0 <= 100 }), zip(steps, steps.dropFirst()).allSatisfy({ $0 < $1 }), steps.last == 100 else { return nil }
    return steps
}

private func percent(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }

private func guardsText(_ r: RolloutRecord) -> String {
    var parts = [
        "max error rate \(percent(r.limits.maxErrorRate))", "max increase over control \(percent(r.limits.maxErrorIncrease))",
        "min samples \(r.limits.minSamples)",
    ]
    if let p95 = r.limits.maxP95LatencyMicros { parts.append("max p95 \(Int(p95 / 1000)) ms") }
    if r.holdback > 0 { parts.append("holdback \(RolloutSplit.percentText(r.holdback)) at 100%") }
    parts.append("metric \(r.metric.source)")
    return parts.joined(separator: ", ")
}

private func elapsed(_ r: RolloutRecord, now: Int64) -> Int64 {
    max(0, (r.status == .paused ? (r.pausedAt ?? now) : now) - r.stepStartedAt)
}

private func watcherJSON(_ lease: WatcherLease?, now: Int64) -> JSONValue {
    guard let lease else { return ["live": false, "holder": .null] }
    return ["live": .bool(lease.isLive(atMilliseconds: now * 1000)), "holder": .string(lease.holder), "renewedAt": .int(lease.renewedAt / 1000)]
}

private func progressBar(_ fraction: Double, width: Int = 20) -> String {
    let filled = Int((min(1, max(0, fraction)) * Double(width)).rounded(.down))
    return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
}

private func printStatus(_ r: RolloutRecord, observation: RolloutObservation?, lease: WatcherLease?, now: Int64, environment: String) {
    print("\(r.flag): rollout \(r.id) → \(r.targetVariant), \(r.status.rawValue)\(r.dryRun ? " (dry run)" : "")")
    print(
        "  started by \(r.startedBy) at \(Output.time(r.startedAt))" + (r.reason.map { ": \($0)" } ?? "")
            + (r.forcedWindows.isEmpty ? "" : " (forced through freeze window \(r.forcedWindows.joined(separator: ", ")))"))
    if let gate = r.forcedGate { print("  forced through the promotion gate: \(gate)") }
    if r.status.isActive {
        let e = elapsed(r, now: now)
        let left = max(0, r.watchSeconds - e)
        let held = r.activeHoldback > 0 ? " (\(RolloutSplit.percentText(r.activeHoldback)) held back)" : ""
        print(
            "  step \(r.stepIndex + 1) of \(r.steps.count): \(r.percent)%\(held)  \(progressBar(Double(e) / Double(max(1, r.watchSeconds))))  \(DurationText.format(.seconds(e))) of \(DurationText.format(.seconds(r.watchSeconds))) watched, \(left > 0 ? DurationText.format(.seconds(left)) + " left" : "watch done, waiting for enough data")"
        )
    } else {
        print(
            "  ended at \(Output.time(r.endedAt ?? 0)) on step \(r.stepIndex + 1) of \(r.steps.count) (\(r.percent)%)"
                + (r.statusReason.map { ": \($0)" } ?? ""))
    }
    print("  guards: \(guardsText(r))")
    if let o = observation, o.rolloutID == r.id {
        func cohort(_ name: String, _ c: CohortCounts?) -> String {
            guard let c else { return "  \(name): no data" }
            return "  \(name): \(Int(c.total)) outcomes, \(c.errorRate.map(percent) ?? "-") errors"
                + (c.p95LatencyMicros.map { ", p95 \(Int($0 / 1000)) ms" } ?? "")
        }
        print(cohort("treatment (\(r.targetVariant))", o.treatment))
        print(
            cohort(
                r.percent < 100 ? "control (the rest)" : r.activeHoldback > 0 ? "control (the holdback)" : "control (before the rollout)", o.control))
        print("  verdict: \(o.verdict.rawValue) — \(o.reason) (\(Output.ago(o.at, now: now)), source \(o.source))")
    } else if r.status.isActive {
        print("  verdict: none yet (the watcher has not looked)")
    }
    if let w = r.wouldRevert { print("  dry run: \(w)") }
    if r.status == .reverted {
        print(
            "  the flag serves what it served before the rollout and is pinned; make the files agree (flagctl status --env \(environment)), then flagctl sync --env \(environment) --unpin \(r.flag)"
        )
    }
    if r.status.isActive {
        if let lease, lease.isLive(atMilliseconds: now * 1000) {
            print("  watcher: \(lease.holder), live (renewed \(Output.ago(lease.renewedAt / 1000, now: now)))")
        } else {
            let last = lease.map { " (last heartbeat from \($0.holder) \(Output.ago($0.renewedAt / 1000, now: now)))" } ?? ""
            print("  watcher: NONE LIVE\(last): nothing is watching this rollout; start one with flagctl daemon --env \(environment)")
        }
    }
}
