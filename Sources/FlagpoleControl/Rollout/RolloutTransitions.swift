import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore

/// The store changes behind every move of a rollout — start, next step, pause, resume, abort,
/// promote, complete, revert, stop — so each move is written one way only: in one atomic write
/// with its override, pin and audit entry. Which move to make, and when, is
/// ``RolloutStateMachine``'s to decide (and `rollout start`'s, for the first).
package enum RolloutTransitions {
    /// The audit actions (`rollout-start`, `rollout-advance`, …).
    package enum Action: String, Sendable, CaseIterable {
        case start = "rollout-start"
        case advance = "rollout-advance"
        case pause = "rollout-pause"
        case resume = "rollout-resume"
        case abort = "rollout-abort"
        case promote = "rollout-promote"
        case complete = "rollout-complete"
        case revert = "rollout-revert"
        case stop = "rollout-stop"
        case wouldRevert = "rollout-would-revert"
        case hold = "rollout-hold"
    }

    static func change(
        _ action: Action, record: RolloutRecord, actor: String, reason: String?, at: Int64, details: [String: JSONValue]
    ) -> StoreChange {
        var d = details
        d["rollout"] = .string(record.id)
        d["target"] = .string(record.targetVariant)
        d["step"] = .int(Int64(record.stepIndex))
        d["percent"] = .int(Int64(record.percent))
        d["steps"] = .array(record.steps.map { .int(Int64($0)) })
        if record.dryRun { d["dryRun"] = true }
        var change = StoreChange(
            audit: AuditEntry(action: action.rawValue, actor: actor, reason: reason, at: at, flags: [record.flag], details: .object(d)))
        change.requireFlags = [record.flag]
        change.setRollouts[record.flag] = record
        return change
    }

    /// The next step: the split grows, the step clock restarts.
    package static func advance(_ record: RolloutRecord, actor: String, at: Int64, decision: RolloutDecision?) -> StoreChange {
        var r = record
        r.stepIndex = min(r.stepIndex + 1, r.steps.count - 1)
        r.stepStartedAt = at
        r.decisions["advance", default: 0] += 1
        var c = change(
            .advance, record: r, actor: actor, reason: decision?.reason, at: at,
            details: [
                "fromPercent": .int(Int64(record.percent)), "toPercent": .int(Int64(r.percent)), "evidence": decision?.evidence ?? .null,
            ])
        c.setOverrides[r.flag] = OverrideRecord(
            override: .rollout(r.split), actor: actor, reason: "rollout \(r.id): step \(r.stepIndex + 1) of \(r.steps.count), \(r.percent)%", at: at,
            revision: 0)
        return c
    }

    /// Done (every step passed, or promoted): the flag serves the target to everyone, as an
    /// ordinary `set` override the files can be made to agree with.
    package static func complete(_ record: RolloutRecord, actor: String, at: Int64, decision: RolloutDecision?, promoted: Bool) -> StoreChange {
        var r = record
        r.status = .completed
        r.endedAt = at
        r.pausedAt = nil
        r.statusReason = promoted ? "promoted by \(actor)" : decision?.reason
        r.evidence = decision?.evidence
        if !promoted { r.decisions["complete", default: 0] += 1 }
        var c = change(
            promoted ? .promote : .complete, record: r, actor: actor, reason: decision?.reason ?? r.statusReason, at: at,
            details: [
                "evidence": decision?.evidence ?? .null
            ])
        c.setOverrides[r.flag] = OverrideRecord(
            override: .variant(r.targetVariant), actor: actor, reason: "rollout \(r.id) completed", at: at, revision: 0)
        return c
    }

    /// An automatic revert: the flag serves exactly its pre-rollout definition (frozen), pinned so
    /// a routine sync cannot turn the change back on.
    package static func revert(_ record: RolloutRecord, actor: String, at: Int64, decision: RolloutDecision) -> StoreChange {
        var r = record
        r.status = .reverted
        r.endedAt = at
        r.statusReason = decision.reason
        r.evidence = decision.evidence
        r.decisions["revert", default: 0] += 1
        var c = change(
            .revert, record: r, actor: actor, reason: decision.reason, at: at,
            details: [
                "evidence": decision.evidence, "restored": r.before.definition,
            ])
        c.setOverrides[r.flag] = OverrideRecord(
            override: .definition(r.before.definition), actor: actor, reason: "rollout \(r.id) reverted: \(decision.reason)", at: at, revision: 0)
        c.setPins[r.flag] = PinRecord(by: actor, reason: "rollout \(r.id) reverted: \(decision.reason)", at: at, revision: 0, rollout: r.id)
        return c
    }

    /// A person aborts: back to exactly the override (or none) in force before the rollout.
    /// When the flag no longer carries the rollout's override (`touchFlag` false), only the record changes.
    package static func abort(_ record: RolloutRecord, actor: String, reason: String?, at: Int64, touchFlag: Bool) -> StoreChange {
        var r = record
        r.status = .aborted
        r.endedAt = at
        r.pausedAt = nil
        r.statusReason = "aborted by \(actor)" + (reason.map { ": \($0)" } ?? "")
        var c = change(
            .abort, record: r, actor: actor, reason: reason, at: at,
            details: ["restored": touchFlag ? (r.before.override?.json ?? .null) : "untouched"])
        if touchFlag {
            if let o = r.before.override { c.setOverrides[r.flag] = o } else { c.removeOverrides = [r.flag] }
        }
        return c
    }

    /// Paused: the split stays; the watcher reports but does not act.
    package static func pause(_ record: RolloutRecord, actor: String, reason: String?, at: Int64) -> StoreChange {
        var r = record
        r.status = .paused
        r.pausedAt = at
        r.statusReason = "paused by \(actor)" + (reason.map { ": \($0)" } ?? "")
        return change(.pause, record: r, actor: actor, reason: reason, at: at, details: [:])
    }

    /// Resumed: the step clock continues where it stopped.
    package static func resume(_ record: RolloutRecord, actor: String, reason: String?, at: Int64) -> StoreChange {
        var r = record
        r.status = .running
        if let p = r.pausedAt { r.stepStartedAt += max(0, at - p) }
        r.pausedAt = nil
        r.statusReason = nil
        return change(.resume, record: r, actor: actor, reason: reason, at: at, details: [:])
    }

    /// Someone changed the flag meanwhile: the rollout stops and leaves their change alone.
    package static func stop(_ record: RolloutRecord, actor: String, at: Int64, why: String) -> StoreChange {
        var r = record
        r.status = .stopped
        r.endedAt = at
        r.statusReason = why
        return change(.stop, record: r, actor: actor, reason: why, at: at, details: [:])
    }

    /// A dry run would have reverted: said once in the record and the audit; the flag is untouched.
    package static func wouldRevert(_ record: RolloutRecord, actor: String, at: Int64, decision: RolloutDecision, note: String) -> StoreChange {
        var r = record
        r.wouldRevert = note
        r.evidence = decision.evidence
        r.decisions["wouldRevert", default: 0] += 1
        return change(.wouldRevert, record: r, actor: actor, reason: note, at: at, details: ["evidence": decision.evidence])
    }
}
