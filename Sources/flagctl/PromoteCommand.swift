import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation
import Logging

/// `flagctl promote FLAG --from test --to prod`: what passed in one environment, rolled out in the next.
struct PromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Roll out in the next environment what completed in the previous one (test → prod), after showing what would change.",
        discussion: """
            Shows the flag's definition in flags/FROM next to flags/TO (the files diff), what TO serves now next to what it would serve once the rollout completes (the live diff), and whether the promotion gate lets it through: a rollout of the flag to the variant completed in FROM (not aborted, reverted, stopped or a dry run), and the variant has the same value in both environments. Then it starts the guarded rollout in TO to that variant, with the guard policy's defaults, exactly as `flagctl rollout start` would; the watcher (flagctl daemon --env TO) takes it from there.

            On a terminal it asks before starting; elsewhere (CI) it refuses unless --yes. --dry-run shows everything and starts nothing. --force starts even when the gate refuses: the audit records what was missing and the alert targets hear of it.

            Not to be confused with `flagctl rollout promote FLAG`, which finishes a running rollout at once.
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var change: ChangeOptions
    @Argument(help: "The flag key.") var flag: String
    @Option(
        help: ArgumentHelp(
            "The environment the rollout completed in (default: the target's requirePassIn in flags/flagpole.yaml).", valueName: "env"))
    var from: String?
    @Option(help: ArgumentHelp("The environment to roll out in (default: --env, else $FLAGPOLE_ENV).", valueName: "env")) var to: String?
    @Option(help: ArgumentHelp("The variant to roll out (default: the one FROM's last rollout completed with).", valueName: "variant"))
    var variant: String?
    @Flag(help: "Start without asking.") var yes = false
    @Flag(help: "Start even when the promotion gate refuses (recorded in the audit and alerted).") var force = false
    @Flag(help: "Show what would change and whether the gate passes; start nothing.") var dryRun = false

    func validate() throws {
        if let to, let env = global.env, to != env { throw ValidationError("--to \(to) and --env \(env) disagree: give one of them") }
    }

    func run() async throws {
        let environment: String
        if let to { environment = to } else { environment = try global.environment() }
        let directory = FlagDirectory(root: global.flags)
        let control: EnvironmentControl
        do {
            control = try EnvironmentControl(environment: environment, client: try global.makeClient(), directory: directory)
        } catch let error as StoreError {
            throw ValidationError(error.message)
        }
        guard let source = from ?? directory.loadConfig().config.environment(named: environment)?.requirePassIn else {
            throw ValidationError(
                "no --from: name the environment the rollout completed in (e.g. --from test), or set requirePassIn for \(environment) in flags/flagpole.yaml"
            )
        }
        let plan = try await reportingErrors {
            try await control.promotionPlan(flag: flag, from: source, variant: variant, force: force)
        }
        printPlan(plan, environment: environment)
        guard let target = plan.variant, let gate = plan.gate else {
            Output.error(
                "no rollout of '\(flag)' completed in \(source), so there is no variant to promote: run: flagctl rollout start \(flag) --env \(source) --to VARIANT, or name one with --variant"
            )
            throw ExitCode.failure
        }
        if case .refused(let problem, _) = gate {
            Output.error("the promotion gate refuses: \(problem); or pass --force (audited and alerted)")
            throw ExitCode.failure
        }
        if dryRun {
            print(
                "dry run: nothing started; without --dry-run this starts the rollout in \(environment) (flagctl rollout start \(flag) --env \(environment) --to \(target))"
            )
            return
        }
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                Output.error("promote asks before it starts a rollout, and standard input is not a terminal: pass --yes to start without asking")
                throw ExitCode.failure
            }
            FileHandle.standardOutput.write(Data("Start the rollout of \(flag) to \(target) in \(environment)? [y/N] ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            guard answer == "y" || answer == "yes" else {
                print("nothing started")
                throw ExitCode.failure
            }
        }
        var request = EnvironmentControl.RolloutStart(flag: flag, target: target)
        request.requirePassIn = source
        request.force = force
        request.actor = change.resolvedActor
        request.reason = change.reason ?? "promoted from \(source)"
        let record = try await startRolloutAlerting(control, request)
        let steps = record.steps.map { "\($0)%" }.joined(separator: " → ")
        print(
            "\(environment): rollout \(record.id) started: \(flag) → \(record.targetVariant), steps \(steps), each watched \(DurationText.format(.seconds(record.watchSeconds))) (revision \(record.revision))"
        )
        if !record.forcedWindows.isEmpty {
            print("forced through freeze window(s): \(record.forcedWindows.joined(separator: ", ")) (recorded in the audit)")
        }
        if let gate = record.forcedGate { print("forced through the promotion gate: \(gate) (recorded in the audit)") }
        print(
            "the watcher (flagctl daemon --env \(environment)) decides; follow it with flagctl rollout status \(flag) --env \(environment) --follow")
    }

    private func printPlan(_ plan: EnvironmentControl.PromotionPlan, environment: String) {
        print("promote \(plan.flag) from \(plan.source) to \(environment)" + (plan.variant.map { ": variant \($0)" } ?? ""))
        print("files (flags/\(plan.source) → flags/\(environment)):")
        if plan.sourceFile == nil { print("    \(plan.flag) is not in flags/\(plan.source)") }
        if plan.targetFile == nil { print("    \(plan.flag) is not in flags/\(environment)") }
        if plan.sourceFile != nil && plan.targetFile != nil {
            let diff = plan.fileDifferences
            if diff.isEmpty { print("    the same definition in both") }
            for d in diff { print("    \(d.field): \(text(d.source)) → \(text(d.target))") }
        }
        print("live (\(environment) now → once the rollout completes):")
        if plan.liveAfter == nil {
            print("    unknown: no variant to roll out")
        } else {
            let diff = plan.liveDifferences
            if diff.isEmpty { print("    no change: \(environment) already serves \(plan.variant ?? "") to everyone") }
            for d in diff { print("    \(d.field): \(text(d.source)) → \(text(d.target))") }
        }
        switch plan.gate {
        case .notRequired?, nil: break
        case .passed(let pass)?:
            print(
                "gate: passed: rollout \(pass.rolloutID) completed in \(pass.environment) at \(Output.time(pass.completedAt)), started by \(pass.startedBy)"
                    + (pass.promotedByHand ? " (promoted by hand before the watch ended)" : ""))
        case .refused(let problem, _)?: print("gate: REFUSED: \(problem)")
        case .overridden(let problem, _)?: print("gate: OVERRIDDEN by --force: \(problem)")
        }
        let steps = (plan.policy.steps ?? [100]).map { "\($0)%" }.joined(separator: " → ")
        let watch = DurationText.format(plan.policy.watch ?? .seconds(3600))
        print("rollout: steps \(steps), each watched \(watch) (the guard policy's defaults)")
    }

    private func text(_ v: JSONValue?) -> String { v?.jsonString ?? "(none)" }
}

/// Starts a rollout (`rollout start`, `promote`) with the alert targets of the project config at
/// hand: a forced start is alerted before the command exits, and the command says whether the
/// alert got through.
func startRolloutAlerting(_ control: EnvironmentControl, _ request: EnvironmentControl.RolloutStart) async throws -> RolloutRecord {
    var logger = Logger(label: "flagctl")
    logger.logLevel = .critical
    let targets = control.directory.loadConfig().config.alertTargets
    let (record, report) = try await reportingErrors {
        try await AlertDispatcher.withOneShot(targets: targets, environment: control.environment, logger: logger) { sink in
            try await control.startRollout(request, alerts: sink)
        }
    }
    if !report.alerts.isEmpty {
        if let problem = report.configurationProblem {
            Output.error("warning: the forced start is recorded in the audit, but no alert was sent: \(problem)")
        } else if report.statistics.isEmpty {
            Output.error("warning: the forced start is recorded in the audit; no alert target in flags/flagpole.yaml covers \(control.environment)")
        } else {
            if !report.delivered.isEmpty { print("alerted: \(report.delivered.joined(separator: ", "))") }
            if !report.announcedByDaemon.isEmpty {
                print(
                    "announced by flagctl daemon's notifications (notify: [\(control.environment)]): \(report.announcedByDaemon.joined(separator: ", "))"
                )
            }
            if !report.undelivered.isEmpty {
                Output.error(
                    "warning: the alert about the forced start did not reach \(report.undelivered.joined(separator: ", "))\(report.timedOut ? " in time" : ""); the audit records the start"
                )
            }
        }
    }
    return record
}
