import FlagpoleCore
import FlagpoleStore
import Foundation

/// One announcement of a change in an environment, made from its audit entry: what chat targets
/// show (``alert``: title and text) and what the generic webhook receives (``webhook``).
///
/// The text says who (the actor), what (the action and the flags), why (the reason), before →
/// after (from the entry's details) and where (the environment), with a link to each flag's page
/// in the web console when ``ChangeNotifier/Configuration-swift.struct/consoleURL`` is set. It is
/// made only from the audit entry, which holds no secret: no token, no Redis URL, no webhook URL.
package struct ChangeNotice: Sendable, Hashable {
    /// Title, text and severity, as chat targets show them (``AlertMessage/chatText(_:)``).
    package var alert: Alert
    /// The generic webhook's JSON document (docs/daemon.md#notifications lists its fields).
    package var webhook: JSONValue

    /// The most flags a notice lists one by one (before → after and links); the rest are counted.
    package static let flagLimit = 10

    /// Whether an audit action is announced: every change, but not the watcher's sampled
    /// `rollout-hold` looks (a hold changes nothing; an incident's hold is the watcher's alert).
    package static func isAnnounced(action: String) -> Bool {
        action != "rollout-hold"
    }

    /// What a target receives: the webhook's document, a Slack-compatible `{"text": …}` or
    /// Telegram's `sendMessage`.
    package func body(for kind: AlertMessage.Kind, chatID: String?) -> JSONValue {
        switch kind {
        case .webhook: return webhook
        case .slack: return AlertMessage.slack(alert)
        case .telegram: return AlertMessage.telegram(alert, chatID: chatID ?? "")
        }
    }

    // MARK: - A change

    /// The notice of one audit entry of `environment`.
    ///
    /// - Parameter consoleURL: the web console's address (`https://flags.example.com/console`);
    ///   each flag's page is `consoleURL/flags/KEY`. Nil: no links.
    package init(entry: AuditEntry, environment: String, consoleURL: String?) {
        let d = entry.details
        let flags = entry.flags
        let who = entry.actor.isEmpty ? "unknown" : entry.actor
        let named = Self.flagList(flags)
        var severity = Alert.Severity.info
        var what: String
        var changes: [(flag: String, before: String, after: String)] = []
        var notes: [String] = []
        func override(_ v: JSONValue?) -> String {
            guard let v, !v.isNull else { return "no override (the files' definition)" }
            return (try? OverrideRecord(json: v))?.override.summary ?? "an override"
        }
        let rollout = d["rollout"]?.stringValue
        let target = d["target"]?.stringValue.map { "\"\($0)\"" } ?? "?"
        let percent = d["percent"].flatMap(Self.int).map { "\($0)%" } ?? "?"
        switch entry.action {
        case "set", "enable", "disable", "clear":
            let flag = flags.first ?? "?"
            switch entry.action {
            case "set": what = "\(flag) set to \(override(d["after"]))"
            case "enable": what = "\(flag) enabled"
            case "disable":
                what = "\(flag) disabled (kill switch)"
                severity = .warning
            default:
                what = "\(flag) override cleared"
                if d["unpinned"]?.boolValue == true {
                    what += " and unpinned"
                    notes.append("The pin an automatic revert left is released: the next sync may change the flag again.")
                }
            }
            changes.append((flag, override(d["before"]), override(d["after"])))
        case "sync", "restore":
            let added = Self.strings(d["added"]), changed = Self.strings(d["changed"]), removed = Self.strings(d["removed"])
            let unpinned = Self.strings(d["unpinned"])
            var counts: [String] = []
            if !added.isEmpty { counts.append("\(added.count) added") }
            if !changed.isEmpty { counts.append("\(changed.count) changed") }
            if !removed.isEmpty { counts.append("\(removed.count) removed") }
            if !unpinned.isEmpty { counts.append("\(unpinned.count) unpinned") }
            let summary = counts.isEmpty ? "flag-set metadata" : counts.joined(separator: ", ")
            if entry.action == "restore" {
                let revision = d["restoredRevision"].flatMap(Self.int).map { "revision \($0)" } ?? "an earlier revision"
                what = "restored \(revision) (\(summary))"
                severity = .warning
            } else {
                what = "sync (\(summary))"
                if let commit = d["git"]?["commit"]?.stringValue, !commit.isEmpty {
                    notes.append("From git commit \(commit.prefix(12))\(d["git"]?["dirty"]?.boolValue == true ? " (with uncommitted changes)" : "").")
                }
            }
            let before = d["before"] ?? .object([:]), after = d["after"] ?? .object([:])
            for flag in added { changes.append((flag, "not defined", Self.definitionSummary(after[flag]))) }
            for flag in changed {
                let delta = Self.definitionDelta(before[flag], after[flag])
                changes.append((flag, delta.before, delta.after))
            }
            for flag in removed { changes.append((flag, Self.definitionSummary(before[flag]), "removed")) }
            for flag in unpinned where !changed.contains(flag) && !added.contains(flag) { changes.append((flag, "pinned", "unpinned")) }
            if let dropped = d["droppedOverrides"], !Self.strings(dropped).isEmpty {
                notes.append("Overrides dropped with their flags: \(Self.flagList(Self.strings(dropped))).")
            }
            if let still = d["stillPinned"], !Self.strings(still).isEmpty {
                notes.append("Still pinned by an automatic revert (not changed): \(Self.flagList(Self.strings(still))).")
            }
        case "rollout-start":
            let steps = (d["steps"]?.arrayValue ?? []).compactMap(Self.int).map { "\($0)" }.joined(separator: " → ")
            what = "\(named) rollout started → \(target)" + (steps.isEmpty ? "" : " (\(steps) %)")
            if d["dryRun"]?.boolValue == true { what += ", dry run" }
            if let forced = d["forcedWindows"], !Self.strings(forced).isEmpty {
                severity = .warning
                notes.append("Started inside freeze window \(Self.strings(forced).joined(separator: ", ")) (forced).")
            }
            if let gate = d["promotionGate"], gate["overridden"]?.boolValue == true {
                severity = .warning
                let source = gate["requirePassIn"]?.stringValue ?? "?"
                let missing = gate["missing"]?.stringValue ?? "?"
                notes.append("Promotion gate (requirePassIn: \(source)) overridden with --force: \(missing).")
            }
            changes.append((flags.first ?? "?", override(d["before"]), "rollout \(percent) → \(target)"))
        case "rollout-advance":
            let from = d["fromPercent"].flatMap(Self.int).map { "\($0)%" } ?? "?"
            let to = d["toPercent"].flatMap(Self.int).map { "\($0)%" } ?? percent
            what = "\(named) rollout advanced \(from) → \(to)"
            changes.append((flags.first ?? "?", "rollout \(from) → \(target)", "rollout \(to) → \(target)"))
        case "rollout-complete", "rollout-promote":
            what = "\(named) rollout " + (entry.action == "rollout-promote" ? "promoted" : "completed") + " → \(target)"
            changes.append((flags.first ?? "?", "rollout \(percent) → \(target)", "variant \(target) for everyone"))
        case "rollout-revert":
            what = "\(named) reverted"
            severity = .critical
            changes.append((flags.first ?? "?", "rollout \(percent) → \(target)", "what it served before the rollout (pinned)"))
            notes.append(
                "The flag is pinned; reconcile the files, then flagctl sync --env \(environment) --unpin \(flags.first ?? "FLAG").")
        case "rollout-abort":
            what = "\(named) rollout aborted"
            severity = .warning
            let restored = d["restored"]
            let after = restored?.stringValue == "untouched" ? "left as it was (changed by someone else)" : override(restored)
            changes.append((flags.first ?? "?", "rollout \(percent) → \(target)", after))
        case "rollout-pause":
            what = "\(named) rollout paused at \(percent)"
        case "rollout-resume":
            what = "\(named) rollout resumed at \(percent)"
        case "rollout-stop":
            what = "\(named) rollout stopped"
            severity = .warning
            notes.append("Nothing was reverted: someone else changed the flag meanwhile.")
        case "rollout-would-revert":
            what = "\(named) dry run would revert"
            severity = .warning
            notes.append("A dry run: the flag was not changed.")
        case FlagStore.unreadableAction:
            what = "an audit entry (\(entry.id)) that cannot be read"
            severity = .warning
            notes.append("It was not written by Flagpole (or was changed by hand): inspect it with redis-cli XRANGE.")
        default:
            what = entry.action + (flags.isEmpty ? "" : " of \(named)")
        }
        let title = "\(environment): \(what) by \(who)"
        var lines: [String] = []
        if let reason = entry.reason, !reason.isEmpty { lines.append("Why: \(reason)") }
        let shown = changes.prefix(Self.flagLimit)
        for c in shown { lines.append("\(c.flag): \(c.before) → \(c.after)") }
        if changes.count > shown.count { lines.append("… and \(changes.count - shown.count) more flags") }
        lines += notes
        var links: [String: JSONValue] = [:]
        if let base = consoleURL.map(Self.trimmedBase), !base.isEmpty {
            for flag in flags.prefix(Self.flagLimit) {
                let link = base + "/flags/" + URLComponent.encode(flag)
                links[flag] = .string(link)
                lines.append("Console: \(link)")
            }
        }
        var meta = "Revision \(entry.revision)"
        if let rollout { meta += ", rollout \(rollout)" }
        lines.append(meta + ".")
        let text = lines.joined(separator: "\n")
        alert = Alert(
            severity: severity, title: title, text: text, environment: environment, flag: flags.first, rolloutID: rollout, details: d,
            at: entry.at)
        webhook = [
            "type": "change", "id": .string(entry.id), "environment": .string(environment), "revision": .int(entry.revision),
            "action": .string(entry.action), "actor": .string(entry.actor), "reason": entry.reason.map { .string($0) } ?? .null,
            "at": .int(entry.at), "flags": .array(flags.map { .string($0) }), "severity": .string(severity.rawValue),
            "title": .string(title), "text": .string(text),
            "changes": .array(changes.map { ["flag": .string($0.flag), "before": .string($0.before), "after": .string($0.after)] }),
            "links": .object(links), "rolloutID": rollout.map { .string($0) } ?? .null, "details": d,
        ]
    }

    // MARK: - Missed changes

    /// The notice that `count` changes may have been missed: the audit stream was trimmed past
    /// the last one announced (`after`, a stream id).
    package init(missed count: Int64, environment: String, after: String, at: Int64) {
        let title = "\(environment): \(count) change\(count == 1 ? "" : "s") may have been missed"
        let text =
            "The audit stream was trimmed past the last change announced (stream id \(after)) before they were announced. "
            + "flagctl audit --env \(environment) shows what is left."
        alert = Alert(severity: .warning, title: title, text: text, environment: environment, at: at)
        webhook = [
            "type": "missed", "environment": .string(environment), "missed": .int(count), "after": .string(after), "at": .int(at),
            "severity": "warning", "title": .string(title), "text": .string(text),
        ]
    }

    // MARK: - Helpers

    static func int(_ v: JSONValue) -> Int64? {
        switch v {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 1e15: return Int64(d)
        default: return nil
        }
    }

    static func strings(_ v: JSONValue?) -> [String] { (v?.arrayValue ?? []).compactMap(\.stringValue) }

    /// `a, b, c` or `a, b, … (12 flags)`.
    static func flagList(_ flags: [String]) -> String {
        if flags.isEmpty { return "no flags" }
        if flags.count <= 3 { return flags.joined(separator: ", ") }
        return flags.prefix(3).joined(separator: ", ") + ", … (\(flags.count) flags)"
    }

    /// `default "on"` or `disabled`, from a flag definition.
    static func definitionSummary(_ definition: JSONValue?) -> String {
        guard let def = definition, !def.isNull else { return "?" }
        if def["state"]?.stringValue == "DISABLED" { return "disabled" }
        var s = "default \(def["defaultVariant"]?.jsonString ?? "null")"
        if let t = def["targeting"], !t.isNull, t != .object([:]) { s += ", with targeting" }
        return s
    }

    /// What differs between two definitions, in words: `default "off"` → `default "on"`, or
    /// `targeting` → `targeting changed`.
    static func definitionDelta(_ before: JSONValue?, _ after: JSONValue?) -> (before: String, after: String) {
        guard let b = before, let a = after, !b.isNull, !a.isNull else { return (definitionSummary(before), definitionSummary(after)) }
        var bs: [String] = [], `as`: [String] = []
        if b["state"] != a["state"] {
            bs.append(b["state"]?.stringValue ?? "?")
            `as`.append(a["state"]?.stringValue ?? "?")
        }
        if b["defaultVariant"] != a["defaultVariant"] {
            bs.append("default \(b["defaultVariant"]?.jsonString ?? "null")")
            `as`.append("default \(a["defaultVariant"]?.jsonString ?? "null")")
        }
        for key in ["variants", "targeting", "metadata"] where b[key] != a[key] {
            bs.append(key)
            `as`.append("\(key) changed")
        }
        if bs.isEmpty { return ("definition", "definition changed") }
        return (bs.joined(separator: ", "), `as`.joined(separator: ", "))
    }

    static func trimmedBase(_ url: String) -> String {
        var s = url.trimmingCharacters(in: .whitespaces)
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
