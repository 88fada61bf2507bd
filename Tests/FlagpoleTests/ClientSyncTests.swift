import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@testable import Flagpole

@Suite("The client's sync loop against a real Redis", .timeLimit(.minutes(1)))
struct ClientSyncTests {
    @Test("STALE is set within the freshness bound while a full read hangs on Redis, and cleared after")
    func staleWhileReadHangs() async throws {
        try await RedisServer.withServer { server async throws in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            var configuration = fx.configuration()
            configuration.freshnessBound = .milliseconds(300)
            let client = FlagpoleClient(configuration: configuration)
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                let revision = try #require(client.freshness.revision)
                // A revision gap makes the client read everything; the read then waits 1.5 s on a
                // paused server (the event is published just before the pause).
                let start = ContinuousClock.now
                _ = try await fx.admin.pipeline([
                    [
                        "PUBLISH", RedisArgument(fx.layout.changes),
                        RedisArgument(#"{"revision":\#(revision + 5),"previousRevision":\#(revision + 4),"changed":[],"removed":[]}"#),
                    ],
                    ["CLIENT", "PAUSE", "1500", "ALL"],
                ])
                try await waitUntil("STALE while the read waits", timeout: .seconds(1.2), interval: .milliseconds(10)) {
                    client.freshness.isStale
                }
                let elapsed = start.duration(to: .now)
                #expect(elapsed < .milliseconds(300) + .milliseconds(450), "STALE after \(elapsed), bound 300 ms")
                #expect(!client.freshness.isInSync)
                #expect(client.boolDetails("new-checkout", default: true).reason == .stale)
                try await waitUntil("in sync again once Redis answers") { client.freshness.isInSync && !client.freshness.isStale }
                #expect(client.freshness.revision == revision)
            }
        }
    }

    @Test("the disk snapshot is written on the client's file thread, not on Swift's cooperative pool")
    func snapshotOffThePool() async throws {
        try await RedisServer.withServer { server async throws in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            var configuration = fx.configuration()
            let path = fx.root.appendingPathComponent("state/snapshot.json").path
            configuration.snapshotPath = path
            let client = FlagpoleClient(configuration: configuration)
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                try await waitUntil("the snapshot written") { FileManager.default.fileExists(atPath: path) }
                try await waitUntil("the writer to note its thread") { client.snapshotWrittenOnFileThread.load(ordering: .relaxed) != 0 }
                #expect(client.snapshotWrittenOnFileThread.load(ordering: .relaxed) == 1)
            }
        }
    }

    @Test("run() refuses Redis settings that cannot work, saying which")
    func invalidRedisSettings() async throws {
        var redis = try RedisConfiguration(url: "redis://127.0.0.1:1")
        redis.commandTimeout = .zero
        var configuration = FlagpoleClient.Configuration(redis: redis, environment: "prod", application: "tests")
        configuration.snapshotPath = nil
        let client = FlagpoleClient(configuration: configuration)
        let error = await #expect(throws: FlagpoleClientError.self) { try await client.run() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("commandTimeout") == true)
    }
}
