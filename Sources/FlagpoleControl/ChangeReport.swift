import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation

/// The sign-off sheet of an environment over a time window (`flagctl report`), made from its audit
/// stream and rollout records: every change with who, why, what and before → after; every rollout
/// with its verdicts and evidence; reverts; and every start forced through a freeze window or the
/// promotion gate, highlighted. Pure: ``make(environment:from:to:entries:rollouts:truncated:)``
/// takes what the caller read; ``markdown`` and ``json`` format it.
///
/// The JSON form is stable (documented in docs/cli.md, "flagctl report"): fields are only ever added.
package struct ChangeReport: Sendable, Hashable {
    /// One change: an audit entry (the watcher's sampled holds are counted in their rollout, not listed).
    package struct Change: Sendable, Hashable {
        /// The audit stream id.
        package var id: String
        /// Unix seconds.
        package var at: Int64
        package var revision: Int64
        package var action: String
        package var actor: String
        package var reason: String?
        package var flags: [String]
        /// Before → after, one line per flag or field, in words.
        package var changes: [String]
        /// What was forced (freeze windows, the promotion gate); empty when nothing was.
        package var overrides: [String]
        /// The rollout it belongs to, for rollout actions.
        package var rolloutID: String?
    }

    /// One verdict the watcher (or a person) acted on during a rollout.
    package struct Verdict: Sendable, Hashable {
        /// Unix seconds.
        package var at: Int64
        /// The audit action (`rollout-advance`, `rollout-complete`, `rollout-revert`, …).
        package var action: String
        package var actor: String
        /// Why, in words (the judge's reason).
        package var reason: String?
        /// The numbers behind it (``RolloutJudge``'s evidence), or null.
        package var evidence: JSONValue
    }

    /// A rollout that started or acted inside the window.
    package struct Rollout: Sendable, Hashable {
        package var id: String
        package var flag: String
        package var target: String
        /// Where it stands (from its record when it is the flag's latest; else from its last audit entry).
        package var status: String
        package var dryRun: Bool
        package var steps: [Int]
        package var startedBy: String?
        /// Unix seconds, when the start is in the window.
        package var startedAt: Int64?
        package var verdicts: [Verdict]
        /// Holds the watcher sampled into the audit.
        package var holds: Int
        /// The freeze windows and promotion gate its start was forced through.
        package var overrides: [String]
    }

    package var environment: String
    /// The window, Unix seconds.
    package var from: Int64
    package var to: Int64
    /// Oldest first.
    package var changes: [Change]
    /// By start, oldest first.
    package var rollouts: [Rollout]
    /// Whether the audit held more entries in the window than were read.
    package var truncated: Bool

    /// Changes whose start forced something.
    package var forced: [Change] { changes.filter { !$0.overrides.isEmpty } }
    /// Automatic reverts.
    package var reverts: [Change] { changes.filter { $0.action == "rollout-revert" } }

    // MARK: - Making

    /// Builds the report from audit entries (any order; those outside `from…to` are left out) and
    /// the environment's rollout records (flag → latest).
    package static func make(
        environment: String, from: Int64, to: Int64, entries: [AuditEntry], rollouts records: [String: RolloutRecord], truncated: Bool = false
    ) -> ChangeReport {
        let inWindow = entries.filter { $0.at >= from && $0.at <= to }.sorted { ($0.at, $0.id) < ($1.at, $1.id) }
        var changes: [Change] = []
        // Rollouts in order of appearance; a rollout id names the flag and its start second, so
        // two starts of one flag in the same second share it: each start opens a group of its own.
        var rollouts: [Rollout] = []
        var latest: [String: Int] = [:]
        for e in inWindow {
            let rolloutID = e.details["rollout"]?.stringValue
            if let rolloutID {
                if e.action == "rollout-start" || latest[rolloutID] == nil {
                    latest[rolloutID] = rollouts.count
                    rollouts.append(
                        Rollout(
                            id: rolloutID, flag: e.flags.first ?? "?", target: e.details["target"]?.stringValue ?? "?", status: "running",
                            dryRun: e.details["dryRun"]?.boolValue ?? false,
                            steps: e.details["steps"]?.arrayValue?.compactMap { ChangeNotice.int($0).map { Int($0) } } ?? [],
                            startedBy: nil, startedAt: nil, verdicts: [], holds: 0, overrides: []))
                }
                let i = latest[rolloutID]!
                switch e.action {
                case "rollout-start":
                    rollouts[i].startedBy = e.actor
                    rollouts[i].startedAt = e.at
                    rollouts[i].overrides = overrides(e)
                case "rollout-hold":
                    rollouts[i].holds += 1
                case "rollout-advance", "rollout-complete", "rollout-revert", "rollout-stop", "rollout-would-revert", "rollout-promote",
                    "rollout-abort", "rollout-pause", "rollout-resume":
                    rollouts[i].verdicts.append(
                        Verdict(at: e.at, action: e.action, actor: e.actor, reason: e.reason, evidence: e.details["evidence"] ?? .null))
                    rollouts[i].status = status(after: e.action) ?? rollouts[i].status
                default: break
                }
            }
            if e.action == "rollout-hold" { continue }
            changes.append(
                Change(
                    id: e.id, at: e.at, revision: e.revision, action: e.action, actor: e.actor, reason: e.reason, flags: e.flags,
                    changes: describe(e), overrides: e.action == "rollout-start" ? overrides(e) : [], rolloutID: rolloutID))
        }
        // The flag's record is its latest rollout: it says where that one stands now.
        for (id, i) in latest {
            guard let record = records[rollouts[i].flag], record.id == id else { continue }
            rollouts[i].status = record.status.rawValue
            rollouts[i].dryRun = record.dryRun
            rollouts[i].steps = record.steps
            if record.wouldRevert != nil && record.status.isActive { rollouts[i].status += " (dry run: would revert)" }
        }
        return ChangeReport(environment: environment, from: from, to: to, changes: changes, rollouts: rollouts, truncated: truncated)
    }

    static func status(after action: String) -> String? {
        switch action {
        case "rollout-complete", "rollout-promote": return "completed"
        case "rollout-revert": return "reverted"
        case "rollout-abort": return "aborted"
        case "rollout-stop": return "stopped"
        case "rollout-pause": return "paused"
        case "rollout-resume", "rollout-advance": return "running"
        default: return nil
        }
    }

    /// The freeze windows and the promotion gate a start was forced through.
    static func overrides(_ e: AuditEntry) -> [String] {
        var out: [String] = []
        for w in e.details["forcedWindows"]?.arrayValue?.compactMap(\.stringValue) ?? [] { out.append("forced through freeze window '\(w)'") }
        if let gate = e.details["promotionGate"], gate["overridden"]?.boolValue == true {
            out.append(
                "forced through the promotion gate (requirePassIn: \(gate["requirePassIn"]?.stringValue ?? "?")): \(gate["missing"]?.stringValue ?? "")"
            )
        }
        return out
    }

    /// Before → after of one entry, in words.
    static func describe(_ e: AuditEntry) -> [String] {
        let d = e.details
        func override(_ v: JSONValue?) -> String {
            guard let v, !v.isNull else { return "none" }
            return (try? OverrideRecord(json: v))?.override.summary ?? v.jsonString
        }
        func percentText(_ v: JSONValue?) -> String { v.flatMap(ChangeNotice.int).map { "\($0)%" } ?? "?" }
        switch e.action {
        case "sync", "restore":
            var lines: [String] = []
            if let r = d["restoredRevision"].flatMap(ChangeNotice.int) { lines.append("restored the flag set synced at revision \(r)") }
            let before = d["before"]?.objectValue ?? [:], after = d["after"]?.objectValue ?? [:]
            for f in d["added"]?.arrayValue?.compactMap(\.stringValue) ?? [] { lines.append("\(f): added") }
            for f in d["removed"]?.arrayValue?.compactMap(\.stringValue) ?? [] { lines.append("\(f): removed") }
            for f in d["changed"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                let b = before[f]?.objectValue ?? [:], a = after[f]?.objectValue ?? [:]
                let fields = Set(b.keys).union(a.keys).sorted().filter { b[$0] != a[$0] }
                if fields.isEmpty { lines.append("\(f): changed") }
                for k in fields {
                    lines.append("\(f): \(k) \(b[k].map { clip($0.jsonString) } ?? "(none)") → \(a[k].map { clip($0.jsonString) } ?? "(none)")")
                }
            }
            for f in d["unpinned"]?.arrayValue?.compactMap(\.stringValue) ?? [] { lines.append("\(f): unpinned") }
            for f in d["droppedOverrides"]?.arrayValue?.compactMap(\.stringValue) ?? [] { lines.append("\(f): its override was dropped") }
            if let git = d["git"], let commit = git["commit"]?.stringValue {
                lines.append("files at git \(String(commit.prefix(12)))\(git["dirty"]?.boolValue == true ? " (uncommitted changes)" : "")")
            }
            return lines
        case "set", "enable", "disable", "clear", "unpin":
            return ["override: \(override(d["before"])) → \(override(d["after"]))"]
        case "rollout-start":
            let steps = d["steps"]?.arrayValue?.compactMap { ChangeNotice.int($0).map { "\($0)%" } }.joined(separator: " → ") ?? "?"
            var line = "rollout \(d["rollout"]?.stringValue ?? "?") → \(d["target"]?.stringValue ?? "?"), steps \(steps)"
            if d["dryRun"]?.boolValue == true { line += " (dry run)" }
            var lines = [line, "override: \(override(d["before"])) → rollout \(percentText(d["percent"])) → \"\(d["target"]?.stringValue ?? "?")\""]
            if let gate = d["promotionGate"], gate["passed"]?.boolValue == true, let pass = gate["pass"] {
                lines.append(
                    "promotion gate passed: rollout \(pass["rollout"]?.stringValue ?? "?") completed in \(gate["requirePassIn"]?.stringValue ?? "?")")
            }
            return lines
        case "rollout-advance": return ["step \(percentText(d["fromPercent"])) → \(percentText(d["toPercent"]))"]
        case "rollout-complete", "rollout-promote":
            return ["completed: \"\(d["target"]?.stringValue ?? "?")\" for everyone" + (e.action == "rollout-promote" ? " (promoted by hand)" : "")]
        case "rollout-revert": return ["reverted at \(percentText(d["percent"])): the flag serves its definition from before the rollout, pinned"]
        case "rollout-abort": return ["aborted at \(percentText(d["percent"])): back to what it served before"]
        case "rollout-stop": return ["stopped at \(percentText(d["percent"])): someone changed the flag meanwhile"]
        case "rollout-would-revert": return ["dry run: would have reverted at \(percentText(d["percent"]))"]
        case "rollout-pause": return ["paused at \(percentText(d["percent"]))"]
        case "rollout-resume": return ["resumed at \(percentText(d["percent"]))"]
        default: return []
        }
    }

    static func clip(_ s: String, _ limit: Int = 120) -> String { s.count > limit ? String(s.prefix(limit - 1)) + "…" : s }

    /// Evidence in words: `treatment 1200 outcomes, 1.20% errors; control 5000, 1.00% (concurrent)`.
    static func evidenceText(_ evidence: JSONValue) -> String? {
        guard let t = evidence["treatment"], let c = evidence["control"] else { return nil }
        func rate(_ v: JSONValue) -> String { v["errorRate"]?.numberValue.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }
        func total(_ v: JSONValue) -> String { v["total"].flatMap(ChangeNotice.int).map { String($0) } ?? "0" }
        var s = "treatment \(total(t)) outcomes, \(rate(t)) errors; control \(total(c)), \(rate(c))"
        if let kind = evidence["controlKind"]?.stringValue { s += " (\(kind))" }
        if let check = evidence["check"]?.stringValue { s += "; check \(check)" }
        return s
    }

    // MARK: - Formatting

    /// `2026-01-31 09:00:00Z`.
    static func time(_ unix: Int64) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        f.timeZone = TimeZone(identifier: "UTC")
        f.locale = Locale(identifier: "en_US_POSIX")
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
    }

    /// Text from the audit stream (actor, reason, flag and variant names, evidence), made inert
    /// in Markdown: line breaks of any kind become spaces (so no value starts a line, a block, or
    /// a table row of its own), and the characters that open markup, HTML or a table cell are
    /// backslash-escaped, so `<!--` cannot hide the rest of the sheet and `|` cannot add a column.
    package static func inline(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        var previousWasBreak = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}":
                if !previousWasBreak { out.unicodeScalars.append(" ") }
                previousWasBreak = true
                continue
            case "\\", "|", "<", ">", "&", "`", "*", "_", "[", "]", "~", "#", "!":
                out.unicodeScalars.append("\\")
                out.unicodeScalars.append(scalar)
            default:
                out.unicodeScalars.append(scalar.properties.generalCategory == .control ? " " : scalar)
            }
            previousWasBreak = false
        }
        return out
    }

    /// A Markdown sign-off sheet for people. Every value from the audit stream goes through
    /// ``inline(_:)``.
    package var markdown: String {
        func cell(_ s: String) -> String { Self.inline(s) }
        var out: [String] = []
        out.append("# Changes to \(environment): \(Self.time(from)) – \(Self.time(to))")
        out.append("")
        let people = Set(changes.map(\.actor)).sorted()
        out.append(
            "\(changes.count) change\(changes.count == 1 ? "" : "s") by \(people.isEmpty ? "nobody" : people.map(cell).joined(separator: ", ")); "
                + "\(rollouts.count) rollout\(rollouts.count == 1 ? "" : "s"), \(reverts.count) automatic revert\(reverts.count == 1 ? "" : "s"), "
                + "\(forced.count) forced start\(forced.count == 1 ? "" : "s").")
        if truncated { out.append(contentsOf: ["", "**Truncated:** the audit holds more entries in this window than were read; narrow --since."]) }
        out.append("")
        out.append("## Forced starts (freeze windows, promotion gate)")
        out.append("")
        if forced.isEmpty { out.append("None.") }
        for c in forced {
            out.append(
                "- **\(Self.time(c.at))** \(cell(c.flags.joined(separator: ", "))) by \(cell(c.actor))"
                    + (c.reason.map { ": \(cell($0))" } ?? " (no reason given)"))
            for o in c.overrides { out.append("  - ⚠️ \(cell(o))") }
        }
        out.append("")
        out.append("## Automatic reverts")
        out.append("")
        if reverts.isEmpty { out.append("None.") }
        for c in reverts {
            out.append(
                "- **\(Self.time(c.at))** \(cell(c.flags.joined(separator: ", "))) (rollout \(cell(c.rolloutID ?? "?"))): \(cell(c.reason ?? ""))")
            if let r = rollouts.last(where: { $0.id == c.rolloutID && ($0.startedAt ?? 0) <= c.at }),
                let v = r.verdicts.last(where: { $0.action == "rollout-revert" }),
                let ev = Self.evidenceText(v.evidence)
            {
                out.append("  - evidence: \(cell(ev))")
            }
            out.append(
                "  - the flag is pinned: make the files agree (`flagctl reconcile`), then "
                    + "`flagctl sync --env \(environment) --unpin \(Self.codeSpanSafe(c.flags.first ?? "FLAG"))`")
        }
        out.append("")
        out.append("## Rollouts")
        out.append("")
        if rollouts.isEmpty { out.append(contentsOf: ["None.", ""]) }
        for r in rollouts {
            out.append(
                "### \(cell(r.flag)) → \(cell(r.target)) (\(cell(r.id))): \(cell(r.status))\(r.dryRun ? ", dry run" : "")")
            out.append("")
            var head = "Steps \(r.steps.map { "\($0)%" }.joined(separator: " → "))"
            if let by = r.startedBy, let at = r.startedAt {
                head += "; started by \(cell(by)) at \(Self.time(at))"
            } else {
                head += "; started before the window"
            }
            if r.holds > 0 { head += "; \(r.holds) sampled hold\(r.holds == 1 ? "" : "s")" }
            out.append(head + ".")
            for o in r.overrides { out.append(contentsOf: ["", "⚠️ \(cell(o))"]) }
            out.append("")
            if r.verdicts.isEmpty {
                out.append("No verdict acted on in the window.")
            } else {
                out.append("| time | action | by | reason | evidence |")
                out.append("|---|---|---|---|---|")
                for v in r.verdicts {
                    out.append(
                        "| \(Self.time(v.at)) | \(cell(v.action)) | \(cell(v.actor)) | \(cell(v.reason ?? "")) | \(cell(Self.evidenceText(v.evidence) ?? "")) |"
                    )
                }
            }
            out.append("")
        }
        out.append("## Every change")
        out.append("")
        if changes.isEmpty {
            out.append("None.")
        } else {
            out.append("| time | rev | action | by | reason | flags | before → after |")
            out.append("|---|---|---|---|---|---|---|")
            for c in changes {
                let mark = c.overrides.isEmpty ? "" : " ⚠️ forced"
                out.append(
                    "| \(Self.time(c.at)) | \(c.revision) | \(cell(c.action))\(mark) | \(cell(c.actor)) | \(cell(c.reason ?? "")) | \(cell(c.flags.joined(separator: ", "))) | \(c.changes.map(cell).joined(separator: "<br>")) |"
                )
            }
        }
        out.append("")
        out.append("Sign-off: ______________________  date: ____________")
        return out.joined(separator: "\n") + "\n"
    }

    /// A flag key inside a code span: backticks and line breaks cannot close it.
    static func codeSpanSafe(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "`" || $0.properties.generalCategory == .control ? "?" : $0 }))
    }

    /// The JSON form (stable; see docs/cli.md).
    package var json: JSONValue {
        func opt(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        return [
            "environment": .string(environment), "from": .int(from), "to": .int(to), "truncated": .bool(truncated),
            "summary": [
                "changes": .int(Int64(changes.count)), "rollouts": .int(Int64(rollouts.count)), "reverts": .int(Int64(reverts.count)),
                "forced": .int(Int64(forced.count)), "actors": .array(Set(changes.map(\.actor)).sorted().map { .string($0) }),
            ],
            "changes": .array(
                changes.map { c in
                    [
                        "id": .string(c.id), "at": .int(c.at), "revision": .int(c.revision), "action": .string(c.action), "actor": .string(c.actor),
                        "reason": opt(c.reason), "flags": .array(c.flags.map { .string($0) }), "changes": .array(c.changes.map { .string($0) }),
                        "forced": .bool(!c.overrides.isEmpty), "overrides": .array(c.overrides.map { .string($0) }), "rollout": opt(c.rolloutID),
                    ]
                }),
            "rollouts": .array(
                rollouts.map { r in
                    [
                        "id": .string(r.id), "flag": .string(r.flag), "target": .string(r.target), "status": .string(r.status),
                        "dryRun": .bool(r.dryRun), "steps": .array(r.steps.map { .int(Int64($0)) }), "startedBy": opt(r.startedBy),
                        "startedAt": r.startedAt.map { .int($0) } ?? .null, "holds": .int(Int64(r.holds)),
                        "overrides": .array(r.overrides.map { .string($0) }),
                        "verdicts": .array(
                            r.verdicts.map { v in
                                [
                                    "at": .int(v.at), "action": .string(v.action), "actor": .string(v.actor), "reason": opt(v.reason),
                                    "evidence": v.evidence,
                                ]
                            }),
                    ]
                }),
        ]
    }
}

