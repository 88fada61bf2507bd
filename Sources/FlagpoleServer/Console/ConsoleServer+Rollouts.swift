import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation

/// The rollout pages: the list, and one rollout with its chart.
extension ConsoleServer {
    /// The longest stretch a chart shows (the outcome counters are kept 6 hours by default).
    static let chartWindow: Int64 = 6 * 3600
    /// How long before a rollout's start its chart begins (the control before the rollout).
    static let chartLead: Int64 = 10 * 60

    func rolloutList(_ session: ConsoleSessions.Session) async throws -> Rendered {
        let read = try await control.store.readRollouts()
        let records = read.rollouts.values.sorted { $0.startedAt > $1.startedAt }
        var h = HTML()
        h.raw("<h1>Rollouts</h1>")
        if records.isEmpty {
            h.raw("<p class=\"quiet\">No rollouts. Start one with <code>flagctl rollout start FLAG --to VARIANT --env ")
            h.text(environment)
            h.raw("</code>.</p>")
        } else {
            h.raw(
                "<table><thead><tr><th>Flag</th><th>Target</th><th>Status</th><th>Step</th><th>Started</th><th>By</th><th>Note</th></tr></thead><tbody>"
            )
            for r in records {
                h.raw("<tr><td>")
                rolloutLink(&h, r.flag)
                h.raw("</td><td>")
                h.text(r.targetVariant)
                h.raw("</td><td><span class=\"status \(r.status.rawValue)\">")
                h.text(r.status.rawValue + (r.dryRun ? " (dry run)" : ""))
                h.raw("</span></td><td>\(r.stepIndex + 1)/\(r.steps.count) \(r.percent)%</td><td>")
                h.text(ConsolePages.time(r.startedAt))
                h.raw("</td><td>")
                h.text(r.startedBy)
                h.raw("</td><td>")
                h.text(r.wouldRevert ?? r.statusReason ?? "")
                h.raw("</td></tr>")
            }
            h.raw("</tbody></table>")
        }
        return Rendered(title: "Rollouts", body: h, live: true, tick: 60, session: session)
    }

    func rolloutPage(_ session: ConsoleSessions.Session, flag: String) async throws -> Rendered {
        guard let record = try await control.store.rollout(flag: flag) else {
            throw ConsoleError(status: .notFound, title: "Not found", message: "flag '\(flag)' has no rollout in \(environment)")
        }
        let read = try await control.store.readRollouts()
        let now = self.now()
        let to = min(record.endedAt.map { $0 + 60 } ?? now, now)
        let from = max(record.startedAt - Self.chartLead, to - Self.chartWindow)
        let chart = try await chartData(record, from: from, to: to)
        let history = try await control.store.auditEntries(flag: flag, since: record.startedAt - 1, limit: 500).filter {
            $0.details["rollout"]?.stringValue == record.id
        }
        let marks = Self.marks(record: record, history: history)

        var h = HTML()
        h.raw("<h1>Rollout of ")
        ConsolePages.flagLink(&h, flag)
        h.raw("</h1><p class=\"lead\"><span class=\"status \(record.status.rawValue)\">")
        h.text(record.status.rawValue + (record.dryRun ? " (dry run)" : ""))
        h.raw("</span> ")
        h.text(
            "→ \(record.targetVariant), step \(record.stepIndex + 1) of \(record.steps.count) (\(record.percent)%"
                + (record.activeHoldback > 0 ? ", holdback \(RolloutSplit.percentText(record.activeHoldback))%" : "") + ")")
        if record.status.isActive {
            let left = max(0, record.watchSeconds - (now - record.stepStartedAt))
            h.text(", \(left / 60) min left in this step")
        }
        h.raw("</p><p class=\"quiet\">")
        h.text("started by \(record.startedBy) at \(ConsolePages.time(record.startedAt))" + (record.reason.map { ": \($0)" } ?? ""))
        h.raw("</p>")
        if let lease = read.lease, lease.isLive(atMilliseconds: now * 1000) {
        } else if record.status.isActive {
            h.raw("<p class=\"problem\">No live watcher: nothing is watching this rollout. Start one with <code>flagctl daemon --env ")
            h.text(environment)
            h.raw("</code>.</p>")
        }
        if let o = read.observations[flag], o.rolloutID == record.id {
            h.raw("<p>Last look ")
            h.text(ConsolePages.ago(o.at, now: now))
            h.raw(": <span class=\"verdict \(o.verdict.rawValue)\">")
            h.text(o.verdict.rawValue)
            h.raw("</span> ")
            h.text(o.reason)
            h.raw("</p>")
        }
        if let why = record.wouldRevert ?? record.statusReason {
            h.raw("<p class=\"\(record.status == .reverted ? "problem" : "note")\">")
            h.text(why)
            h.raw("</p>")
        }

        h.raw("<section class=\"cards\">")
        card(&h, "Treatment", ConsolePages.percent(chart.treatment.errorRate), "\(Int(chart.treatment.total)) outcomes (\(record.targetVariant))")
        card(&h, "Control", ConsolePages.percent(chart.control.errorRate), "\(Int(chart.control.total)) outcomes (other variants)")
        card(&h, "Ceiling", ConsolePages.percent(record.limits.maxErrorRate), "reverts at once above it")
        card(
            &h, "Allowance", "+" + ConsolePages.percent(record.limits.maxErrorIncrease),
            "over the control, at least \(record.limits.minSamples) samples")
        if let limit = record.limits.maxP95LatencyMicros {
            let p95 = chart.treatment.p95LatencyMicros.map { "\(Int($0 / 1000)) ms" } ?? "–"
            card(
                &h, "p95 latency", p95,
                "limit \(Int(limit / 1000)) ms; control \(chart.control.p95LatencyMicros.map { "\(Int($0 / 1000)) ms" } ?? "–")",
                warn: (chart.treatment.p95LatencyMicros ?? 0) > limit)
        }
        h.raw("</section>")

        h.raw("<h2>Error rate per minute</h2><div class=\"chartbox\">")
        if record.metric.source != "builtin" {
            h.raw("<p class=\"quiet\">This rollout is judged by ")
            h.text(record.metric.source)
            h.raw("; the chart shows the client library's own outcome counters.</p>")
        }
        h.raw(
            ConsoleChart(
                minutes: chart.minutes, from: from, to: to, ceiling: record.limits.maxErrorRate, allowance: record.limits.maxErrorIncrease,
                marks: marks
            ).svg().markup)
        h.raw(
            "<p class=\"legend\"><span class=\"key treatment\">treatment</span> <span class=\"key control\">control</span> <span class=\"key allowance\">allowance (control + \(ConsolePages.percent(record.limits.maxErrorIncrease)))</span> <span class=\"key ceiling\">ceiling</span></p></div>"
        )

        h.raw("<h2>Steps</h2><ol class=\"steps\">")
        for (i, p) in record.steps.enumerated() {
            let state = i < record.stepIndex ? "done" : i == record.stepIndex ? "current" : "next"
            h.raw("<li class=\"\(state)\">\(p)%")
            if let started = marks.first(where: { $0.kind == "step" && $0.label == "step \(i + 1): \(p)%" }) {
                h.text(" from \(ConsolePages.clock(started.at))")
            }
            h.raw("</li>")
        }
        h.raw("</ol>")

        if record.status == .reverted {
            h.raw("<h2>Evidence</h2><pre>")
            h.text((record.evidence ?? .null).prettyJSONString)
            h.raw("</pre>")
            if let hint = try await drift(revision: record.revision)?.first(where: { $0.flag == flag })?.reconcileHint {
                h.raw("<p class=\"hint\">To make the files agree: ")
                h.text(hint)
                h.raw("</p>")
            }
        }

        if session.mayOperate && record.status.isActive {
            h.raw("<h2>Actions</h2><div class=\"actions\">")
            let commands: [EnvironmentControl.RolloutCommand] = record.status == .paused ? [.resume, .abort, .promote] : [.pause, .abort, .promote]
            for command in commands {
                actionForm(
                    &h, session: session, path: "/console/rollouts/\(HTML.urlComponent(flag))", fingerprint: record.stateFingerprint,
                    action: command.rawValue
                ) { h in
                    h.raw("<strong>\(command.rawValue.capitalized)</strong>")
                }
            }
            h.raw("</div>")
        }

        h.raw("<h2>Decisions</h2>")
        auditTable(&h, history)
        return Rendered(title: "Rollout of \(flag)", body: h, live: true, tick: 30, session: session)
    }

