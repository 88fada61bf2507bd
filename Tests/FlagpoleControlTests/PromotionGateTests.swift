import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

@Suite("The promotion gate, decided on its own")
struct PromotionGateTests {
    static let definition: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]

    static func record(
        target: String = "on", status: RolloutRecord.Status = .completed, dryRun: Bool = false, before: JSONValue = definition
    ) -> RolloutRecord {
        var r = RolloutRecord(
            id: "checkout-100", flag: "checkout", targetVariant: target, steps: [50, 100], stepIndex: 1, stepStartedAt: 100, watchSeconds: 60,
            status: status, dryRun: dryRun, limits: GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 10),
            before: .init(override: nil, pin: nil, definition: before), startedBy: "ann@host", startedAt: 100)
        if !status.isActive { r.endedAt = 200 }
        if status == .completed { r.decisions["complete"] = 1 }
        if status == .reverted { r.statusReason = "error rate 20.00% above the 5.00% ceiling" }
        return r
    }

    static func input(
        record: RolloutRecord?, source: JSONValue? = definition, target: JSONValue? = definition, variant: String = "on", force: Bool = false,
        requirePassIn: String? = "test"
    ) -> PromotionGate.Input {
        PromotionGate.Input(
            flag: "checkout", variant: variant, environment: "prod", requirePassIn: requirePassIn, sourceRecord: record,
            sourceDefinition: source, targetDefinition: target, force: force)
    }

    @Test("no requirePassIn: no gate, whatever the records say")
    func notRequired() {
        #expect(PromotionGate.decide(Self.input(record: nil, requirePassIn: nil)) == .notRequired)
    }

    @Test("a completed rollout of the same variant with the same value passes, naming it")
    func passes() {
        guard case .passed(let pass) = PromotionGate.decide(Self.input(record: Self.record())) else {
            Issue.record("expected a pass")
            return
        }
        #expect(pass.rolloutID == "checkout-100" && pass.environment == "test" && pass.completedAt == 200 && !pass.promotedByHand)
    }

    @Test(
        "what is missing is named, with the command that gets it",
        arguments: [
            (
                "no record", nil, definition, definition,
                "no rollout of 'checkout' to 'on' completed in test: run: flagctl rollout start checkout --env test --to on"
            ),
            ("aborted", record(status: .aborted), definition, definition, "(checkout-100) was aborted, not completed"),
            (
                "reverted", record(status: .reverted), definition, definition,
                "was reverted (error rate 20.00% above the 5.00% ceiling), not completed"
            ),
            ("stopped", record(status: .stopped), definition, definition, "was stopped"),
            ("running", record(status: .running), definition, definition, "is running at 100%, not completed: wait for it to complete"),
            ("paused", record(status: .paused), definition, definition, "is paused at 100%"),
            ("dry run", record(dryRun: true), definition, definition, "was a dry run, which proves nothing"),
            (
                "other variant", record(target: "off"), definition, definition,
                "went to 'off', not 'on': run: flagctl rollout start checkout --env test --to on"
            ),
            (
                "different value", record(), ["variants": ["on": "blue", "off": "grey"]], ["variants": ["on": "red", "off": "grey"]],
                #"variant 'on' of 'checkout' is "blue" in test but "red" in prod"#
            ),
            ("missing in prod", record(), definition, ["variants": ["off": false]], "is true in test but missing in prod"),
            ("flag not in test", record(), nil, definition, "flag 'checkout' is not in test"),
            ("variant not in test", record(), ["variants": ["off": false]], definition, "has no variant 'on' in test"),
            (
                "changed since the rollout", record(before: ["variants": ["on": "blue"]]), ["variants": ["on": "red"]], ["variants": ["on": "red"]],
                #"is "red" now but was "blue" when rollout checkout-100 completed"#
            ),
        ] as [(String, RolloutRecord?, JSONValue?, JSONValue?, String)])
    func refused(_ name: String, _ record: RolloutRecord?, _ source: JSONValue?, _ target: JSONValue?, _ words: String) {
        let decision = PromotionGate.decide(Self.input(record: record, source: source, target: target))
        guard case .refused(let problem, let env) = decision else {
            Issue.record("\(name): expected a refusal, got \(decision)")
            return
        }
        #expect(env == "test")
        #expect(problem.description.contains(words), "\(name): \(problem)")
        #expect(!decision.allowsStart)
        // --force turns the same refusal into an override, which lets the start through.
        let forced = PromotionGate.decide(Self.input(record: record, source: source, target: target, force: true))
        #expect(forced == .overridden(problem, source: "test") && forced.allowsStart)
        #expect(forced.auditJSON?["overridden"] == true && forced.auditJSON?["missing"] == .string(problem.description))
    }

    @Test("a rollout promoted by hand in test counts as completed, and says so")
    func promotedByHand() {
        var r = Self.record()
        r.decisions = [:]
        guard case .passed(let pass) = PromotionGate.decide(Self.input(record: r)) else {
            Issue.record("expected a pass")
            return
        }
        #expect(pass.promotedByHand)
    }
}

