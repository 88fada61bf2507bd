import FlagpoleCore
import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@testable import Flagpole

@Suite("Guard rails: a never-synced environment, snapshot priority, the renamed engine accessors", .timeLimit(.minutes(1)))
struct GuardRailTests {
    @Test("a client of an environment never synced logs one warning naming it, the Redis server and the fix, and says so in freshness until a sync")
    func neverSynced() async throws {
        try await RedisServer.withServer { server async throws in
            let log = LogCapture()
            var configuration = FlagpoleClient.Configuration(redis: server.configuration, environment: "prod", application: "guard-rails")
            configuration.snapshotPath = nil
            configuration.outcomes.isEnabled = false
            configuration.heartbeat.isEnabled = false
            let client = FlagpoleClient(configuration: configuration, logger: log.logger)
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                let f = client.freshness
                #expect(f.source == .redis && f.revision == 0 && f.isNeverSynced)
                #expect(client.boolDetails("new-checkout", default: true).errorCode == .flagNotFound)
                let warning = try #require(log.warnings().first { $0.contains("never synced") }, "\(log.text)")
                #expect(warning.contains("'prod'") && warning.contains(server.configuration.address))
                #expect(warning.contains("flagctl sync --env prod"))

                // A resubscription reads everything again: still one warning.
                _ = try await RedisClient(configuration: server.configuration).send("CLIENT", "KILL", "TYPE", "pubsub")
                try await waitUntil("the client resubscribed and read everything again") {
                    log.entries.withLock { $0.filter { $0.message == "Read everything from Redis" }.count } >= 2
                }
                #expect(log.warnings().filter { $0.contains("never synced") }.count == 1)

                let fx = try await Fixture(server)
                defer { fx.remove() }
                try await waitUntil("the sync reaches the client") { client.freshness.revision == 1 }
                #expect(!client.freshness.isNeverSynced)
                #expect(client.bool("new-checkout", default: true) == false)
            }
        }
    }

    @Test("a synced environment is not reported as never synced")
    func synced() async throws {
        try await RedisServer.withServer { server async throws in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let log = LogCapture()
            let client = FlagpoleClient(configuration: fx.configuration(), logger: log.logger)
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                #expect(client.freshness.source == .redis && client.freshness.revision == 1 && !client.freshness.isNeverSynced)
            }
            #expect(!log.text.contains("never synced"))
        }
    }

    @Test("a fallback snapshot is refused once Redis data is installed, and served only before")
    func fallbackNeverOverRedis() throws {
        var configuration = FlagpoleClient.Configuration(
            redis: RedisConfiguration(endpoint: .unix(path: "/nonexistent/guard.sock")), environment: "prod", application: "guard-rails")
        configuration.snapshotPath = nil
        let client = FlagpoleClient(configuration: configuration)
        func snapshot(_ value: Bool, _ source: FlagpoleClient.Source, revision: Int64) throws -> FlagSnapshot {
            let document = try JSONParser.parse(
                #"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "\#(value ? "on" : "off")"}}}"#)
            return SnapshotBuilder.document(document, algorithm: .v3, source: source, revision: revision, time: 0).0
        }
        // Before Redis answers, the disk snapshot is served ...
        #expect(client.installFallback(try snapshot(true, .disk, revision: 2)))
        #expect(client.freshness.source == .disk && client.bool("f", default: false) == true)
        // ... Redis's data replaces it, and no fallback (a read racing the startup timeout) goes over it.
        client.install(try snapshot(false, .redis, revision: 3))
        #expect(!client.installFallback(try snapshot(true, .disk, revision: 2)))
        #expect(!client.installFallback(try snapshot(true, .files, revision: 0)))
        #expect(client.freshness.source == .redis && client.freshness.revision == 3 && client.bool("f", default: true) == false)
    }

    @Test("once Redis data is applied, no failure, disconnect or timeout asks for the fallback")
    func machineNeverFallsBackAfterRedis() {
        let configuration = ClientSyncStateMachine<ManualClock>.Configuration(
            startupTimeout: .seconds(5), freshnessBound: .seconds(60), revisionCheckInterval: .seconds(30), subscribeGrace: .seconds(1),
            retryDelay: { .milliseconds(100 * $0) })
        func at(_ d: Duration) -> ManualClock.Instant { ManualClock.Instant(offset: d) }
        var m = ClientSyncStateMachine<ManualClock>(configuration: configuration, hasFallback: true, now: at(.zero))
        _ = m.subscribed(now: at(.milliseconds(10)))
        #expect(m.nextWork(now: at(.milliseconds(10))) == .resync)
        #expect(!m.resyncSucceeded(revision: 4, changed: true, now: at(.milliseconds(20))).contains(.serveFallback))
        var actions = m.disconnected(now: at(.seconds(1)))
        actions += m.subscribed(now: at(.seconds(2)))
        #expect(m.nextWork(now: at(.seconds(2))) == .resync)
        actions += m.resyncFailed(now: at(.seconds(3)))
        actions += m.tick(now: at(.seconds(10)))  // past the startup timeout
        actions += m.tick(now: at(.seconds(120)))  // past the freshness bound
        #expect(!actions.contains(.serveFallback), "\(actions)")
        #expect(actions.contains(.markStale(true)))
    }

    @Test("the engine's accessors are named as the client's; the old names still answer the same, deprecated")
    @available(*, deprecated, message: "exercises the deprecated names")
    func engineNames() throws {
        let set = CompiledFlagSet(
            try JSONParser.parse(
                #"{"flags": {"b": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}, "n": {"state": "ENABLED", "variants": {"x": 2.5}, "defaultVariant": "x"}}}"#
            ))
        #expect(set.bool("b", default: false).value == true)
        #expect(set.double("n", default: 0).value == 2.5)
        #expect(set.boolean("b", default: false) == set.bool("b", default: false))
        #expect(set.float("n", default: 0) == set.double("n", default: 0))
    }
}
