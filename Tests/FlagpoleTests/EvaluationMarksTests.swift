import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Testing

@testable import Flagpole

/// Every evaluation that finds a flag marks it; the heartbeat writes the marked flags to
/// `flagpole:{ENV}:evaluated` (what `flagctl list --stale` reads), and nothing else.
@Suite("Evaluation marks: the heartbeat reports which flags were evaluated", .timeLimit(.minutes(2)))
struct EvaluationMarksTests {
    /// A client with the heartbeat on that serves `document` without running (no Redis).
    static func offlineClient(_ document: String) throws -> FlagpoleClient {
        var configuration = FlagpoleClient.Configuration(
            redis: RedisConfiguration(endpoint: .unix(path: "/nonexistent/flagpole-marks.sock")), environment: "prod", application: "marks")
        configuration.snapshotPath = nil
        let client = FlagpoleClient(configuration: configuration)
        client.serve(document: try JSONParser.parse(document), algorithm: .v3)
        return client
    }

    @Test("keys, handles, details, hooks and OFREP mark; a missing flag and an unevaluated one do not; taking clears")
    func marks() throws {
        let client = try Self.offlineClient(baseFlags)
        #expect(client.takeEvaluatedFlags().isEmpty)
        _ = client.bool("new-checkout", default: false)
        _ = client.bool("no-such-flag", default: false)
        _ = client.flag("limit", default: 0).value()
        _ = client.flag("ratio", default: 0.0).details()
        _ = client.stringDetails("banner", default: "", context: .empty, hooks: [NoOpHook()])
        #expect(client.takeEvaluatedFlags() == ["banner", "limit", "new-checkout", "ratio"])
        #expect(client.takeEvaluatedFlags().isEmpty, "taking clears the marks")
        // With a client hook, the handle's details and the key's value go through the hooked path.
        client.addHook(NoOpHook())
        _ = client.flag("theme", default: JSONValue.object([:])).details()
        _ = client.integer("limit", default: 0)
        _ = client.evaluate("new-checkout", isUse: true)
        _ = client.evaluate("ratio")
        #expect(client.takeEvaluatedFlags() == ["limit", "new-checkout", "theme"], "OFREP marks; a look (the console's) does not")
        _ = client.evaluateAll()
        #expect(client.takeEvaluatedFlags() == client.flagKeys, "a bulk evaluation hands out, and marks, every flag")
    }

    @Test("a flag evaluated in a snapshot that is then replaced is still reported, once")
    func replacedSnapshot() throws {
        let client = try Self.offlineClient(baseFlags)
        _ = client.double("ratio", default: 0)
        // A new snapshot (a flag removed, another changed): the updater keeps the old marks.
        client.serve(
            document: try JSONParser.parse(#"{"flags": {"ratio": {"state": "DISABLED", "variants": {"a": 1.0}, "defaultVariant": "a"}}}"#),
            algorithm: .v3)
        #expect(client.takeEvaluatedFlags() == ["ratio"])
        #expect(client.takeEvaluatedFlags().isEmpty)
    }

    @Test("an evaluation marks only its own snapshot's flag, by position, without touching the others")
    func positions() throws {
        let client = try Self.offlineClient(baseFlags)
        let snapshot = client.snapshot
        _ = client.string("banner", default: "")
        let banner = try #require(snapshot.flags.position(of: "banner"))
        for key in snapshot.flags.flagKeys {
            let position = try #require(snapshot.flags.position(of: key))
            #expect(snapshot.marks.isMarked(position) == (position == banner), "\(key)")
        }
        snapshot.marks.mark(-1)
        snapshot.marks.mark(snapshot.marks.count)
        #expect(snapshot.marks.take() == [banner])
    }

    @Test("the heartbeat writes flags evaluated by key and by handle to the evaluated hash, as the app ACL user; others are not written")
    func heartbeatWritesEvaluated() async throws {
        try await RedisServer.withServer { server in
            let admin = RedisClient(configuration: server.configuration)
            let rules = try #require(AccessRules.rules(for: .app, environment: "prod"))
            _ = try await admin.send(
                RedisCommand(AccessRules.setUserArguments(user: "app", password: "pw-app", rules: rules).map { RedisArgument($0) }))
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let logs = LogCapture()
            var configuration = fx.configuration()
            configuration.redis = try RedisConfiguration(url: "redis://app:pw-app@127.0.0.1:\(server.port)")
            configuration.redis.backoff = server.configuration.backoff
            let client = FlagpoleClient(configuration: configuration, logger: logs.logger)
            let before = Int64(Date().timeIntervalSince1970)
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                let handle = client.flag("limit", default: 0)
                _ = client.bool("new-checkout", default: false)
                _ = handle.value()
                _ = client.bool("missing-flag", default: false)
                try await waitUntil("the heartbeat writes both evaluated flags") {
                    let stored = try await fx.control.store.evaluationTimes()
                    return stored["new-checkout"] != nil && stored["limit"] != nil
                }
                // A change replaces the snapshot; a flag evaluated just before it is reported too.
                _ = client.string("banner", default: "")
                _ = try await fx.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: nil)
                try await waitUntil("the flag evaluated before the update is written") {
                    try await fx.control.store.evaluationTimes()["banner"] != nil
                }
            }
            let after = Int64(Date().timeIntervalSince1970)
            let stored = try await fx.control.store.evaluationTimes()
            #expect(Set(stored.keys) == ["new-checkout", "limit", "banner"], "ratio, theme and missing-flag were never evaluated")
            for (flag, value) in stored {
                let seconds = try #require(StoreLayout.parseEvaluationTime(value, now: after), "\(flag): \(value)")
                #expect((before...after).contains(seconds), "\(flag): \(seconds)")
            }
            #expect(!logs.contains("refused"), "the app user may HSET the evaluated hash")
        }
    }

    @Test("more than 1,000 evaluated flags are written in commands of at most 1,000 fields")
    func chunks() throws {
        let layout = try StoreLayout(environment: "prod")
        let flags = (0..<2_345).map { "f\($0)" }
        let commands = Reporter.evaluatedCommands(flags, at: 1_800_000_000, layout: layout)
        #expect(commands.map { ($0.arguments.count - 2) / 2 } == [1000, 1000, 345])
        #expect(commands.allSatisfy { $0.arguments[0] == "HSET" && $0.arguments[1] == RedisArgument(layout.evaluated) })
        #expect(commands.flatMap { $0.arguments.dropFirst(2) }.count == 2 * flags.count)
        #expect(Reporter.evaluatedCommands([], at: 1, layout: layout).isEmpty)
    }
}

/// A hook that does nothing: evaluations take the hooked path.
private struct NoOpHook: FlagHook {}