/// Two environments in one real Redis: `test` and `prod`, prod requiring a pass in test.
struct PromotionFixture {
    static let config = """
        version: 1
        environments:
          test: {}
          prod: {requirePassIn: test}
        """
    let test: EnvironmentControl
    let prod: EnvironmentControl
    let client: RedisClient

    static func with(_ body: (PromotionFixture) async throws -> Void) async throws {
        try await RedisServer.withServer { server in
            let root = server.directory.appendingPathComponent("flags-\(UInt32.random(in: 0...UInt32.max))")
            for env in ["test", "prod"] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(env), withIntermediateDirectories: true)
                try #"{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#
                    .write(to: root.appendingPathComponent("\(env)/flags.json"), atomically: true, encoding: .utf8)
            }
            try config.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
            let client = RedisClient(configuration: server.configuration)
            let directory = FlagDirectory(root: root.path)
            let f = PromotionFixture(
                test: try EnvironmentControl(environment: "test", client: client, directory: directory),
                prod: try EnvironmentControl(environment: "prod", client: client, directory: directory), client: client)
            for c in [f.test, f.prod] {
                guard case .applied = try await c.sync(.init()) else { throw StoreError(code: .invalidInput, message: "sync failed") }
            }
            try await body(f)
        }
    }

    func start(
        _ control: EnvironmentControl, _ target: String = "on", force: Bool = false, alerts: (any AlertSink)? = nil
    ) async throws
        -> RolloutRecord
    {
        var r = EnvironmentControl.RolloutStart(flag: "new-checkout", target: target)
        r.steps = [50, 100]
        r.force = force
        r.actor = "ann@host"
        r.reason = "launch"
        return try await control.startRollout(r, alerts: alerts)
    }
}

@Suite("The promotion gate in rollout start, on a real Redis", .timeLimit(.minutes(2)))
struct PromotionGateStartTests {
    @Test("prod refuses until the rollout completed in test; then starts, and the audit names the pass")
    func refusedThenAllowed() async throws {
        try await PromotionFixture.with { f in
            let before = try await f.prod.store.revision()
            await #expect {
                _ = try await f.start(f.prod)
            } throws: { e in
                guard let e = e as? StoreError else { return false }
                return e.code == .promotionGate
                    && e.message.contains("prod requires rollouts to complete in test first")
                    && e.message.contains("run: flagctl rollout start new-checkout --env test --to on") && e.message.contains("--force")
            }
            #expect(try await f.prod.store.revision() == before)
            // Running in test is not enough; an abort is not either.
            _ = try await f.start(f.test)
            await #expect(throws: StoreError.self) { _ = try await f.start(f.prod) }
            _ = try await f.test.driveRollout(.abort, flag: "new-checkout", actor: "ann", reason: nil)
            await #expect {
                _ = try await f.start(f.prod)
            } throws: { e in "\(e)".contains("was aborted") }
            // Completed in test: prod starts.
            _ = try await f.start(f.test)
            let completed = try await f.test.driveRollout(.promote, flag: "new-checkout", actor: "ann", reason: nil)
            let alerts = CollectingAlerts()
            let record = try await f.start(f.prod, alerts: alerts)
            #expect(record.forcedGate == nil && alerts.all.isEmpty)
            let audit = try #require(try await f.prod.store.auditEntries(limit: 1).first)
            #expect(audit.action == "rollout-start" && audit.details["promotionGate"]?["passed"] == true)
            #expect(audit.details["promotionGate"]?["pass"]?["rollout"] == .string(completed.id) && audit.details["forced"] == nil)
        }
    }

    @Test("--force overrides the gate: audited with what was missing, and alerted once written")
    func forced() async throws {
        try await PromotionFixture.with { f in
            let alerts = CollectingAlerts()
            let record = try await f.start(f.prod, force: true, alerts: alerts)
            #expect(record.forcedGate?.contains("no rollout of 'new-checkout' to 'on' completed in test") == true)
            #expect(try await f.prod.store.rollout(flag: "new-checkout")?.forcedGate == record.forcedGate)
            let audit = try #require(try await f.prod.store.auditEntries(limit: 1).first)
            #expect(audit.details["forced"] == true && audit.details["promotionGate"]?["overridden"] == true)
            #expect(audit.details["promotionGate"]?["missing"] == .string(record.forcedGate!))
            let sent = alerts.all
            #expect(sent.count == 1)
            #expect(sent.first?.severity == .warning && sent.first?.title == "prod: new-checkout rollout started with --force")
            #expect(sent.first?.text.contains("Promotion gate overridden: no rollout of 'new-checkout'") == true)
            #expect(sent.first?.text.contains("Forced by ann@host: launch.") == true)
        }
    }

    @Test("a refused forced start alerts nothing; a start in an environment without the gate is not gated")
    func noGate() async throws {
        try await PromotionFixture.with { f in
            let alerts = CollectingAlerts()
            _ = try await f.start(f.test, alerts: alerts)
            #expect(alerts.all.isEmpty)
            let audit = try #require(try await f.test.store.auditEntries(limit: 1).first)
            #expect(audit.details["promotionGate"] == nil)
        }
    }
}

