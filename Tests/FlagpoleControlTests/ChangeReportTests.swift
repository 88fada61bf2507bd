import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

@Suite("flagctl report: the sign-off sheet from the audit", .timeLimit(.minutes(3)))
struct ChangeReportTests {
    func watcher(_ f: PromotionFixture, clock: ManualRolloutClock, source: ScriptedMetricSource) throws -> RolloutWatcher {
        var c = RolloutWatcher.Configuration(environment: "prod", holderID: "w1")
        c.interval = .seconds(10)
        c.leaseTTL = .seconds(30)
        return try RolloutWatcher(
            configuration: c, client: f.client, metricSource: { _ in source }, alerts: CollectingAlerts(), clock: clock,
            logger: Logger(label: "test"))
    }

    func drive(_ w: RolloutWatcher, _ clock: ManualRolloutClock, until done: () async throws -> Bool) async throws {
        for _ in 0..<2_000 {
            try await w.tick()
            if try await done() { return }
            clock.advance(by: .seconds(10))
        }
        Issue.record("the watcher never got there")
    }

    @Test("a release week: sync, enable, a rollout through the gate watched to completion, a forced start reverted")
    func week() async throws {
        try await PromotionFixture.with { f in
            let start = Provenance.now
            let clock = ManualRolloutClock(startMilliseconds: start * 1000)
            // A person's change.
            _ = try await f.prod.apply(.enable(true), flag: "new-checkout", actor: "bob@host", reason: "make sure it is on")
            // Completed in test, then started in prod through the gate and watched to completion.
            _ = try await f.start(f.test)
            _ = try await f.test.driveRollout(.promote, flag: "new-checkout", actor: "ann@host", reason: "looks good in test")
            var request = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
            request.steps = [50, 100]
            request.watch = .seconds(600)
            request.actor = "ann@host"
            request.reason = "launch the new checkout"
            request.now = start
            let first = try await f.prod.startRollout(request)
            let healthy = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            try await drive(try watcher(f, clock: clock, source: healthy), clock) {
                try await f.prod.store.rollout(flag: "new-checkout")?.status == .completed
            }
            // A forced start past the gate (test never rolled "off" out), reverted by the watcher.
            request.target = "off"
            request.force = true
            request.reason = "hotfix: turn it back off"
            clock.advance(by: .seconds(60))
            request.now = clock.nowSeconds()
            let second = try await f.prod.startRollout(request)
            #expect(second.forcedGate != nil)
            let failing = ScriptedMetricSource(ScriptedMetricSource.rate(0.2))
            try await drive(try watcher(f, clock: clock, source: failing), clock) {
                try await f.prod.store.rollout(flag: "new-checkout")?.status == .reverted
            }

            let entries = try await f.prod.store.auditEntries(limit: 10_000)
            let rollouts = try await f.prod.store.readRollouts().rollouts
            let report = ChangeReport.make(
                environment: "prod", from: start - 60, to: clock.nowSeconds() + 60, entries: entries, rollouts: rollouts)
            let actions = report.changes.map(\.action)
            #expect(actions.first == "sync" && actions.contains("enable"))
            #expect(actions.filter { $0 == "rollout-start" }.count == 2)
            #expect(actions.contains("rollout-advance") && actions.contains("rollout-complete") && actions.contains("rollout-revert"))
            #expect(!actions.contains("rollout-hold"), "holds are counted per rollout, not listed")
            #expect(report.changes.map(\.at) == report.changes.map(\.at).sorted())
            #expect(report.changes.first { $0.action == "enable" }?.changes == ["override: none → enabled"])
            #expect(report.changes.first { $0.action == "sync" }?.changes.contains("new-checkout: added") == true)

            #expect(report.rollouts.map(\.id) == [first.id, second.id])
            #expect(report.rollouts.map(\.status) == ["completed", "reverted"])
            let watched = report.rollouts[0]
            #expect(watched.verdicts.map(\.action) == ["rollout-advance", "rollout-complete"])
            #expect(watched.verdicts.allSatisfy { $0.evidence["treatment"] != nil && $0.reason != nil })
            #expect(watched.holds > 0 && watched.overrides.isEmpty && watched.startedBy == "ann@host")

            #expect(report.forced.count == 1 && report.forced.first?.rolloutID == second.id)
            #expect(report.forced.first?.overrides.first?.contains("forced through the promotion gate (requirePassIn: test)") == true)
            #expect(report.reverts.count == 1 && report.reverts.first?.rolloutID == second.id)

            let md = report.markdown
            #expect(md.hasPrefix("# Changes to prod: "))
            #expect(md.contains("## Forced starts (freeze windows, promotion gate)\n\n- **"))
            #expect(md.contains("new-checkout by ann@host: hotfix: turn it back off\n  - ⚠️ forced through the promotion gate"))
            #expect(md.contains("## Automatic reverts\n\n- **") && md.contains("  - evidence: treatment "))
            #expect(md.contains("### new-checkout → on (\(first.id)): completed"))
            #expect(md.contains("| rollout-start ⚠️ forced | ann@host | hotfix: turn it back off |"))
            #expect(md.contains("promotion gate passed: rollout new-checkout-"))
            #expect(md.contains("Sign-off: "))

            let json = try JSONParser.parse(report.json.jsonString)
            #expect(json["summary"]?["forced"] == 1 && json["summary"]?["reverts"] == 1 && json["summary"]?["rollouts"] == 2)
            let actors = json["summary"]?["actors"]?.arrayValue ?? []
            #expect(actors.contains("ann@host") && actors.contains("bob@host"), "\(actors)")
            #expect(json["rollouts"]?.arrayValue?[1]["verdicts"]?.arrayValue?.last?["action"] == "rollout-revert")
            #expect(json["changes"]?.arrayValue?.contains { $0["forced"] == true && $0["action"] == "rollout-start" } == true)

            // The window: a report from after the first rollout ended leaves it out but keeps the forced one.
            let later = ChangeReport.make(
                environment: "prod", from: second.startedAt, to: clock.nowSeconds() + 60, entries: entries, rollouts: rollouts)
            #expect(later.rollouts.map(\.id) == [second.id] && !later.changes.contains { $0.action == "enable" })
        }
    }