    /// The chart's minutes and the window's totals, from the outcome counters in Redis (the same
    /// reading the built-in metric source gives the watcher).
    func chartData(
        _ record: RolloutRecord, from: Int64, to: Int64
    ) async throws -> (
        minutes: [ConsoleChart.Minute], treatment: CohortCounts, control: CohortCounts
    ) {
        let source = BuiltinMetricSource(client: control.store.client, now: now)
        let treatment = CohortQuery(
            environment: environment, flag: record.flag, cohort: .variant(record.targetVariant), role: "treatment", from: from, to: to)
        let controlQuery = CohortQuery(
            environment: environment, flag: record.flag, cohort: .allBut(record.targetVariant), role: "control", from: from, to: to)
        let readings = try await source.readings([treatment, controlQuery])
        var byMinute: [Int64: ConsoleChart.Minute] = [:]
        for m in readings[0].minutes ?? [] {
            byMinute[m.minute, default: .init(minute: m.minute, treatmentFailures: 0, treatmentTotal: 0, controlFailures: 0, controlTotal: 0)]
                .treatmentFailures = m.counts.failures
            byMinute[m.minute]!.treatmentTotal = m.counts.total
        }
        for m in readings[1].minutes ?? [] {
            byMinute[m.minute, default: .init(minute: m.minute, treatmentFailures: 0, treatmentTotal: 0, controlFailures: 0, controlTotal: 0)]
                .controlFailures = m.counts.failures
            byMinute[m.minute]!.controlTotal = m.counts.total
        }
        // Treatment counts before the rollout started are the target variant served some other way: not treatment.
        let minutes = byMinute.values.sorted { $0.minute < $1.minute }.map { m -> ConsoleChart.Minute in
            var m = m
            if (m.minute + 1) * 60 <= record.startedAt {
                m.treatmentFailures = 0
                m.treatmentTotal = 0
            }
            return m
        }
        return (minutes, readings[0].total, readings[1].total)
    }

    /// Step boundaries and decisions from the rollout's audit entries.
    static func marks(record: RolloutRecord, history: [AuditEntry]) -> [ConsoleChart.Mark] {
        var marks: [ConsoleChart.Mark] = []
        var step = 0
        for e in history.sorted(by: { $0.at < $1.at }) {
            let kind = e.action.hasPrefix("rollout-") ? String(e.action.dropFirst(8)) : e.action
            switch kind {
            case "start", "advance":
                step = kind == "start" ? 0 : min(record.steps.count - 1, step + 1)
                let percent = e.details["percent"]?.numberValue.map { Int($0) } ?? record.steps[step]
                marks.append(.init(at: e.at, label: "step \(step + 1): \(percent)%", detail: e.reason ?? kind, kind: "step"))
            case "hold":
                continue
            default:
                marks.append(.init(at: e.at, label: kind, detail: e.reason ?? "", kind: kind))
            }
        }
        return marks
    }
}
