import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

/// The watcher on a real Redis honours the project config's freeze windows: it does not advance a
/// step while one applies (it holds and says until when, in the status and the audit), advances
/// when it ends, and still reverts inside one.
@Suite("The rollout watcher in a freeze window", .timeLimit(.minutes(3)))
struct WatcherFreezeTests {
    /// Thursday 2026-01-01 00:00Z (01:00 in Berlin), the rollout's start.
    static let start: Int64 = 1_767_225_600

    /// Berlin's Thursday 02:00 to 03:00 (01:00Z to 02:00Z): the first step's hour of watching ends inside it.
    static let config = """
        freezeWindows:
          - {name: thursday-deploys, from: "thu 02:00", to: "thu 03:00", timezone: Europe/Berlin, environments: [prod], reason: deploy train}
        """

    func watcher(_ f: RolloutFixture, clock: ManualRolloutClock, source: ScriptedMetricSource) throws -> RolloutWatcher {
        let load = f.control.directory.loadConfig()
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics) (the tz database is needed: scripts/install-deps.sh installs tzdata)")
        var c = RolloutWatcher.Configuration(environment: "prod", holderID: "w1")
        c.interval = .seconds(10)
        c.freezeWindows = load.config.freezeWindows
        return try RolloutWatcher(
            configuration: c, client: f.client, metricSource: { _ in source }, alerts: CollectingAlerts(), clock: clock, logger: Logger(label: "test")
        )
    }

    func drive(_ w: RolloutWatcher, _ clock: ManualRolloutClock, limit: Int = 2_000, until done: () async throws -> Bool) async throws {
        for _ in 0..<limit {
            try await w.tick()
            if try await done() { return }
            clock.advance(by: .seconds(10))
        }
        Issue.record("not done after \(limit) ticks")
    }

    @Test("a step that passed inside the window holds, frozen until its end in Berlin time, then advances")
    func holdsThenAdvances() async throws {
        try await RolloutFixture.with(config: Self.config) { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: source)
            try await drive(w, clock) { try await f.control.store.readRollouts().observations["new-checkout"]?.reason.hasPrefix("frozen") == true }
            let frozenAt = clock.nowSeconds()
            #expect(frozenAt >= Self.start + 3_600 && frozenAt < Self.start + 3_700, "the step passed at the end of its hour")
            let observation = try #require(try await f.control.store.readRollouts().observations["new-checkout"])
            #expect(observation.verdict == .hold)
            #expect(
                observation.reason.hasPrefix(
                    "frozen until Thu 2026-01-01 03:00 CET (thursday-deploys: deploy train); the step passed and would advance"),
                "\(observation.reason)")
            let holds = try await f.control.store.auditEntries(flag: "new-checkout", limit: 50).filter { $0.action == "rollout-hold" }
            #expect(holds.first?.reason?.hasPrefix("frozen until Thu 2026-01-01 03:00 CET") == true, "\(holds.first.map { "\($0)" } ?? "no hold")")
            clock.advance(by: .seconds(10))
            #expect(try await w.tick().actions["new-checkout"] == .frozen)
            try await drive(w, clock) { try await f.control.store.rollout(flag: "new-checkout")?.stepIndex == 1 }
            #expect(clock.nowSeconds() == Self.start + 7_200, "advanced at the first look after 03:00 CET")
        }
    }

    @Test("a regression inside the window reverts")
    func revertsWhenFrozen() async throws {
        try await RolloutFixture.with(config: Self.config) { f in
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            _ = try await f.start(now: Self.start)
            let w = try watcher(f, clock: clock, source: source)
            try await drive(w, clock) { try await f.control.store.readRollouts().observations["new-checkout"]?.reason.hasPrefix("frozen") == true }
            source.script(ScriptedMetricSource.rate(0.2))
            clock.advance(by: .seconds(10))
            #expect(try await w.tick().actions["new-checkout"] == .revert)
            #expect(try await f.control.store.rollout(flag: "new-checkout")?.status == .reverted)
        }
    }
}
