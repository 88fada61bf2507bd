import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

// The Flagpole client module is not a dependency of this test target (see Package.swift), so the
// "client follows" check is a separate `redis-sentinel://` reader — its own RedisClient and
// FlagStore, connected to the old primary before the failover — reading the revision and the flag.

@Suite("Fault suite: a Sentinel failover during a rollout", .timeLimit(.minutes(2)))
struct SentinelRolloutFaultTests {
    static let start: Int64 = 1_767_225_600

    @Test("a Sentinel failover during a rollout: the watcher's next decision is written and audited once on the new primary, and readers follow")
    func failoverDuringRollout() async throws {
        try await RedisSentinelSetup.withSetup { setup in
            // The environment, synced through the redis-sentinel:// URL from a folder of flag files.
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-sentinel-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            try JSONValue.object(["flags": ["new-checkout": RolloutFixture.flag]]).jsonString
                .write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            let client = RedisClient(configuration: setup.configuration)
            let control = try EnvironmentControl(environment: "prod", client: client, directory: FlagDirectory(root: root.path))
            guard case .applied = try await control.sync(.init()) else {
                Issue.record("the sync through the Sentinel URL was not applied")
                return
            }
            let before = try await control.store.read().effectiveDefinition(of: "new-checkout")

            // A rollout, and a watcher on a manual clock holding its first step.
            var request = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
            request.steps = [10, 50, 100]
            request.actor = "ann@host"
            request.now = Self.start
            let started = try await control.startRollout(request)
            let clock = ManualRolloutClock(startMilliseconds: Self.start * 1000)
            let source = ScriptedMetricSource(ScriptedMetricSource.rate(0.01))
            let alerts = CollectingAlerts()
            var config = RolloutWatcher.Configuration(environment: "prod", holderID: "w1")
            config.interval = .seconds(10)
            config.leaseTTL = .seconds(30)
            let watcher = try RolloutWatcher(
                configuration: config, client: client, metricSource: { _ in source }, alerts: alerts,
                clock: clock, logger: Logger(label: "test"))
            for _ in 0..<3 {
                #expect(try await watcher.tick().actions["new-checkout"] == .hold)
                clock.advance(by: .seconds(10))
            }

            // A reader that follows through the Sentinel URL, on the old primary for now.
            let reader = try FlagStore(client: RedisClient(configuration: setup.configuration), environment: "prod")
            let revisionBefore = try await reader.revision()
            #expect(revisionBefore == started.revision)

            // Everything so far is acknowledged by the replica; then the Sentinel fails over.
            #expect(try await client.send("WAIT", "1", "2000").integer == 1)
            let oldPrimary = try setup.primary()
            let failoverStarted = ContinuousClock.now
            let newPrimary = try await setup.failover()
            let failedOver = ContinuousClock.now
            #expect(newPrimary !== oldPrimary)

            // A regression: the watcher keeps ticking (through whatever the failover throws at it) until it decides.
            source.script(ScriptedMetricSource.rate(0.2))
            var decision: RolloutStateMachine.Outcome?
            var tickErrors = 0
            let passErrorsBefore = watcher.snapshot.tickErrors
            try await waitUntil("the watcher decides on the new primary", timeout: .seconds(15), interval: .milliseconds(20)) {
                do {
                    decision = try await watcher.tick().actions["new-checkout"]
                } catch {
                    tickErrors += 1
                }
                if decision == nil { clock.advance(by: .seconds(1)) }
                return decision != nil && decision != .hold
            }
            let decided = ContinuousClock.now
            let failedPasses = watcher.snapshot.tickErrors - passErrorsBefore - tickErrors
            #expect(decision == .revert)
            let decidedOnPort = (try? await client.send("CONFIG", "GET", "port").array?.last?.string).flatMap { $0 } ?? "?"

            // The old primary is a replica of the new one once the Sentinel reconfigures it: from then on,
            // whatever it took after the promotion is gone. Look at the new primary itself.
            func role(_ server: RedisServer) -> String? {
                (try? RedisConnection(configuration: server.configuration).send(["ROLE"]).array?.first?.string).flatMap { $0 }
            }
            try await waitUntil("the Sentinel turns the old primary into a replica", timeout: .seconds(20), interval: .milliseconds(50)) {
                role(oldPrimary) == "slave"
            }
            let demoted = ContinuousClock.now
            let onNewPrimary = try FlagStore(client: RedisClient(configuration: newPrimary.configuration), environment: "prod")
            let audit = try await onNewPrimary.auditEntries(flag: "new-checkout", limit: 100)
            let reverts = audit.filter { $0.action == "rollout-revert" }
            let newPrimaryRevision = try await onNewPrimary.revision()
            let record = try #require(try await onNewPrimary.rollout(flag: "new-checkout"))
            #expect(record.id == started.id)
            #expect(audit.filter { $0.action == "rollout-start" }.count == 1)
            let decisionKept = reverts.count == 1 && record.status == .reverted && newPrimaryRevision == reverts.first?.revision
            // `get-master-addr-by-name` names the promoted replica before the Sentinel publishes +switch-master, and the
            // old primary stays a writable primary until the Sentinel reconfigures it (~10 s here): the watcher confirms
            // the primary with the Sentinels before it acts (RedisClient.confirmPrimary), so the revert is on the new one.
            #expect(
                decidedOnPort == "\(newPrimary.port)",
                "the watcher wrote its decision through port \(decidedOnPort), not the new primary \(newPrimary.port)")
            #expect(reverts.count == 1, "the revert is not on the new primary exactly once (the watcher wrote it through port \(decidedOnPort))")
            #expect(record.status == .reverted)
            #expect(newPrimaryRevision == reverts.first?.revision)

            // Readers through the Sentinel URL follow to the new primary's revision.
            var readerRevision: Int64 = -1
            try await waitUntil("the reader follows to the new primary's revision", timeout: .seconds(10)) {
                readerRevision = (try? await reader.revision()) ?? -1
                return readerRevision == newPrimaryRevision
            }
            let followed = ContinuousClock.now
            #expect(try await reader.read().effectiveDefinition(of: "new-checkout") == before)

            // More ticks: no second revert and no second alert.
            for _ in 0..<3 {
                clock.advance(by: .seconds(10))
                _ = try? await watcher.tick()
            }
            let revertsAfter = try await onNewPrimary.auditEntries(flag: "new-checkout", limit: 100).filter { $0.action == "rollout-revert" }.count
            let criticalAlerts = alerts.all.filter { $0.severity == .critical }.count
            #expect(revertsAfter == 1)
            #expect(criticalAlerts == 1)

            FaultTable.record(
                fault: "Sentinel failover during a rollout (SENTINEL FAILOVER, replica promoted)",
                checked:
                    "the watcher's next decision (a revert) is on the new primary, audited exactly once, one alert; redis-sentinel:// readers follow",
                passed: decisionKept && revertsAfter == 1 && criticalAlerts == 1,
                figure:
                    "failover \(FaultTable.ms(failoverStarted.duration(to: failedOver))); revert decided \(FaultTable.ms(failedOver.duration(to: decided))) after it "
                    + "through port \(decidedOnPort) (new primary \(newPrimary.port), old \(oldPrimary.port); \(tickErrors) failed ticks, \(failedPasses) passes not acting while the primary was unconfirmed); "
                    + (decisionKept
                        ? "kept on the new primary"
                        : "LOST: not on the new primary after the old one was demoted (\(FaultTable.ms(failedOver.duration(to: demoted))) after the failover)")
                    + "; reader at revision \(readerRevision) \(FaultTable.ms(failedOver.duration(to: followed))) after the failover; "
                    + "after 3 more ticks \(revertsAfter) revert(s) audited, \(criticalAlerts) critical alert(s)")
        }
    }
}
