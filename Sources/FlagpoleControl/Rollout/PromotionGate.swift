import FlagpoleCore
import FlagpoleStore

/// The promotion gate: whether a rollout of a flag to a variant may start in an environment whose
/// project config says `requirePassIn: SOURCE` (`prod: {requirePassIn: test}`).
///
/// It passes when the flag's rollout record in the source environment is a rollout to the same
/// variant that **completed** — not running, paused, aborted, reverted or stopped, and not a dry
/// run — and the variant has the same value in both environments' live definitions, and the same
/// value it had when the source's rollout ran. Anything else is refused, naming what is missing and
/// the command that gets it; `--force` turns a refusal into an override, which the start records in
/// its audit entry and alerts.
///
/// Pure: the caller reads the records and definitions and carries out the decision
/// (``EnvironmentControl/startRollout(_:alerts:)``, `flagctl promote`).
package enum PromotionGate {
    /// What the gate needs to know, read by the caller.
    package struct Input: Sendable, Hashable {
        /// The flag to roll out.
        package var flag: String
        /// The variant to roll out.
        package var variant: String
        /// The environment the rollout would start in (`prod`).
        package var environment: String
        /// The environment its config requires a pass in (`test`); nil: no gate.
        package var requirePassIn: String?
        /// The flag's rollout record in `requirePassIn` (the running one or the last that ended); nil: none.
        package var sourceRecord: RolloutRecord?
        /// The flag's live definition in `requirePassIn` (the synced definition with its override
        /// applied); nil when the flag is not there.
        package var sourceDefinition: JSONValue?
        /// The flag's live definition in `environment`.
        package var targetDefinition: JSONValue?
        /// `--force`. Default: false.
        package var force = false

        /// Creates an input.
        package init(
            flag: String, variant: String, environment: String, requirePassIn: String?, sourceRecord: RolloutRecord?,
            sourceDefinition: JSONValue?, targetDefinition: JSONValue?, force: Bool = false
        ) {
            self.flag = flag
            self.variant = variant
            self.environment = environment
            self.requirePassIn = requirePassIn
            self.sourceRecord = sourceRecord
            self.sourceDefinition = sourceDefinition
            self.targetDefinition = targetDefinition
            self.force = force
        }
    }

    /// The completed rollout that lets the start through.
    package struct Pass: Sendable, Hashable {
        /// The source environment.
        package var environment: String
        /// The completed rollout's id.
        package var rolloutID: String
        /// When it completed (Unix seconds).
        package var completedAt: Int64
        /// Who started it.
        package var startedBy: String
        /// Whether a person promoted it before the watcher finished watching (`rollout promote`).
        package var promotedByHand: Bool

        /// `{"environment","rollout","completedAt","startedBy","promotedByHand"}`, for the audit.
        package var json: JSONValue {
            [
                "environment": .string(environment), "rollout": .string(rolloutID), "completedAt": .int(completedAt),
                "startedBy": .string(startedBy), "promotedByHand": .bool(promotedByHand),
            ]
        }
    }

    /// Why the gate refuses.
    package enum Problem: Sendable, Hashable, CustomStringConvertible {
        /// The flag is not in the source environment at all.
        case flagMissingInSource(flag: String, source: String)
        /// The variant is not in the source environment's definition of the flag.
        case variantMissingInSource(flag: String, variant: String, source: String)
        /// The flag never had a rollout in the source environment.
        case noRollout(flag: String, variant: String, source: String)
        /// The source's last rollout of the flag went to another variant.
        case otherVariant(flag: String, variant: String, source: String, rolloutID: String, rolledOut: String, status: String)
        /// The source's rollout to the variant is still running or paused.
        case notFinished(flag: String, variant: String, source: String, rolloutID: String, status: String, percent: Int)
        /// The source's rollout to the variant ended without completing (aborted, reverted, stopped).
        case notCompleted(flag: String, variant: String, source: String, rolloutID: String, status: String, why: String?)
        /// The source's rollout was a dry run: nobody was served the variant on its evidence alone.
        case dryRun(flag: String, variant: String, source: String, rolloutID: String)
        /// The variant's value differs between the two environments.
        case valueDiffers(flag: String, variant: String, source: String, sourceValue: JSONValue, environment: String, value: JSONValue?)
        /// The variant's value in the source changed since its rollout ran: what completed is not what is there now.
        case changedSinceRollout(flag: String, variant: String, source: String, rolloutID: String, then: JSONValue, now: JSONValue)

        /// The command that gets a pass in the source environment.
        static func rolloutCommand(_ flag: String, _ variant: String, _ source: String) -> String {
            "flagctl rollout start \(flag) --env \(source) --to \(variant)"
        }

        /// What is missing and how to get it.
        package var description: String {
            switch self {
            case .flagMissingInSource(let flag, let source):
                return "flag '\(flag)' is not in \(source): add it to flags/\(source)/, run: flagctl sync --env \(source), then roll it out there"
            case .variantMissingInSource(let flag, let variant, let source):
                return
                    "flag '\(flag)' has no variant '\(variant)' in \(source): make flags/\(source)/ define it as in this environment, run: flagctl sync --env \(source), then run: \(Self.rolloutCommand(flag, variant, source))"
            case .noRollout(let flag, let variant, let source):
                return "no rollout of '\(flag)' to '\(variant)' completed in \(source): run: \(Self.rolloutCommand(flag, variant, source))"
            case .otherVariant(let flag, let variant, let source, let id, let rolledOut, let status):
                return
                    "the last rollout of '\(flag)' in \(source) (\(id), \(status)) went to '\(rolledOut)', not '\(variant)': run: \(Self.rolloutCommand(flag, variant, source))"
            case .notFinished(let flag, let variant, let source, let id, let status, let percent):
                return
                    "the rollout of '\(flag)' to '\(variant)' in \(source) (\(id)) is \(status) at \(percent)%, not completed: wait for it to complete (flagctl rollout status \(flag) --env \(source) --follow)"
            case .notCompleted(let flag, let variant, let source, let id, let status, let why):
                return
                    "the rollout of '\(flag)' to '\(variant)' in \(source) (\(id)) was \(status)\(why.map { " (\($0))" } ?? ""), not completed: fix the cause, then run: \(Self.rolloutCommand(flag, variant, source))"
            case .dryRun(let flag, let variant, let source, let id):
                return
                    "the rollout of '\(flag)' to '\(variant)' in \(source) (\(id)) was a dry run, which proves nothing: run: \(Self.rolloutCommand(flag, variant, source))"
            case .valueDiffers(let flag, let variant, let source, let sourceValue, let environment, let value):
                return
                    "variant '\(variant)' of '\(flag)' is \(sourceValue.jsonString) in \(source) but \(value?.jsonString ?? "missing") in \(environment): what passed in \(source) is not what \(environment) would serve; make flags/\(source)/ and flags/\(environment)/ agree, sync both, and run: \(Self.rolloutCommand(flag, variant, source))"
            case .changedSinceRollout(let flag, let variant, let source, let id, let then, let now):
                return
                    "variant '\(variant)' of '\(flag)' in \(source) is \(now.jsonString) now but was \(then.jsonString) when rollout \(id) completed: the new value has not passed; run: \(Self.rolloutCommand(flag, variant, source))"
            }
        }
    }

    /// What the gate decides.
    package enum Decision: Sendable, Hashable {
        /// The environment requires no pass.
        case notRequired
        /// A completed rollout in the source environment lets the start through.
        case passed(Pass)
        /// Refused: the start must not happen.
        case refused(Problem, source: String)
        /// Refused, but `--force` overrides it: the start goes ahead, audited and alerted.
        case overridden(Problem, source: String)

        /// Whether the start may go ahead.
        package var allowsStart: Bool {
            if case .refused = self { return false }
            return true
        }

        /// What the audit entry records (`details.promotionGate`); nil when no gate applies.
        package var auditJSON: JSONValue? {
            switch self {
            case .notRequired: return nil
            case .passed(let pass): return ["requirePassIn": .string(pass.environment), "passed": true, "pass": pass.json]
            case .refused(let problem, let source):
                return ["requirePassIn": .string(source), "passed": false, "overridden": false, "missing": .string(problem.description)]
            case .overridden(let problem, let source):
                return ["requirePassIn": .string(source), "passed": false, "overridden": true, "missing": .string(problem.description)]
            }
        }
    }

    /// The value of `variant` in a flag definition.
    package static func variantValue(_ variant: String, in definition: JSONValue?) -> JSONValue? {
        definition?["variants"]?[variant]
    }

    /// Decides whether the start in `input.environment` may go ahead.
    package static func decide(_ input: Input) -> Decision {
        guard let source = input.requirePassIn else { return .notRequired }
        guard let problem = problem(input, source: source) else {
            let r = input.sourceRecord!
            return .passed(
                Pass(
                    environment: source, rolloutID: r.id, completedAt: r.endedAt ?? r.startedAt, startedBy: r.startedBy,
                    promotedByHand: r.decisions["complete"] == nil))
        }
        return input.force ? .overridden(problem, source: source) : .refused(problem, source: source)
    }

    private static func problem(_ input: Input, source: String) -> Problem? {
        let flag = input.flag, variant = input.variant
        guard let sourceDefinition = input.sourceDefinition else { return .flagMissingInSource(flag: flag, source: source) }
        guard let sourceValue = variantValue(variant, in: sourceDefinition) else {
            return .variantMissingInSource(flag: flag, variant: variant, source: source)
        }
        guard let record = input.sourceRecord else { return .noRollout(flag: flag, variant: variant, source: source) }
        guard record.targetVariant == variant else {
            return .otherVariant(
                flag: flag, variant: variant, source: source, rolloutID: record.id, rolledOut: record.targetVariant, status: record.status.rawValue)
        }
        switch record.status {
        case .running, .paused:
            return .notFinished(
                flag: flag, variant: variant, source: source, rolloutID: record.id, status: record.status.rawValue, percent: record.percent)
        case .aborted, .reverted, .stopped:
            return .notCompleted(
                flag: flag, variant: variant, source: source, rolloutID: record.id, status: record.status.rawValue, why: record.statusReason)
        case .completed:
            break
        }
        if record.dryRun { return .dryRun(flag: flag, variant: variant, source: source, rolloutID: record.id) }
        let targetValue = variantValue(variant, in: input.targetDefinition)
        if targetValue != sourceValue {
            return .valueDiffers(
                flag: flag, variant: variant, source: source, sourceValue: sourceValue, environment: input.environment, value: targetValue)
        }
        if let then = variantValue(variant, in: record.before.definition), then != sourceValue {
            return .changedSinceRollout(flag: flag, variant: variant, source: source, rolloutID: record.id, then: then, now: sourceValue)
        }
        return nil
    }
}
