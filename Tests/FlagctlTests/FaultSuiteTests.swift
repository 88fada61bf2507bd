import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization
import Testing

/// One environment's flags in a temporary folder, synced into a real server.
private struct FaultFixture {
    let root: URL
    let admin: RedisClient
    let control: EnvironmentControl

    init(_ server: RedisServer, environment: String = "prod", flags: String = FaultFixture.flags) async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-fault-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent(environment), withIntermediateDirectories: true)
        try flags.write(to: root.appendingPathComponent("\(environment)/flags.json"), atomically: true, encoding: .utf8)
        admin = RedisClient(configuration: server.configuration)
        control = try EnvironmentControl(environment: environment, client: admin, directory: FlagDirectory(root: root.path))
        guard case .applied = try await control.sync(.init()) else { throw BackgroundProcessError(message: "the fixture did not sync") }
    }

    static let flags = """
        {"flags": {
          "switch": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
          "banner": {"state": "ENABLED", "variants": {"short": "Hi", "long": "Hello"}, "defaultVariant": "short",
                     "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "long", null]}}
        }}
        """

    func client(
        _ server: RedisServer, url: String? = nil, environment: String = "prod", logger: Logger = Logger(label: "faults")
    ) throws -> FlagpoleClient {
        var c = FlagpoleClient.Configuration(
            redis: try url.map { try RedisConfiguration(url: $0) } ?? server.configuration, environment: environment, application: "faults")
        c.snapshotPath = nil
        c.startupTimeout = .seconds(5)
        c.revisionCheckInterval = .seconds(2)
        c.freshnessBound = .seconds(1)
        return FlagpoleClient(configuration: c, logger: logger)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

/// Runs `client` for the duration of `body`, then shuts it down.
private func running<T>(_ client: FlagpoleClient, _ body: () async throws -> T) async throws -> T {
    let task = Task { try await client.run() }
    defer { task.cancel() }
    #expect(await client.waitUntilReady(timeout: .seconds(10)))
    return try await body()
}

/// Threads that evaluate a flag as fast as they can and count what came back.
private final class SteadyEvaluation: Sendable {
    let evaluations = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    let running = Atomic<Int>(0)

    init(_ client: FlagpoleClient, flag: String, threads: Int) {
        for _ in 0..<threads {
            running.add(1, ordering: .relaxed)
            Thread { [self] in
                while !stopping.load(ordering: .relaxed) {
                    let d = client.boolDetails(flag, default: false)
                    if d.errorCode != nil { failed.add(1, ordering: .relaxed) }
                    evaluations.add(1, ordering: .relaxed)
                }
                running.subtract(1, ordering: .relaxed)
            }.start()
        }
    }

    func halt() async throws {
        stopping.store(true, ordering: .relaxed)
        try await waitUntil("the evaluating threads stop") { running.load(ordering: .relaxed) == 0 }
    }
}

@Suite("Fault suite: real redis-server processes and real faults (each adds a row to the fault table)", .timeLimit(.minutes(3)))
struct FaultSuiteTests {
    @Test("Redis killed (SIGKILL) and restarted during steady evaluation: no evaluation fails, the client catches up")
    func redisKilledDuringEvaluation() async throws {
        try await RedisServer.withServer(.init(appendOnly: true)) { server in
            let fx = try await FaultFixture(server)
            defer { fx.remove() }
            let client = try fx.client(server)
            try await running(client) {
                let threads = SteadyEvaluation(client, flag: "switch", threads: 2)
                server.kill()
                try await waitUntil("the client notices Redis is gone") { !client.freshness.isInSync }
                try await server.restart()
                let restarted = ContinuousClock.now
                try await waitUntil("a change can be written again", timeout: .seconds(15)) {
                    (try? await fx.control.apply(.set(variant: "on"), flag: "switch", actor: "faults", reason: nil)) != nil
                }
                try await waitUntil("the client serves the change written after the restart", timeout: .seconds(15)) {
                    client.bool("switch", default: false) && client.freshness.isInSync
                }
                let catchUp = restarted.duration(to: .now)
                try await threads.halt()
                let failed = threads.failed.load(ordering: .relaxed), total = threads.evaluations.load(ordering: .relaxed)
                #expect(failed == 0)
                #expect(total > 1000)
                FaultTable.record(
                    fault: "Redis killed (SIGKILL) and restarted during steady evaluation",
                    checked: "failed evaluations; time from restart until a new change is served", passed: failed == 0,
                    figure: "\(failed) failed of \(total); caught up \(FaultTable.ms(catchUp)) after the restart")
            }
        }
    }

    @Test("Redis restarted from its AOF (appendfsync always): no acknowledged sync, change or audit entry is lost")
    func restartFromAOF() async throws {
        try await RedisServer.withServer(.init(appendOnly: true, extraArguments: ["--appendfsync", "always"])) { server in
            let fx = try await FaultFixture(server)
            defer { fx.remove() }
            var acknowledged: Int64 = try await fx.control.store.revision()
            for i in 0..<40 {
                let outcome = try await fx.control.apply(
                    .set(variant: i % 2 == 0 ? "on" : "off"), flag: "switch", actor: "faults", reason: "flip \(i)")
                acknowledged = outcome.revision ?? acknowledged
            }
            let auditBefore = try await fx.control.store.auditEntries(limit: 1000).count
            server.kill()
            try await server.restart()
            let restored = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: restored, environment: "prod")
            var revision: Int64 = -1
            try await waitUntil("the restarted server answers", timeout: .seconds(10)) {
                revision = (try? await store.revision()) ?? -1
                return revision >= 0
            }
            let auditAfter = try await store.auditEntries(limit: 1000).count
            let flag = try await store.read(flag: "switch")
            #expect(revision == acknowledged)
            #expect(auditAfter == auditBefore)
            #expect(flag.override?.override == .variant("off"))
            let ok = revision == acknowledged && auditAfter == auditBefore
            FaultTable.record(
                fault: "Redis killed and restarted from its AOF (appendfsync always)",
                checked: "acknowledged revision and audit entries after the restart", passed: ok,
                figure: "revision \(revision) of \(acknowledged) acknowledged; \(auditAfter) of \(auditBefore) audit entries")
        }
    }

    @Test("the pub/sub connection cut silently: the periodic revision check heals it within its interval")
    func pubsubCutSilently() async throws {
        try await RedisServer.withServer { server in
            let fx = try await FaultFixture(server)
            defer { fx.remove() }
            let proxy = try TCPProxy(upstreamPort: server.port)
            defer { proxy.stop() }
            let client = try fx.client(server, url: proxy.url)
            try await running(client) {
                try await waitUntil("the client subscribed through the proxy") { proxy.subscriberConnections >= 1 }
                proxy.blackhole(subscribersOnly: true)
                let cut = ContinuousClock.now
                _ = try await fx.control.apply(.set(variant: "on"), flag: "switch", actor: "faults", reason: nil)
                // The revision check runs every 2 s here; allow one interval plus a command timeout.
                try await waitUntil("the change arrives without pub/sub", timeout: .seconds(8)) { client.bool("switch", default: false) }
                let healed = cut.duration(to: .now)
                #expect(healed <= .seconds(2) + client.configuration.redis.commandTimeout + .seconds(1))
                FaultTable.record(
                    fault: "pub/sub connection cut silently (no FIN, no RST)",
                    checked: "a change is applied anyway, within the revision-check interval (2 s here; 30 s by default)",
                    passed: healed <= .seconds(5), figure: "applied \(FaultTable.ms(healed)) after the change")
            }
        }
    }
}

