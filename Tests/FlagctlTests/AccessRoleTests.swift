import FlagpoleControl
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

/// `flagpole-traffic` sits next to `flagctl` in the build folder.
private var trafficExecutable: String {
    FlagctlProcess.executable.deletingLastPathComponent().appendingPathComponent("flagpole-traffic").path
}

/// Each role of `flagctl acl` under its own Redis user on a real server: it does its whole job
/// and nothing more.
@Suite("Least privilege: app, writer and daemon users per environment", .timeLimit(.minutes(3)))
struct AccessRoleTests {
    /// Creates the user `flagctl acl` prints for `role` in `environment` (nil: every one), with
    /// password `pw-<user>`, by sending the printed line to Redis; returns its URL.
    static func createUser(_ role: String, _ environment: String?, on server: RedisServer) async throws -> String {
        let user = "flagpole-\(role)" + (environment.map { "-\($0)" } ?? "")
        let scope = environment.map { ["--env", $0] } ?? ["--all-environments"]
        let r = try FlagctlProcess.run(["acl", "--role", role, "--password", "pw-\(user)"] + scope)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1, "only the command on standard output: \(r.stdout)")
        #expect(r.stderr.contains("redis://\(user):pw-\(user)@"), "\(r.stderr)")
        let words = Self.redisCliWords(String(try #require(lines.first))).map { RedisArgument($0) }
        _ = try await RedisClient(configuration: server.configuration).send(RedisCommand(words))
        return "redis://\(user):pw-\(user)@127.0.0.1:\(server.port)"
    }

    /// The words of a redis-cli input line: split at spaces, a double-quoted word kept whole.
    static func redisCliWords(_ line: String) -> [String] {
        var words: [String] = []
        var word = ""
        var quoted = false
        for c in line {
            if c == "\"" {
                quoted.toggle()
            } else if c == " " && !quoted {
                if !word.isEmpty { words.append(word) }
                word = ""
            } else {
                word.append(c)
            }
        }
        if !word.isEmpty { words.append(word) }
        return words
    }

    /// A server with `prod` synced by its writer user, and the app and daemon users of `prod`.
    static func withProd(_ body: (RedisServer, URL, _ writer: String, _ app: String, _ daemon: String) async throws -> Void) async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-acl-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            try writeFlags(root, environments: ["prod"])
            let writer = try await createUser("writer", "prod", on: server)
            let app = try await createUser("app", "prod", on: server)
            let daemonUser = try await createUser("daemon", "prod", on: server)
            #expect(try FlagctlProcess.run(["sync", "--env", "prod", "--redis", writer, "--flags", root.path]).status == 0)
            try await body(server, root, writer, app, daemonUser)
        }
    }

    static func writeFlags(_ root: URL, environments: [String]) throws {
        for env in environments {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(env), withIntermediateDirectories: true)
            try """
            flags:
              new-checkout:
                state: ENABLED
                variants: {"on": true, "off": false}
                defaultVariant: "off"
            """.write(to: root.appendingPathComponent("\(env)/flags.yaml"), atomically: true, encoding: .utf8)
        }
    }

    static func isNoPerm(_ error: any Error) -> Bool {
        "\(error)".contains("NOPERM") || (error as? RedisError)?.code == .permissionDenied
    }

    @Test("an app user of test is refused on every key and the channel of prod; only writers and the daemon change a flag")
    func isolation() async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-acl-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            try Self.writeFlags(root, environments: ["test", "prod"])
            let writerAll = try await Self.createUser("writer", nil, on: server)
            let writerTest = try await Self.createUser("writer", "test", on: server)
            let appTest = try await Self.createUser("app", "test", on: server)
            let appProd = try await Self.createUser("app", "prod", on: server)
            let daemonProd = try await Self.createUser("daemon", "prod", on: server)

            // The writer of every environment syncs both; the writer of test may not touch prod.
            for env in ["test", "prod"] {
                let sync = try FlagctlProcess.run(["sync", "--env", env, "--redis", writerAll, "--flags", root.path])
                #expect(sync.status == 0, "\(sync.stderr)")
            }
            let refused = try FlagctlProcess.run(["set", "new-checkout", "on", "--env", "prod", "--redis", writerTest, "--flags", root.path])
            #expect(refused.status == 1 && refused.stderr.contains("NOPERM"), "\(refused.stdout)\(refused.stderr)")
            let allowed = try FlagctlProcess.run(["set", "new-checkout", "on", "--env", "test", "--redis", writerTest, "--flags", root.path])
            #expect(allowed.status == 0, "\(allowed.stderr)")

            // Put a value in every kind of prod key the client and the watcher write.
            let admin = RedisClient(configuration: server.configuration)
            let prod = try StoreLayout(environment: "prod")
            let minute = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            _ = try await admin.send("HSET", prod.outcomes(flag: "new-checkout", minute: minute), "on|ok", "5")
            _ = try await admin.send("HSET", prod.outcomeSummary(minute: minute), "flag:new-checkout", "5")
            _ = try await admin.send("SET", prod.outcomeFlushMarker(instanceID: "i1"), "3")
            _ = try await admin.send("HSET", prod.clients, "i1", "1")
            _ = try await admin.send("SET", prod.client("i1"), "{}")
            _ = try await admin.send("HSET", prod.rollouts, "new-checkout", "{}")
            _ = try await admin.send("SET", prod.watcherLease, "{}")
            _ = try await admin.send("HSET", prod.evaluated, "new-checkout", "1800000000")
            let prodKeys =
                prod.allKeys + [
                    prod.outcomes(flag: "new-checkout", minute: minute), prod.outcomeSummary(minute: minute),
                    prod.outcomeFlushMarker(instanceID: "i1"),
                    prod.clients, prod.client("i1"), prod.evaluated,
                ]

            // The app user of test: every read and write it may run elsewhere is refused on prod.
            let app = RedisClient(configuration: try RedisConfiguration(url: appTest))
            var attempts = 0
            for key in prodKeys {
                let commands: [[String]] = [
                    ["GET", key], ["HGETALL", key], ["HGET", key, "f"], ["HMGET", key, "f"], ["SET", key, "x"], ["HSET", key, "f", "1"],
                    ["HINCRBY", key, "on|err", "1000"], ["EXPIRE", key, "1"], ["DEL", key], ["HDEL", key, "f"],
                ]
                for command in commands {
                    attempts += 1
                    await #expect(
                        performing: { _ = try await app.send(RedisCommand(command.map { RedisArgument($0) })) }, throws: { Self.isNoPerm($0) })
                }
            }
            #expect(attempts == prodKeys.count * 10)
            // Not even through a script: the flush script on prod's keys is refused as a whole.
            let store = try FlagStore(client: app, environment: "prod")
            var forged = OutcomeFlush.Builder(layout: prod)
            forged.add(minute: minute, flag: "new-checkout", variant: "on", counts: OutcomeCounts(failed: 1000), latency: [])
            await #expect(
                performing: { _ = try await store.apply(forged.chunks(instanceID: "x", firstSequence: 1, retention: .seconds(60))[0]) },
                throws: { Self.isNoPerm($0) })
            #expect(try await admin.send("HGET", prod.outcomes(flag: "new-checkout", minute: minute), "on|err").isNull)
            // Nor may it follow prod's changes.
            var events = RedisSubscriber(configuration: try RedisConfiguration(url: appTest)).subscribe(to: [prod.changes]).makeAsyncIterator()
            if case .subscribed = await events.next() { Issue.record("the app user of test subscribed to prod's changes") }

            // The app user of prod reads prod but cannot change a flag, by command or by script.
            let appOfProd = RedisClient(configuration: try RedisConfiguration(url: appProd))
            let asApp = try EnvironmentControl(environment: "prod", client: appOfProd, directory: FlagDirectory(root: root.path))
            #expect(try await asApp.store.read().definitions.count == 1)
            await #expect(
                performing: { _ = try await asApp.apply(.set(variant: "on"), flag: "new-checkout", actor: "app", reason: nil) },
                throws: { Self.isNoPerm($0) })
            for command in [
                ["HSET", prod.flags, "new-checkout", "{}"], ["HSET", prod.overrides, "new-checkout", "{}"], ["SET", prod.revision, "99"],
                ["PUBLISH", prod.changes, "{}"], ["HGETALL", prod.audit], ["HGETALL", prod.rollouts], ["HGETALL", prod.history],
            ] {
                await #expect(
                    "\(command)", performing: { _ = try await appOfProd.send(RedisCommand(command.map { RedisArgument($0) })) },
                    throws: { Self.isNoPerm($0) })
            }
            // Nor retype, delete or expire its own environment's counters and records outside the flush script's commands.
            let ownCounter = prod.outcomes(flag: "new-checkout", minute: minute)
            for command in [
                ["SET", ownCounter, "x"], ["DEL", ownCounter], ["HDEL", ownCounter, "on|ok"], ["SET", prod.clients, "x"],
                ["HINCRBY", prod.client("i1"), "f", "1"], ["SET", prod.outcomeSummary(minute: minute), "x"],
            ] {
                await #expect(
                    "\(command)", performing: { _ = try await appOfProd.send(RedisCommand(command.map { RedisArgument($0) })) },
                    throws: { Self.isNoPerm($0) })
            }
            #expect(try await admin.send("HGET", ownCounter, "on|ok").integer == 5)
            // The evaluation times: HSET (what the heartbeat sends), and nothing else.
            _ = try await appOfProd.send("HSET", prod.evaluated, "new-checkout", "1800000060")
            #expect(try await admin.send("HGET", prod.evaluated, "new-checkout").string == "1800000060")
            for command in [
                ["HGETALL", prod.evaluated], ["HGET", prod.evaluated, "new-checkout"], ["HDEL", prod.evaluated, "new-checkout"],
                ["DEL", prod.evaluated], ["SET", prod.evaluated, "x"], ["EXPIRE", prod.evaluated, "1"], ["HINCRBY", prod.evaluated, "f", "1"],
            ] {
                await #expect(
                    "\(command)", performing: { _ = try await appOfProd.send(RedisCommand(command.map { RedisArgument($0) })) },
                    throws: { Self.isNoPerm($0) })
            }
            // The daemon user of prod can; the daemon user of prod cannot touch test.
            let asDaemon = try EnvironmentControl(
                environment: "prod", client: RedisClient(configuration: try RedisConfiguration(url: daemonProd)),
                directory: FlagDirectory(root: root.path))
            _ = try await asDaemon.apply(.set(variant: "on"), flag: "new-checkout", actor: "daemon", reason: nil)
            // …and announces changes: reads the audit stream, keeps its notification cursors under the lease.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            guard case .acquired(let lease) = try await asDaemon.store.acquireLease(holder: "d", nowMilliseconds: now, ttlMilliseconds: 30_000)
            else { return #expect(Bool(false), "the daemon user could not take the lease") }
            let end = try await asDaemon.store.auditEnd()
            #expect(try await asDaemon.store.auditEntries(after: .origin, limit: 10).entries.count >= 2)
            try await asDaemon.store.storeNotificationCursor(end, target: "team", holder: "d", token: lease.token, nowMilliseconds: now)
            #expect(try await asDaemon.store.notificationCursor(target: "team") == end)
            let daemonOnTest = try EnvironmentControl(
                environment: "test", client: RedisClient(configuration: try RedisConfiguration(url: daemonProd)),
                directory: FlagDirectory(root: root.path))
            await #expect(
                performing: { _ = try await daemonOnTest.apply(.set(variant: "off"), flag: "new-checkout", actor: "d", reason: nil) },
                throws: { Self.isNoPerm($0) })
        }
    }

    @Test(
        "the daemon does its whole job as the daemon user: OFREP, reported outcomes flushed, and a regression in an app user's traffic reverted"
    )
    func daemonUser() async throws {
        try await Self.withProd { server, root, writer, app, daemonUser in

            let daemon = try await DaemonProcess.start(
                ["--interval", "1s", "--no-alerts", "--env", "prod", "--redis", daemonUser, "--flags", root.path])
            #expect(daemon.stdout.contains("watcher every 1s"), "\(daemon.stdout)")
            // Its HTTP side, as the daemon user: OFREP and reported outcomes (flushed by the daemon's client).
            let evaluation = try await daemon.request("/ofrep/v1/evaluate/flags/new-checkout", body: "{}")
            #expect(evaluation.status == 200 && evaluation.body.contains("false"), "\(evaluation)")
            let report = try await daemon.request(
                "/flagpole/v1/outcomes", body: #"{"outcomes": [{"flag": "new-checkout", "variant": "off", "success": false, "count": 7}]}"#)
            #expect(report.status == 202, "\(report)")
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            let minute = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            try await waitUntil("the reported outcomes are flushed as the daemon user") {
                try await store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))["off"]?.failed == 7
            }

            let traffic = try BackgroundProcess(
                trafficExecutable,
                [
                    "--env", "prod", "--redis", app, "--flag", "new-checkout", "--rate", "100", "--error-rate", "0.01",
                    "--variant-error-rate", "on=0.3", "--report-interval", "0.5",
                ])
            defer { Task { await traffic.stop() } }
            try await traffic.waitForLine(timeout: .seconds(30), "the traffic generator is ready") { $0.contains("\"ready\":true") }
            let start = try FlagctlProcess.run(
                [
                    "rollout", "start", "new-checkout", "--to", "on", "--steps", "50,100", "--watch", "30s", "--min-samples", "50",
                    "--env", "prod", "--redis", writer, "--flags", root.path,
                ])
            #expect(start.status == 0, "\(start.stderr)")
            try await waitUntil("the daemon, as the daemon user, reverts the rollout", timeout: .seconds(30), interval: .milliseconds(250)) {
                let status = try FlagctlProcess.run([
                    "rollout", "status", "new-checkout", "--json", "--env", "prod", "--redis", writer, "--flags", root.path,
                ])
                return status.stdout.contains("\"reverted\"")
            }
            #expect(try await daemon.stop() == 0)
            #expect(!daemon.stderr.contains("NOPERM") && !daemon.stderr.contains("refused"), "\(daemon.stderr)")
            #expect(!traffic.stderr.contains("NOPERM") && !traffic.stderr.contains("refused"), "\(traffic.stderr)")
            #expect(await traffic.stop() == 0)
        }
    }

    @Test("the HTTP side as an app user and the watcher as the daemon user (--watcher-redis): OFREP, outcome flushes and the lease all work")
    func splitDaemon() async throws {
        try await Self.withProd { server, root, writer, app, daemonUser in
            let daemon = try await DaemonProcess.start(
                ["--env", "prod", "--redis", app, "--watcher-redis", daemonUser, "--flags", root.path, "--interval", "200ms", "--no-alerts"])
            let evaluation = try await daemon.request("/ofrep/v1/evaluate/flags/new-checkout", body: "{}")
            #expect(evaluation.status == 200 && evaluation.body.contains("false"), "\(evaluation)")
            let report = try await daemon.request(
                "/flagpole/v1/outcomes", body: #"{"outcomes": [{"flag": "new-checkout", "variant": "off", "success": false, "count": 3}]}"#)
            #expect(report.status == 202, "\(report)")
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            let minute = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            try await waitUntil("the reported outcomes are flushed as the app user") {
                try await store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))["off"]?.failed == 3
            }
            try await waitUntil("the watcher leads as the daemon user") {
                try await daemon.request("/metrics", method: "GET").body.contains(#"flagpole_watcher_leader{environment="prod"} 1"#)
            }
            #expect(try await daemon.stop() == 0)
            #expect(!daemon.stderr.contains("NOPERM") && !daemon.stderr.contains("refused"), "\(daemon.stderr)")
        }
    }
}
