import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

@Suite("The rollout watcher, an hour of watching in milliseconds", .timeLimit(.minutes(3)))
struct WatcherTests {
    static let start: Int64 = 1_767_225_600

    /// The production watcher (its default decider, ``RolloutJudgeDecider``) on a scripted metric
    /// source: 1,000 outcomes a minute per cohort, so 1 % against 1 % passes clearly at the end of an
    /// hour and 20 % is above the 5 % ceiling beyond doubt within 10 s.
    func watcher(
        _ f: RolloutFixture, holder: String = "w1", clock: ManualRolloutClock, source: ScriptedMetricSource, alerts: CollectingAlerts
    ) throws -> RolloutWatcher {
        var c = RolloutWatcher.Configuration(environment: "prod", holderID: holder)
        c.interval = .seconds(10)
        c.leaseTTL = .seconds(30)
        return try RolloutWatcher(
            configuration: c, client: f.client, metricSource: { _ in source }, alerts: alerts, clock: clock, logger: Logger(label: "test"))
    }

    /// Ticks every 10 s of manual time until `done` or `limit` ticks.
    func drive(_ w: RolloutWatcher, _ clock: ManualRolloutClock, limit: Int = 2_000, until done: () async throws -> Bool) async throws -> Int {
        for i in 0..<limit {
            try await w.tick()
            if try await done() { return i }
            clock.advance(by: .seconds(10))
        }
        return limit
    }

    func status(_ f: RolloutFixture) async throws -> RolloutRecord? { try await f.control.store.rollout(flag: "new-checkout") }