/// Garbage written by hand into one kind of Flagpole key.
struct MalformedKey: Sendable, CustomTestStringConvertible {
    var kind: String
    /// Redis commands, with `K(name)` spelled as the layout's key name (see `key(_:in:)`).
    var commands: [[String]]
    /// The flagctl commands (of ``MalformedKeyTests/commands``) that must refuse, exit status 1,
    /// naming the key; every other one must succeed (0). `rollout status switch` always refuses:
    /// there is no rollout of switch.
    var refusedBy: Set<String>
    var testDescription: String { kind }

    static let all: [MalformedKey] = [
        // The revision is read by nearly everything; only the audit trail does without it.
        MalformedKey(
            kind: "revision: not a number", commands: [["SET", "revision", "banana"]],
            refusedBy: ["list", "get switch", "status", "diff", "clients", "sync", "set switch on", "rollout list", "rollout status switch"]),
        // One bad flag: what reads that flag refuses; listings report it and go on. sync takes its
        // fast path (the files are unchanged since the last sync) and does not read the flags.
        MalformedKey(
            kind: "flags: a definition that is not JSON", commands: [["HSET", "flags", "switch", "{not json"]],
            refusedBy: ["get switch", "set switch on", "rollout status switch"]),
        MalformedKey(
            kind: "flags: a definition that is JSON but not a flag", commands: [["HSET", "flags", "switch", "[1,2]"]],
            refusedBy: ["get switch", "set switch on", "rollout status switch"]),
        MalformedKey(
            kind: "flags: the key holds a string", commands: [["DEL", "flags"], ["SET", "flags", "x"]],
            refusedBy: ["list", "get switch", "status", "diff", "set switch on", "rollout status switch"]),
        // Overrides and pins: reads show the problem; a write to that flag refuses.
        MalformedKey(
            kind: "overrides: an unknown override", commands: [["HSET", "overrides", "switch", "{\"colour\":1}"]],
            refusedBy: ["set switch on", "rollout status switch"]),
        MalformedKey(
            kind: "overrides: not JSON", commands: [["HSET", "overrides", "switch", "]["]], refusedBy: ["set switch on", "rollout status switch"]),
        MalformedKey(kind: "pins: not a pin", commands: [["HSET", "pins", "switch", "42"]], refusedBy: ["set switch on", "rollout status switch"]),
        // A newer format is never read nor written (sync's fast path reads only its own fields).
        MalformedKey(
            kind: "meta: a newer data format", commands: [["HSET", "meta", "format", "99"]],
            refusedBy: ["list", "get switch", "status", "diff", "set switch on", "rollout status switch"]),
        MalformedKey(
            kind: "meta: flag-set metadata not JSON", commands: [["HSET", "meta", "flagSetMetadata", "{"]], refusedBy: ["rollout status switch"]),
        MalformedKey(
            kind: "audit: a string instead of a stream", commands: [["DEL", "audit"], ["SET", "audit", "x"]],
            refusedBy: ["history", "set switch on", "rollout status switch"]),
        MalformedKey(
            kind: "history: a snapshot that is not JSON", commands: [["HSET", "history", "1", "zzz"], ["LPUSH", "history:order", "1"]],
            refusedBy: ["rollout status switch"]),
        MalformedKey(
            kind: "history:order: a hash instead of a list", commands: [["DEL", "history:order"], ["HSET", "history:order", "a", "b"]],
            refusedBy: ["set switch on", "rollout status switch"]),
        MalformedKey(
            kind: "clients: a record that is not JSON", commands: [["SET", "clients:ghost", "{{"], ["HSET", "clients", "ghost", "oops"]],
            refusedBy: ["rollout status switch"]),
        MalformedKey(
            kind: "outcomes: counters that are not numbers", commands: [["HSET", "outcomes:MINUTE:switch", "on|ok", "NaN", "x", "y"]],
            refusedBy: ["rollout status switch"]),
        MalformedKey(
            kind: "rollouts: a record that is not JSON", commands: [["HSET", "rollouts", "switch", "{oops"]], refusedBy: ["rollout status switch"]),
        MalformedKey(
            kind: "rollouts: a record of an unknown shape", commands: [["HSET", "rollouts", "switch", "{\"id\":7}"]],
            refusedBy: ["rollout status switch"]),
        MalformedKey(
            kind: "watcher:lease: a hash instead of a string", commands: [["HSET", "watcher:lease", "a", "b"]],
            refusedBy: ["rollout list", "rollout status switch"]),
        MalformedKey(kind: "watcher:fence: not a number", commands: [["SET", "watcher:fence", "x"]], refusedBy: ["rollout status switch"]),
    ]
}