@Suite("A forced start's alert from a short-lived command", .timeLimit(.minutes(1)))
struct OneShotAlertTests {
    @Test("withOneShot waits until the target took the alert; an unset variable is reported, the body still runs")
    func delivers() async throws {
        let server = try await StandInServer.start { _, index in
            index == 0 ? .init(status: .serviceUnavailable) : .init()
        }
        do {
            try await check(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func check(_ server: StandInServer) async throws {
        let targets = [AlertTarget(name: "hook", destination: .webhook(url: .literal(server.url + "/hook")), environments: ["prod"])]
        var configuration = AlertDispatcher.Configuration.oneShot
        configuration.initialBackoff = .milliseconds(10)
        let alert = Alert(severity: .warning, title: "prod: x rollout started with --force", text: "t", environment: "prod", at: 1)
        let (value, report) = try await AlertDispatcher.withOneShot(
            targets: targets, environment: "prod", configuration: configuration, logger: Logger(label: "test")
        ) { sink in
            sink.send(alert)
            return 7
        }
        #expect(value == 7)
        #expect(report.delivered == ["hook"] && report.undelivered.isEmpty && !report.timedOut)
        #expect(server.count == 2, "one 503, retried, then accepted")
        #expect(try JSONParser.parse(server.requests.last!.body)["title"] == "prod: x rollout started with --force")

        let missing = [AlertTarget(name: "chat", destination: .slack(url: .environmentVariable("FLAGPOLE_TEST_UNSET_HOOK")))]
        let (_, second) = try await AlertDispatcher.withOneShot(
            targets: missing, environment: "prod", processEnvironment: [:], logger: Logger(label: "test")
        ) { sink in sink.send(alert) }
        #expect(second.alerts.count == 1)
        #expect("\(second.configurationProblem.map { "\($0)" } ?? "")".contains("FLAGPOLE_TEST_UNSET_HOOK"))

        // An audited alert (a forced start) skips a target that announces prod: the daemon's
        // notification of the audit entry reaches it. The wait ends once the other target took it.
        let audited = Alert(
            severity: .warning, title: "prod: y rollout started with --force", text: "t", environment: "prod", at: 1, auditedAction: "rollout-start")
        let both = targets + [AlertTarget(name: "announcer", destination: .webhook(url: .literal(server.url + "/announce")), notify: ["prod"])]
        let started = ContinuousClock.now
        let (_, third) = try await AlertDispatcher.withOneShot(
            targets: both, environment: "prod", configuration: configuration, deadline: .seconds(20), logger: Logger(label: "test")
        ) { sink in sink.send(audited) }
        #expect(!third.timedOut && ContinuousClock.now - started < .seconds(15), "no wait for a target owed nothing")
        #expect(third.delivered == ["hook"] && third.undelivered.isEmpty && third.announcedByDaemon == ["announcer"])
        #expect(server.count == 3 && !server.requests.contains { $0.path.hasSuffix("/announce") })
    }
}