    @Test("a healthy rollout advances through every step after each hour and completes; every action is audited")
    func completes() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            let alerts = CollectingAlerts()
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: source, alerts: alerts)
            let ticks = try await drive(w, clock) { try await status(f)?.status == .completed }
            // Three steps of an hour each, at 10 s a tick.
            #expect(ticks >= 3 * 360 && ticks < 3 * 360 + 10)
            let live = try await f.control.store.read()
            #expect(live.overrides["new-checkout"]?.override == .variant("on"))
            #expect(live.pins.isEmpty)
            let actions = try await f.control.store.auditEntries(flag: "new-checkout", limit: 500).map(\.action)
            #expect(actions.filter { $0 == "rollout-advance" }.count == 2)
            #expect(actions.first == "rollout-complete")
            // Holds are sampled: about one a minute, not one a tick.
            let holds = actions.filter { $0 == "rollout-hold" }.count
            #expect(holds >= 150 && holds <= 200)
            #expect(alerts.all.map(\.severity) == [.info])
            // Cohorts: the treatment is the target variant since the step began; at 100% the control
            // is the window of equal length before the rollout.
            let last = source.queries.withLock { $0.suffix(2) }
            #expect(last.first?.cohort == .variant("on"))
            #expect(last.last?.cohort == .all && last.last?.to == Self.start)
            let registry = PrometheusCollectorRegistry()
            let metrics = RolloutWatcher.Metrics(watcher: w, registry: registry)
            metrics.update()
            metrics.update()  // a second update adds nothing new
            let text = registry.emitToString()
            #expect(text.contains("flagpole_rollout_decisions_total{environment=\"prod\",verdict=\"advance\"} 2\n"), "\(text)")
            #expect(text.contains("flagpole_rollouts{environment=\"prod\",state=\"completed\"} 1.0\n"), "\(text)")
            #expect(text.contains("flagpole_watcher_leader{environment=\"prod\"} 1.0\n"), "\(text)")
        }
    }

    @Test("with a holdback the final step compares with it, concurrently, and completing releases it")
    func holdback() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            _ = try await f.start(steps: [100], holdback: 2, now: Self.start)
            let w = try watcher(f, clock: clock, source: source, alerts: CollectingAlerts())
            _ = try await drive(w, clock, limit: 2) { false }
            let last = source.queries.withLock { $0.suffix(2) }
            #expect(last.last?.cohort == .allBut("on") && last.last?.from == last.first?.from && last.last?.to == last.first?.to)
            #expect(try await f.control.store.readRollouts().observations["new-checkout"]?.evidence["controlWindow"]?["cohort"] == "the 2% holdback")
            _ = try await drive(w, clock) { try await status(f)?.status == .completed }
            #expect(try await f.control.store.read().overrides["new-checkout"]?.override == .variant("on"))
        }
    }

    @Test("a shared incident holds, alerts once as a warning, and never reverts; the treatment alone above the ceiling still reverts")
    func sharedIncident() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            // Both cohorts at 20 %: an incident (the scripted source has no minutes: the window is one block).
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.2, control: 0.21))
            let alerts = CollectingAlerts()
            _ = try await f.start(steps: [20, 100], now: Self.start)
            let w = try watcher(f, clock: clock, source: source, alerts: alerts)
            _ = try await drive(w, clock, limit: 30) { false }
            #expect(try await status(f)?.status == .running)
            let observation = try await f.control.store.readRollouts().observations["new-checkout"]
            #expect(observation?.evidence["check"] == "incident")
            #expect(
                observation?.reason.hasPrefix("both cohorts are failing at 21.0% and 20.0%: an incident not caused by this flag; holding") == true)
            #expect(alerts.all.map(\.severity) == [.warning])
            #expect(alerts.all.first?.title == "prod: new-checkout rollout holding through an incident")
            // The control recovers, the treatment does not: the ceiling reverts.
            source.script(ScriptedMetricSource.rate(0.2, control: 0.01))
            _ = try await drive(w, clock, limit: 5) { try await status(f)?.status == .reverted }
            #expect(try await status(f)?.status == .reverted)
            #expect(try await status(f)?.evidence?["check"] == "ceiling")
        }
    }

    @Test("a regression at the second step reverts: exactly the old flag, pinned, audited with evidence, a critical alert")
    func reverts() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            let alerts = CollectingAlerts()
            let before = try await f.control.store.read().effectiveDefinition(of: "new-checkout")
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: source, alerts: alerts)
            _ = try await drive(w, clock) { try await status(f)?.stepIndex == 1 }
            source.script(ScriptedMetricSource.rate(0.2))
            clock.advance(by: .seconds(10))
            let report = try await w.tick()
            #expect(report.actions["new-checkout"] == .revert)
            let record = try #require(try await status(f))
            #expect(record.status == .reverted && record.statusReason?.contains("is above the 5.0% ceiling") == true)
            let live = try await f.control.store.read()
            #expect(live.effectiveDefinition(of: "new-checkout") == before)
            #expect(live.pins["new-checkout"]?.by == "watcher" && live.pins["new-checkout"]?.rollout == record.id)
            let audit = try #require(try await f.control.store.auditEntries(flag: "new-checkout", limit: 1).first)
            #expect(audit.action == "rollout-revert" && audit.details["evidence"]?["treatment"]?["failures"] != nil)
            #expect(alerts.all.last?.severity == .critical && alerts.all.last?.text.contains("--unpin new-checkout") == true)
            // A routine sync keeps the revert.
            _ = try await w.tick()
            #expect(try await f.control.store.read().effectiveDefinition(of: "new-checkout") == before)
        }
    }

    @Test("a dry run: the first step is live; the watcher judges, says once when it would revert, and never writes the flag")
    func dryRun() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.2))
            let alerts = CollectingAlerts()
            let started = try await f.start(dryRun: true, now: Self.start)
            let firstStep = try await f.control.store.read().overrides["new-checkout"]
            #expect(firstStep?.revision == started.overrideRevision)
            let w = try watcher(f, clock: clock, source: source, alerts: alerts)
            _ = try await drive(w, clock, limit: 30) { false }
            let record = try #require(try await status(f))
            #expect(record.status == .running)
            #expect(record.wouldRevert?.hasPrefix("would revert at 00:0") == true)
            #expect(try await f.control.store.read().overrides["new-checkout"] == firstStep)
            #expect(try await f.control.store.read().pins.isEmpty)
            // Healthy now and past the hour: it would advance, and still does not.
            source.script(ScriptedMetricSource.rate(0.01))
            _ = try await drive(w, clock, limit: 400) { false }
            #expect(try await status(f)?.stepIndex == 0)
            #expect(try await f.control.store.readRollouts().observations["new-checkout"]?.reason.hasPrefix("dry run: would advance") == true)
            #expect(try await f.control.store.read().overrides["new-checkout"] == firstStep)
            let actions = try await f.control.store.auditEntries(flag: "new-checkout", limit: 100).map(\.action)
            #expect(actions.filter { $0 == "rollout-would-revert" }.count == 1)
            #expect(!actions.contains("rollout-revert"))
            #expect(alerts.all.count == 1 && alerts.all[0].severity == .warning)
        }
    }

    @Test("a person's change meanwhile stops the rollout and is left alone")
    func humanChange() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let alerts = CollectingAlerts()
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: ScriptedMetricSource(ScriptedMetricSource.rate(0.2)), alerts: alerts)
            let outcome = try await f.control.apply(.set(variant: "off"), flag: "new-checkout", actor: "bob@host", reason: "panic")
            let report = try await w.tick()
            #expect(report.actions["new-checkout"] == .stop)
            let record = try #require(try await status(f))
            #expect(record.status == .stopped && record.statusReason?.contains("changed by bob@host at revision \(outcome.revision!)") == true)
            let live = try await f.control.store.read()
            #expect(live.overrides["new-checkout"]?.override == .variant("off") && live.pins.isEmpty)
            #expect(alerts.all.first?.severity == .warning)
            #expect(alerts.all.first?.text.contains("changed by bob@host") == true && alerts.all.first?.text.contains("Nothing was reverted") == true)
            // Cleared instead of set: the audit names who.
            _ = try await f.control.apply(.clear(unpin: false), flag: "new-checkout", actor: "bob", reason: nil)
            _ = try await f.start(now: Self.start + 100)
            let cleared = try await f.control.apply(.clear(unpin: false), flag: "new-checkout", actor: "carol@host", reason: nil)
            _ = try await w.tick()
            #expect(try await status(f)?.statusReason?.contains("changed by carol@host at revision \(cleared.revision!)") == true)
        }
    }

    @Test("two watchers: only the lease holder acts; when it dies the other takes over and finishes the rollout")
    func twoWatchersAndResume() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            let alerts = CollectingAlerts()
            _ = try await f.start(now: Self.start)
            let a = try watcher(f, holder: "A", clock: clock, source: source, alerts: alerts)
            let b = try watcher(f, holder: "B", clock: clock, source: source, alerts: alerts)
            var leaders: Set<String> = []
            var bothOrNeither = 0, actedA = 0, actedB = 0
            for _ in 0..<400 {
                let ra = try await a.tick(), rb = try await b.tick()
                #expect(ra.isLeader != rb.isLeader)
                if ra.isLeader == rb.isLeader { bothOrNeither += 1 }
                if ra.isLeader { leaders.insert("A") }
                if rb.isLeader { leaders.insert("B") }
                if !ra.actions.isEmpty { actedA += 1 }
                if !rb.actions.isEmpty { actedB += 1 }
                clock.advance(by: .seconds(10))
            }
            #expect(leaders == ["A"])
            #expect(actedB == 0)
            let mid = try #require(try await status(f))
            #expect(mid.stepIndex == 1)
            let advances = try await f.control.store.auditEntries(flag: "new-checkout", limit: 500).filter { $0.action == "rollout-advance" }.count
            #expect(advances == 1)
            let observers = Set(try await f.control.store.readRollouts().observations.values.map(\.watcher))
            #expect(observers == ["A"])
            FaultTable.record(
                fault: "two watchers on one environment",
                checked: "exactly one holds the lease and acts at every tick; the step advances once",
                passed: bothOrNeither == 0 && leaders == ["A"] && actedB == 0 && advances == 1,
                figure: "400 ticks each: A acted \(actedA), B \(actedB); \(bothOrNeither) ticks with two or no leaders; \(advances) advance audited")
            // A is killed: B takes over once the lease expires, and resumes where A was.
            var report = try await b.tick()
            #expect(!report.isLeader && report.leaseHolder == "A")
            clock.advance(by: .seconds(31))
            report = try await b.tick()
            #expect(report.isLeader)
            _ = try await drive(b, clock) { try await status(f)?.status == .completed }
            let done = try #require(try await status(f))
            #expect(done.status == .completed && done.decisions["advance"] == 2)
        }
    }

    @Test(
        "a watcher killed mid-rollout and restarted resumes where it was; a regression is reverted exactly once, even after it dies right after the revert"
    )
    func killedAndRestarted() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            let alerts = CollectingAlerts()
            let before = try await f.control.store.read().effectiveDefinition(of: "new-checkout")
            _ = try await f.start(now: Self.start)
            var w: RolloutWatcher? = try watcher(f, holder: "A", clock: clock, source: source, alerts: alerts)
            _ = try await drive(w!, clock) { try await status(f)?.stepIndex == 1 }
            // Killed: no graceful shutdown, its lease stays until it expires; its in-memory state is gone.
            w = nil
            clock.advance(by: .seconds(5))
            // Restarted (same holder id, as a restarted daemon has): it resumes at step 2, not from the start.
            let restartedAt = clock.nowMilliseconds()
            let restarted = try watcher(f, holder: "A", clock: clock, source: source, alerts: alerts)
            let report = try await restarted.tick()
            #expect(report.isLeader && report.actions["new-checkout"] == .hold)
            let resumed = try #require(try await status(f))
            #expect(resumed.status == .running && resumed.stepIndex == 1)
            // A regression at the resumed step: one revert. Then it dies again right after the revert,
            // before anything else happens, and a fresh one (and a second watcher) tick on.
            source.script(ScriptedMetricSource.rate(0.2))
            var reverted: Int64 = 0
            _ = try await drive(restarted, clock, limit: 20) {
                let done = try await status(f)?.status == .reverted
                if done { reverted = clock.nowMilliseconds() }
                return done
            }
            let again = try watcher(f, holder: "A", clock: clock, source: source, alerts: alerts)
            let other = try watcher(f, holder: "B", clock: clock, source: source, alerts: alerts)
            for _ in 0..<40 {
                _ = try await again.tick()
                _ = try await other.tick()
                clock.advance(by: .seconds(10))
            }
            let audit = try await f.control.store.auditEntries(flag: "new-checkout", limit: 1000)
            let reverts = audit.filter { $0.action == "rollout-revert" }.count
            let advances = audit.filter { $0.action == "rollout-advance" }.count
            #expect(reverts == 1)
            #expect(advances == 1)
            #expect(audit.filter { $0.action == "rollout-start" }.count == 1)
            #expect(try await status(f)?.status == .reverted)
            #expect(try await f.control.store.read().effectiveDefinition(of: "new-checkout") == before)
            #expect(alerts.all.filter { $0.severity == .critical }.count == 1)
            FaultTable.record(
                fault: "a watcher killed mid-rollout (step 2 of 3) and restarted",
                checked: "it resumes at the same step; after a revert and another restart (plus a second watcher) the audit has exactly one revert",
                passed: resumed.stepIndex == 1 && reverts == 1 && advances == 1,
                figure:
                    "resumed at step \(resumed.stepIndex + 1); reverted \((reverted - restartedAt) / 1000) s of manual time after the restart; \(reverts) revert, \(advances) advance audited after 80 more ticks"
            )
        }
    }

    /// A metric source that lets a person run `flagctl set` while the watcher is judging: the
    /// watcher has read the flag and is about to write its revert when the person's change lands.
    final class RacingMetricSource: RolloutMetricSource {
        let name = "racing"
        let person: @Sendable () async throws -> Int64?
        let raced = Mutex<Int64?>(nil)
        let ran = Mutex(false)

        init(person: @escaping @Sendable () async throws -> Int64?) { self.person = person }

        func counts(_ query: CohortQuery) async throws -> CohortCounts {
            if query.role == "control",
                !ran.withLock({
                    let r = $0; $0 = true; return r
                })
            {
                let revision = try await person()
                raced.withLock { $0 = revision }
            }
            return ScriptedMetricSource.rate(0.2)(query)
        }
    }

    @Test("a revert racing a person's flagctl set: the person wins, the watcher writes nothing over it, and an alert says so")
    func revertRacesPerson() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let alerts = CollectingAlerts()
            _ = try await f.start(now: Self.start)
            let control = f.control
            let source = RacingMetricSource {
                try await control.apply(.set(variant: "off"), flag: "new-checkout", actor: "bob@host", reason: "panic").revision
            }
            var c = RolloutWatcher.Configuration(environment: "prod", holderID: "w1")
            c.interval = .seconds(10)
            let w = try RolloutWatcher(
                configuration: c, client: f.client, metricSource: { _ in source }, alerts: alerts, clock: clock, logger: Logger(label: "test"))
            // A minute of a 20% error rate: the watcher reads the flag, judges "revert", and meanwhile bob sets it.
            clock.advance(by: .seconds(60))
            let started = ContinuousClock.now
            let report = try await w.tick()
            let elapsed = started.duration(to: .now)
            let personRevision = try #require(source.raced.withLock { $0 })
            #expect(report.actions["new-checkout"] == .stop)
            let live = try await f.control.store.read()
            #expect(live.overrides["new-checkout"]?.override == .variant("off") && live.overrides["new-checkout"]?.actor == "bob@host")
            #expect(live.pins.isEmpty)
            let record = try #require(try await status(f))
            #expect(record.status == .stopped && record.statusReason?.contains("changed by bob@host at revision \(personRevision)") == true)
            let actions = try await f.control.store.auditEntries(flag: "new-checkout", limit: 100).map(\.action)
            #expect(!actions.contains("rollout-revert"))
            #expect(actions.filter { $0 == "rollout-stop" }.count == 1)
            let warnings = alerts.all.filter { $0.severity == .warning && $0.text.contains("bob@host") }
            #expect(warnings.count == 1 && alerts.all.filter { $0.severity == .critical }.isEmpty)
            FaultTable.record(
                fault: "a revert racing a person's flagctl set (the set lands while the watcher judges)",
                checked: "the person's value stays, no revert or pin is written, the rollout stops, a warning alert names the person",
                passed: live.overrides["new-checkout"]?.override == .variant("off") && !actions.contains("rollout-revert") && warnings.count == 1,
                figure:
                    "person's set at revision \(personRevision); watcher stopped at revision \(live.revision) in one tick (\(FaultTable.ms(elapsed))); 0 reverts, \(warnings.count) warning"
            )
        }
    }

    @Test("a paused rollout is watched but never advanced or reverted")
    func paused() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.2))
            _ = try await f.start(now: Self.start)
            _ = try await f.control.driveRollout(.pause, flag: "new-checkout", actor: "ann", reason: nil, now: Self.start)
            let w = try watcher(f, clock: clock, source: source, alerts: CollectingAlerts())
            _ = try await drive(w, clock, limit: 400) { false }
            #expect(try await status(f)?.status == .paused)
            let obs = try await f.control.store.readRollouts().observations["new-checkout"]
            #expect(obs?.reason.hasPrefix("paused") == true)
        }
    }

    @Test("a failing metric source means hold, never pass")
    func sourceFailure() async throws {
        struct Down: Error {}
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource { _ in throw Down() }
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: source, alerts: CollectingAlerts())
            _ = try await drive(w, clock, limit: 400) { false }
            let r = try #require(try await status(f))
            #expect(r.status == .running && r.stepIndex == 0)
        }
    }

    @Test("run() ticks on the clock and, on graceful shutdown, finishes and gives the lease up")
    func runAndShutdown() async throws {
        try await RolloutFixture.with { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: ScriptedMetricSource(ScriptedMetricSource.rate(0.01)), alerts: CollectingAlerts())
            let group = ServiceGroup(services: [w], gracefulShutdownSignals: [], cancellationSignals: [], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await waitUntil("the first tick") { clock.sleeperCount == 1 }
                clock.advance(by: .seconds(10))
                try await waitUntil("the second tick") {
                    try await f.control.store.readRollouts().observations["new-checkout"]?.at == Self.start + 10
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let lease = try #require(try await f.control.store.readRollouts().lease)
            #expect(lease.holder == "w1" && !lease.isLive(atMilliseconds: clock.nowMilliseconds()))
        }
    }

    @Test("the watcher needs no more than the writer ACL user (flagctl's) may do: lease, observations, revert")
    func leastPrivilege() async throws {
        try await RolloutFixture.with { f in
            let words = AccessRules.setUserArguments(user: "flagctl", password: "pw-writer", rules: AccessRules.writer)
            _ = try await f.client.send(RedisCommand(words.map { RedisArgument($0) }))
            let writer = RedisClient(configuration: try RedisConfiguration(url: "redis://flagctl:pw-writer@127.0.0.1:\(f.server.port)"))
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.2))
            _ = try await f.start(now: Self.start)
            let w = try RolloutWatcher(
                configuration: .init(environment: "prod", holderID: "w"), client: writer, metricSource: { _ in source },
                alerts: CollectingAlerts(), clock: clock, logger: Logger(label: "test"))
            #expect(try await w.tick().actions["new-checkout"] == .hold)
            clock.advance(by: .seconds(60))
            #expect(try await w.tick().actions["new-checkout"] == .revert)
            #expect(try await status(f)?.status == .reverted)
        }
    }

    @Test("with the standard metric sources the watcher reads the client library's outcome counters in Redis")
    func builtinCounters() async throws {
        try await RolloutFixture.with { f in
            let now = Int64(Date().timeIntervalSince1970)
            let clock = ManualRolloutClock(startMilliseconds: now * 1000)
            _ = try await f.start(steps: [50, 100], now: now - 600)
            // What the apps' clients flushed over the last ten minutes: `on` fails a fifth of the time.
            var counts: [OutcomeBucketWriter.Bucket: OutcomeBucketWriter.Counts] = [:]
            for minute in (StoreLayout.unixMinute(now - 600)...StoreLayout.unixMinute(now)) {
                counts[.init(flag: "new-checkout", minute: minute, variant: "on")] = .init(ok: 80, err: 20)
                counts[.init(flag: "new-checkout", minute: minute, variant: "off")] = .init(ok: 99, err: 1)
            }
            try await OutcomeBucketWriter(client: f.client, layout: f.control.store.layout).flush(counts)
            let w = try RolloutWatcher(
                configuration: .init(environment: "prod", holderID: "w"), client: f.client,
                metricSource: RolloutWatcher.standardMetricSources(environment: "prod", client: f.client),
                alerts: CollectingAlerts(), clock: clock, logger: Logger(label: "test"))
            let report = try await w.tick()
            #expect(report.actions["new-checkout"] == .revert)
            let record = try #require(try await status(f))
            #expect(record.status == .reverted)
            #expect(record.evidence?["source"] == "builtin")
        }
    }

    @Test(
        "the cohorts' windows are aligned to the counters' minutes: the step's first minute counts whole, and at 100 % the control ends before the minute the rollout began in"
    )
    func minuteAlignedWindows() async throws {
        try await RolloutFixture.with { f in
            // The rollout goes straight to 100 % 40 s into minute m. Before it, `off` failed 1 % of
            // the time; after it, `on` fails half the time. Minute m holds both, as the clients wrote it.
            let m = Self.start / 60 + 10
            let startedAt = m * 60 + 40
            let writer = OutcomeBucketWriter(client: f.client, layout: f.control.store.layout)
            typealias B = OutcomeBucketWriter.Bucket
            try await writer.flush([
                B(flag: "new-checkout", minute: m - 2, variant: "off"): .init(ok: 990, err: 10),
                B(flag: "new-checkout", minute: m - 1, variant: "off"): .init(ok: 990, err: 10),
                B(flag: "new-checkout", minute: m, variant: "off"): .init(ok: 594, err: 6),
                B(flag: "new-checkout", minute: m, variant: "on"): .init(ok: 100, err: 100),
                B(flag: "new-checkout", minute: m + 1, variant: "on"): .init(ok: 50, err: 50),
            ])
            _ = try await f.start(steps: [100], now: startedAt)
            let clock = ManualRolloutClock(startMilliseconds: (m * 60 + 70) * 1000)
            let w = try RolloutWatcher(
                configuration: .init(environment: "prod", holderID: "w"), client: f.client,
                metricSource: RolloutWatcher.standardMetricSources(environment: "prod", client: f.client, now: { clock.nowSeconds() }),
                alerts: CollectingAlerts(), clock: clock, logger: Logger(label: "test"))
            _ = try await w.tick()
            let look = try #require(try await f.control.store.readRollouts().observations["new-checkout"])
            // Every `on` outcome since the rollout began; a cut at 40 s into minute m kept a third of that minute's.
            #expect(look.treatment?.successes == 150 && look.treatment?.failures == 150)
            // The control is the 70 s before minute m: all of m-1 and the last 10 s of m-2, only `off`
            // (cut at the rollout's start it took half of minute m, `on`'s failures included: 15 % errors).
            #expect(look.evidence["controlWindow"]?["to"] == .int(m * 60))
            #expect(look.evidence["controlWindow"]?["from"] == .int(m * 60 - 70))
            let control = try #require(look.control)
            #expect(abs(control.successes - (990 + 990.0 / 6)) < 1e-9 && abs(control.failures - (10 + 10.0 / 6)) < 1e-9)
        }
    }
}
