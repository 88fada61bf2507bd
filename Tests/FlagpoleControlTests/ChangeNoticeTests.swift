import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Testing

@Suite("Notifications: what each change says")
struct ChangeNoticeTests {
    func notice(
        _ action: String, flags: [String] = ["new-checkout"], reason: String? = nil, details: JSONValue, console: String? = nil
    )
        -> ChangeNotice
    {
        ChangeNotice(
            entry: AuditEntry(id: "5-0", revision: 9, action: action, actor: "ann", reason: reason, at: 100, flags: flags, details: details),
            environment: "prod", consoleURL: console)
    }

    @Test("a sync: counts in the title, each flag's before → after, the git commit; the webhook document has every field")
    func sync() {
        let n = notice(
            "sync", flags: ["a", "b", "c"], reason: "release 42",
            details: [
                "added": ["a"], "changed": ["b"], "removed": ["c"],
                "before": [
                    "b": ["state": "ENABLED", "defaultVariant": "off", "variants": ["on": true, "off": false]], "c": ["defaultVariant": "x"],
                ],
                "after": [
                    "a": ["state": "ENABLED", "defaultVariant": "on"],
                    "b": ["state": "ENABLED", "defaultVariant": "on", "variants": ["on": true, "off": false]],
                ],
                "git": ["commit": "0123456789abcdef0123", "dirty": false],
            ])
        #expect(n.alert.title == "prod: sync (1 added, 1 changed, 1 removed) by ann")
        #expect(n.alert.text.contains("Why: release 42"))
        #expect(n.alert.text.contains("a: not defined → default \"on\""))
        #expect(n.alert.text.contains("b: default \"off\" → default \"on\""))
        #expect(n.alert.text.contains("c: default \"x\" → removed"))
        #expect(n.alert.text.contains("From git commit 0123456789ab."))
        let keys = Set(n.webhook.objectValue?.keys.map { $0 } ?? [])
        #expect(
            keys == [
                "type", "id", "environment", "revision", "action", "actor", "reason", "at", "flags", "severity", "title", "text", "changes", "links",
                "rolloutID", "details",
            ])
        #expect(n.webhook["revision"] == 9 && n.webhook["id"] == "5-0" && n.webhook["type"] == "change")
    }

    @Test("a revert is critical and says how to unpin; links to the console page of each flag, key percent-encoded")
    func revert() {
        let n = notice(
            "rollout-revert", flags: ["new checkout"], reason: "error rate 9% > 5%",
            details: ["rollout": "r1", "target": "on", "percent": 25, "steps": [25, 100]], console: "https://flags.example.com/console")
        #expect(n.alert.severity == .critical)
        #expect(n.alert.title == "prod: new checkout reverted by ann")
        #expect(n.alert.text.contains("flagctl sync --env prod --unpin new checkout"))
        #expect(n.alert.text.contains("Console: https://flags.example.com/console/flags/new%20checkout"))
        #expect(n.webhook["rolloutID"] == "r1")
        #expect(AlertMessage.slack(n.alert)["text"]?.stringValue?.hasPrefix("🚨 prod: new checkout reverted by ann") == true)
    }

    @Test(
        "every action a change writes has its own words",
        arguments: [
            ("enable", "new-checkout enabled"), ("clear", "new-checkout override cleared"), ("restore", "restored revision 3 (flag-set metadata)"),
            ("rollout-advance", "new-checkout rollout advanced 10% → 50%"), ("rollout-complete", "new-checkout rollout completed → \"on\""),
            ("rollout-abort", "new-checkout rollout aborted"), ("rollout-pause", "new-checkout rollout paused at 50%"),
            ("rollout-resume", "new-checkout rollout resumed at 50%"), ("rollout-promote", "new-checkout rollout promoted → \"on\""),
            ("rollout-stop", "new-checkout rollout stopped"), ("rollout-would-revert", "new-checkout dry run would revert"),
        ])
    func actions(action: String, words: String) {
        let n = notice(
            action, details: ["target": "on", "percent": 50, "fromPercent": 10, "toPercent": 50, "restoredRevision": 3, "restored": .null])
        #expect(n.alert.title == "prod: \(words) by ann")
    }

    @Test("a start forced through a freeze window and the promotion gate is a warning naming both; its --force alert defers to the notification")
    func forcedStart() throws {
        let n = notice(
            "rollout-start", reason: "hotfix",
            details: [
                "target": "on", "percent": 10, "steps": [10, 100], "forcedWindows": ["weekend"], "forced": true,
                "promotionGate": [
                    "requirePassIn": "test", "passed": false, "overridden": true, "missing": "no rollout of new-checkout to \"on\" completed in test",
                ],
            ])
        #expect(n.alert.severity == .warning)
        #expect(n.alert.text.contains("Started inside freeze window weekend (forced)."))
        #expect(
            n.alert.text.contains(
                "Promotion gate (requirePassIn: test) overridden with --force: no rollout of new-checkout to \"on\" completed in test."))
        // The CLI's alert for the same start carries the audited action, so a target that
        // announces prod gets the notification above and not the alert as well.
        var record = RolloutRecord(
            id: "new-checkout-100", flag: "new-checkout", targetVariant: "on", steps: [10, 100], stepStartedAt: 100, watchSeconds: 3600,
            limits: GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 10),
            before: .init(override: nil, pin: nil, definition: ["defaultVariant": "off"]), startedBy: "ann", startedAt: 100, reason: "hotfix")
        record.forcedGate = "no rollout of new-checkout to \"on\" completed in test"
        let alert = try #require(EnvironmentControl.forcedStartAlert(record, environment: "prod", at: 100))
        #expect(alert.auditedAction == "rollout-start")
    }

    @Test("clear --unpin says the pin is released")
    func unpin() {
        let n = notice("clear", details: ["before": .null, "after": .null, "unpinned": true])
        #expect(n.alert.title == "prod: new-checkout override cleared and unpinned by ann")
    }
}