@Suite("Fault suite: malformed values in every kind of Flagpole key", .timeLimit(.minutes(3)))
struct MalformedKeyTests {
    static let commands: [[String]] = [
        ["list"], ["get", "switch"], ["status"], ["diff"], ["history"], ["clients"], ["sync"], ["set", "switch", "on"],
        ["rollout", "list"], ["rollout", "status", "switch"],
    ]

    /// What the client serves for switch and banner (with and without a matching email).
    static func served(_ client: FlagpoleClient) -> [String] {
        let example = EvaluationContext(attributes: ["email": "ann@example.com"])
        let s = client.boolDetails("switch", default: true)
        let b = client.stringDetails("banner", default: "?")
        let e = client.stringDetails("banner", default: "?", context: example)
        return ["switch=\(s.value)/\(s.variant ?? "-")", "banner=\(b.value)/\(b.variant ?? "-")", "banner@example=\(e.value)/\(e.variant ?? "-")"]
    }

    @Test(
        "each command refuses or succeeds exactly as it should, errors name the key, a running client keeps its last good values",
        arguments: MalformedKey.all)
    func malformed(_ damage: MalformedKey) async throws {
        try await RedisServer.withServer { server in
            let fx = try await FaultFixture(server)
            defer { fx.remove() }

            // A client follows the good data first.
            let log = LogCapture()
            let client = try fx.client(server, logger: log.logger)
            let task = Task { try await client.run() }
            defer { task.cancel() }
            #expect(await client.waitUntilReady(timeout: .seconds(10)))
            try await waitUntil("the client follows Redis") { client.freshness.source == .redis && client.freshness.isInSync }
            let good = Self.served(client)
            #expect(good == ["switch=false/off", "banner=Hi/short", "banner@example=Hello/long"])

            // Threads evaluate from before the damage until the client has read it.
            let differing = Atomic<Int>(0), evaluations = Atomic<Int>(0), stop = Atomic<Bool>(false), running = Atomic<Int>(2)
            for _ in 0..<2 {
                Thread {
                    while !stop.load(ordering: .relaxed) {
                        if Self.served(client) != good { differing.add(1, ordering: .relaxed) }
                        evaluations.add(1, ordering: .relaxed)
                    }
                    running.subtract(1, ordering: .relaxed)
                }.start()
            }

            try await waitUntil("the threads evaluate") { evaluations.load(ordering: .relaxed) >= 100 }
            let atDamage = evaluations.load(ordering: .relaxed)
            let minute = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            for command in damage.commands {
                var args = command
                args[1] = "flagpole:{prod}:" + args[1].replacingOccurrences(of: "MINUTE", with: "\(minute)")
                _ = try await fx.admin.send(RedisCommand(args.map { RedisArgument($0) }))
            }
            // Make the client read everything now (the damage sent no event): two change events
            // with revision gaps. A full read that ends after them (logged at debug level, or a
            // failed one) began after the first gap arrived, so it read the damaged data.
            let mark = log.entries.withLock { $0.count }
            func since(_ text: String) -> Int { log.entries.withLock { $0[mark...].filter { $0.message.contains(text) }.count } }
            for revision in [1_000_000, 2_000_000] {
                _ = try await fx.admin.send(
                    "PUBLISH", "flagpole:{prod}:changes", #"{"revision":\#(revision),"previousRevision":\#(revision - 1),"changed":[],"removed":[]}"#)
            }
            try await waitUntil("the client read the damaged data") {
                since("Read everything from Redis") >= 1 || since("Cannot read the flags from Redis") >= 1
            }
            let after = Self.served(client)
            stop.store(true, ordering: .relaxed)
            try await waitUntil("the evaluating threads stop") { running.load(ordering: .relaxed) == 0 }
            #expect(after == good, "the client's values changed after reading the damage")
            #expect(differing.load(ordering: .relaxed) == 0, "evaluations that did not return the last good values")
            #expect(evaluations.load(ordering: .relaxed) > atDamage, "no evaluation while the client read the damage")

            // flagctl, command by command: exactly the expected exit status; a refusal says where.
            var refused: [String] = []
            var unexpected: [String] = []
            var unclear: [String] = []
            for command in Self.commands {
                let name = command.joined(separator: " ")
                let r = try FlagctlProcess.run(command + ["--env", "prod", "--redis", server.url, "--flags", fx.root.path])
                #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Crash"), "flagctl \(name) crashed: \(r.stderr)")
                let expected: Int32 = damage.refusedBy.contains(name) ? 1 : 0
                #expect(r.status == expected, "flagctl \(name) exited \(r.status), expected \(expected): \(r.stderr)")
                if r.status != expected { unexpected.append("\(name) → \(r.status)") }
                if r.status != 0 {
                    refused.append(name)
                    // A clear error names where: the Redis key (or the flag) that is wrong.
                    if !(r.stderr.contains("flagpole:{prod}") || r.stderr.contains("switch")) { unclear.append("\(name): \(r.stderr)") }
                }
            }
            #expect(unclear.isEmpty, "errors that do not say where: \(unclear)")

            // A client that starts on the damaged environment does not crash and gets ready.
            let fresh = try fx.client(server)
            let freshTask = Task { try await fresh.run() }
            let freshReady = await fresh.waitUntilReady(timeout: .seconds(10))
            #expect(freshReady)
            let freshServed = fresh.boolDetails("switch", default: false)
            freshTask.cancel()

            let kept = after == good && differing.load(ordering: .relaxed) == 0
            FaultTable.record(
                fault: "malformed value by hand: \(damage.kind)",
                checked:
                    "\(Self.commands.count) flagctl commands exit exactly 0 or 1 as expected, refusals name the key; a running client keeps its last good values while it reads the damage; a new client starts",
                passed: unexpected.isEmpty && unclear.isEmpty && kept && freshReady,
                figure: (refused.isEmpty ? "none refused" : "refused (1) by \(refused.joined(separator: ", "))")
                    + (unexpected.isEmpty ? "" : "; UNEXPECTED \(unexpected.joined(separator: ", "))")
                    + "; running client kept \(good.joined(separator: " ")) over \(evaluations.load(ordering: .relaxed)) evaluations (\(differing.load(ordering: .relaxed)) differed)"
                    + "; new client served switch=\(freshServed.value) (\(freshServed.reason.rawValue))")
        }
    }
}