    @Test("text from the audit cannot forge rows, hide the sheet in an HTML comment, or open markup")
    func markdownInjection() {
        let entries = [
            AuditEntry(
                id: "1000-0", revision: 1, action: "set", actor: "mallory<!--", reason: "ok\r| 2026-01-01 | 9 | set | cto | approved |\n\n<!--",
                at: 1_000, flags: ["new-checkout"], details: ["before": .null, "after": ["variant": "on"]]),
            AuditEntry(
                id: "2000-0", revision: 2, action: "disable", actor: "ann", reason: "line\u{2028}break `code` *bold* [link](x)", at: 2_000,
                flags: ["new-checkout"], details: [:]),
        ]
        let md = ChangeReport.make(environment: "prod", from: 0, to: 3_000, entries: entries, rollouts: [:]).markdown
        let lines = md.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(!lines.contains { $0.hasPrefix("<") }, "no value starts a line: \(md)")
        // Every "<" from the audit is escaped; the sheet's own markup is only <br> between changes.
        #expect(!md.replacingOccurrences(of: "\\<", with: "").replacingOccurrences(of: "<br>", with: "").contains("<"))
        #expect(md.contains("mallory\\<\\!--"))
        let rows = lines.filter { $0.hasPrefix("| ") && !$0.hasPrefix("| time") }
        #expect(rows.count == 2, "one row per change, none forged: \(rows)")
        func cellBorders(_ row: Substring) -> Int {
            var count = 0
            var escaped = false
            for c in row {
                if c == "|" && !escaped { count += 1 }
                escaped = c == "\\" && !escaped
            }
            return count
        }
        #expect(rows.allSatisfy { cellBorders($0) == 8 }, "seven columns in every row: \(rows)")
        #expect(md.contains("line break \\`code\\` \\*bold\\* \\[link\\](x)"))
        #expect(md.hasSuffix("Sign-off: ______________________  date: ____________\n"))
    }

    @Test(
        "--since: durations and RFC 3339 dates",
        arguments: [
            ("7d", 1_000_000 - 7 * 86_400), ("24h", 1_000_000 - 86_400), ("30m", 1_000_000 - 1_800), ("1970-01-02", 86_400),
            ("1970-01-02T00:00:00Z", 86_400), ("1970-01-02T01:00:00+01:00", 86_400), ("1970-01-02T00:00:00.5Z", 86_400),
            ("99999d", 0),
        ] as [(String, Int64)])
    func since(text: String, expected: Int64) throws {
        #expect(try ReportWindow.since(text, now: 1_000_000) == expected)
    }

    @Test(
        "--since: bad input is a clear error",
        arguments: [
            ("yesterday", "neither a duration nor a date"), ("1970-02-30", "neither a duration nor a date"), ("0s", "empty window"),
            ("1970-01-31T25:00:00Z", "neither"), ("2999-01-01", "in the future"), ("", "neither"),
        ])
    func badSince(text: String, words: String) {
        #expect {
            _ = try ReportWindow.since(text, now: 1_000_000)
        } throws: { e in
            let m = (e as? StoreError)?.message ?? ""
            return m.contains(words) && m.contains("7d, 24h") && m.contains("RFC 3339")
        }
    }
}