/// `--since` of `flagctl report`: a duration back from now (`7d`, `24h`, `30m`) or an RFC 3339
/// date (`2026-01-31`, midnight UTC) or date-time (`2026-01-31T09:00:00Z`, `…+01:00`).
package enum ReportWindow {
    /// The start of the window, Unix seconds, or an error saying what is wrong and what is accepted.
    package static func since(_ text: String, now: Int64) throws(StoreError) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        let accepted = "write a duration back from now (7d, 24h, 30m) or an RFC 3339 date (2026-01-31 or 2026-01-31T09:00:00Z)"
        if let d = DurationText.parse(t) {
            guard d > .zero else { throw StoreError(code: .invalidInput, message: "--since '\(text)' is an empty window: \(accepted)") }
            let seconds = d.components.seconds
            // Saturate: a window longer than the epoch starts at the epoch.
            return seconds >= now ? 0 : now - seconds
        }
        var start: Int64?
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = full.date(from: t) ?? fractional.date(from: t) {
            start = Int64(date.timeIntervalSince1970.rounded(.down))
        } else if t.count == 10, t.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || $0 == "-" }) {
            let day = ISO8601DateFormatter()
            day.formatOptions = [.withFullDate]
            day.timeZone = TimeZone(identifier: "UTC")
            if let date = day.date(from: t), day.string(from: date) == t { start = Int64(date.timeIntervalSince1970) }
        }
        guard let start else { throw StoreError(code: .invalidInput, message: "--since '\(text)' is neither a duration nor a date: \(accepted)") }
        guard start <= now else {
            throw StoreError(code: .invalidInput, message: "--since '\(text)' is in the future: the report covers changes that happened; \(accepted)")
        }
        return max(0, start)
    }
}
