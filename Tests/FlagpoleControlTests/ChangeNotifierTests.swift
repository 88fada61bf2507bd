import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The notifier against a real Redis and local stand-in targets (webhook, Slack, Telegram).
@Suite("Notifications of every change, from the audit stream, to stand-in targets", .timeLimit(.minutes(3)))
struct ChangeNotifierTests {
    static let token = "123456:TEST-BOT-TOKEN-never-in-a-message"

    /// A notifier for `holder`, fast enough for tests (polls every 50 ms, retries from 100 ms).
    func notifier(
        _ f: RolloutFixture, holder: String, targets: [AlertTarget], telegram: String = "http://127.0.0.1:9",
        configure: (inout ChangeNotifier.Configuration) -> Void = { _ in }
    ) throws -> ChangeNotifier {
        var c = ChangeNotifier.Configuration(environment: "prod", holderID: holder)
        c.pollInterval = .milliseconds(50)
        c.initialBackoff = .milliseconds(100)
        c.maxBackoff = .seconds(1)
        c.leaseMargin = .milliseconds(500)
        c.requestTimeout = .seconds(5)
        c.telegramAPIBase = telegram
        c.consoleURL = "https://flags.example.com/console/"
        configure(&c)
        return try ChangeNotifier(
            configuration: c, targets: targets, client: RedisClient(configuration: f.server.configuration),
            processEnvironment: ["BOT": Self.token, "CHAT": "-100200"], logger: Logger(label: "test"))
    }

    /// Runs `notifier` until `stop` is called.
    final class Running: Sendable {
        let task: Task<Void, Never>
        init(_ n: ChangeNotifier) { task = Task { try? await n.run() } }
        func stop() async {
            task.cancel()
            await task.value
        }
    }

    func holdLease(_ f: RolloutFixture, _ holder: String, ttl: Int64 = 60_000) async throws {
        let now = SystemRolloutClock().nowMilliseconds()
        guard case .acquired = try await f.control.store.acquireLease(holder: holder, nowMilliseconds: now, ttlMilliseconds: ttl) else {
            throw NotifierTestError(description: "\(holder) could not take the lease")
        }
    }

    /// Waits until `target`'s stored cursor is the stream's last entry.
    func caughtUp(_ f: RolloutFixture, _ target: String) async throws {
        try await waitUntil("the cursor of \(target) reaches the end of the audit stream") {
            let end = try await f.control.store.auditEnd()
            return try await f.control.store.notificationCursor(target: target)?.id == end.id
        }
    }

    func webhookIDs(_ server: StandInServer, answered: Set<Int>? = nil) -> [String] {
        server.requests.enumerated().compactMap { i, r in
            guard answered?.contains(i) ?? true else { return nil }
            return (try? JSONParser.parse(r.body))?["id"]?.stringValue
        }
    }

    @Test(
        "each change by a writer that is gone at once is announced once to a webhook, Slack and Telegram; a restart repeats nothing and loses nothing"
    )
    func everyKindOnceAcrossRestart() async throws {
        try await RolloutFixture.with { f in
            try await StandInServer.with { hook in
                try await StandInServer.with { slack in
                    try await StandInServer.with { telegram in
                        try await holdLease(f, "d1")
                        let targets = [
                            AlertTarget(name: "hook", destination: .webhook(url: .literal(hook.url + "/hook")), notify: ["prod"]),
                            AlertTarget(name: "chat", destination: .slack(url: .literal(slack.url + "/services/T/B/x")), notify: ["prod"]),
                            AlertTarget(
                                name: "on-call", destination: .telegram(botToken: .environmentVariable("BOT"), chatID: .environmentVariable("CHAT")),
                                notify: ["prod"]),
                            // Alerts of prod, but no notifications: not announced to.
                            AlertTarget(name: "alerts-only", destination: .webhook(url: .literal(hook.url + "/alerts-only"))),
                        ]
                        let first = Running(try notifier(f, holder: "d1", targets: targets, telegram: telegram.url))
                        // First start: at the end (the sync before it is history, not announced).
                        for t in ["hook", "chat", "on-call"] { try await caughtUp(f, t) }
                        #expect(hook.count == 0 && slack.count == 0 && telegram.count == 0)
                        // Each change by its own short-lived writer (a flagctl that exits at once).
                        func writer() throws -> EnvironmentControl {
                            try EnvironmentControl(
                                environment: "prod", client: RedisClient(configuration: f.server.configuration),
                                directory: FlagDirectory(root: f.root.path))
                        }
                        _ = try await writer().apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: "launch <!channel> & more")
                        _ = try await writer().apply(.enable(false), flag: "new-checkout", actor: "bob", reason: "errors up")
                        _ = try await writer().apply(.clear(unpin: false), flag: "new-checkout", actor: "bob", reason: nil)
                        try await waitUntil("three notices at each target") { hook.count == 3 && slack.count == 3 && telegram.count == 3 }
                        for t in ["hook", "chat", "on-call"] { try await caughtUp(f, t) }
                        await first.stop()

                        let docs = hook.requests.compactMap { try? JSONParser.parse($0.body) }
                        #expect(docs.map { $0["action"]?.stringValue } == ["set", "disable", "clear"])
                        #expect(docs.map { $0["actor"]?.stringValue } == ["ann", "bob", "bob"])
                        #expect(docs[0]["environment"] == "prod" && docs[0]["reason"] == "launch <!channel> & more")
                        #expect(docs[0]["changes"]?.arrayValue?.first?["before"] == "no override (the files' definition)")
                        #expect(docs[0]["changes"]?.arrayValue?.first?["after"] == "variant \"on\"")
                        #expect(docs[0]["links"]?["new-checkout"] == "https://flags.example.com/console/flags/new-checkout")
                        #expect(hook.requests.allSatisfy { $0.path == "/hook" })
                        let slackText = slack.requests.compactMap { try? JSONParser.parse($0.body)["text"]?.stringValue }
                        #expect(
                            slackText[0].hasPrefix("ℹ️ prod: new-checkout set to variant \"on\" by ann\nWhy: launch &lt;!channel&gt; &amp; more"),
                            "\(slackText[0])")
                        #expect(slackText[1].hasPrefix("⚠️ prod: new-checkout disabled (kill switch) by bob"), "\(slackText[1])")
                        #expect(telegram.requests.allSatisfy { $0.path == "/bot\(Self.token)/sendMessage" })
                        let sent = telegram.requests.compactMap { try? JSONParser.parse($0.body) }
                        #expect(sent.allSatisfy { $0["chat_id"] == "-100200" && $0["parse_mode"] == nil })
                        #expect(sent[2]["text"]?.stringValue?.hasPrefix("ℹ️ prod: new-checkout override cleared by bob") == true)
                        for r in hook.requests + slack.requests + telegram.requests { #expect(!r.body.contains(Self.token)) }
                        try Self.writeSamples(hook: hook.requests[0].body, slack: slack.requests[0].body, telegram: telegram.requests[0].body)

                        // Daemon down: two more changes, then a new daemon (same lease holder) resumes.
                        _ = try await writer().apply(.set(variant: "off"), flag: "new-checkout", actor: "cy", reason: "back")
                        _ = try await f.start(now: Int64(Date().timeIntervalSince1970))
                        let second = Running(try notifier(f, holder: "d1", targets: targets, telegram: telegram.url))
                        try await waitUntil("the two changes made while it was down") { hook.count >= 5 && slack.count >= 5 && telegram.count >= 5 }
                        for t in ["hook", "chat", "on-call"] { try await caughtUp(f, t) }
                        await second.stop()
                        #expect(hook.count == 5 && slack.count == 5 && telegram.count == 5)
                        let ids = webhookIDs(hook)
                        #expect(Set(ids).count == 5, "no change announced twice: \(ids)")
                        let last = try JSONParser.parse(hook.requests[4].body)
                        #expect(last["action"] == "rollout-start" && last["actor"] == "ann@host")
                        #expect(last["text"]?.stringValue?.contains("new-checkout: variant \"off\" → rollout 10% → \"on\"") == true)
                    }
                }
            }
        }
    }

    @Test("500 then 429 with Retry-After: retried, delivered once; a target down for a while then gets everything in order")
    func retriesAndOutage() async throws {
        try await RolloutFixture.with { f in
            let down = Atomic<Bool>(false)
            let answered = Mutex<Set<Int>>([])
            try await StandInServer.with({ _, i in
                if i == 0 { return .init(status: .internalServerError, body: "boom") }
                if i == 1 { return .init(status: .tooManyRequests, body: "slow down", retryAfter: 1) }
                if down.load(ordering: .relaxed) { return .init(status: .serviceUnavailable, body: "maintenance") }
                answered.withLock { _ = $0.insert(i) }
                return .init()
            }) { hook in
                try await holdLease(f, "d1")
                let n = try notifier(
                    f, holder: "d1", targets: [AlertTarget(name: "hook", destination: .webhook(url: .literal(hook.url + "/hook")), notify: ["prod"])])
                let running = Running(n)
                defer { Task { await running.stop() } }
                try await caughtUp(f, "hook")
                let started = ContinuousClock.now
                _ = try await f.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: nil)
                // The stand-in counts a request before its answer reaches the notifier: wait for both.
                try await waitUntil("delivered after a 500 and a 429") { answered.withLock { $0.count } == 1 && n.statistics["hook"]?.sent == 1 }
                #expect(ContinuousClock.now - started >= .seconds(1), "Retry-After: 1 was honoured")
                #expect(hook.count == 3)
                #expect(Set(webhookIDs(hook)).count == 1, "the same notice, three attempts")
                #expect(n.statistics["hook"]?.retried == 2 && n.statistics["hook"]?.sent == 1)

                // Down: three changes wait, retried with backoff; back: all three, in order.
                down.store(true, ordering: .relaxed)
                _ = try await f.control.apply(.enable(false), flag: "new-checkout", actor: "ann", reason: nil)
                _ = try await f.control.apply(.enable(true), flag: "new-checkout", actor: "ann", reason: nil)
                _ = try await f.control.apply(.clear(unpin: false), flag: "new-checkout", actor: "ann", reason: nil)
                try await waitUntil("three failed attempts during the outage") { hook.count >= 6 }
                down.store(false, ordering: .relaxed)
                try await waitUntil("everything after the outage", timeout: .seconds(20)) { answered.withLock { $0.count } == 4 }
                let delivered = webhookIDs(hook, answered: answered.withLock { $0 })
                #expect(delivered.count == 4)
                #expect(delivered == delivered.sorted { NotificationCursor.precedes($0, $1) }, "in stream order")
                let actions = hook.requests.enumerated().filter { answered.withLock { s in s }.contains($0.offset) }
                    .compactMap { try? JSONParser.parse($0.element.body)["action"]?.stringValue }
                #expect(actions == ["set", "disable", "enable", "clear"])
                #expect(n.statistics["hook"]?.failed == 0)
            }
        }
    }

    @Test("an audit entry Flagpole cannot read is announced as such, and the changes after it still are")
    func unreadableEntry() async throws {
        try await RolloutFixture.with { f in
            try await StandInServer.with { hook in
                try await holdLease(f, "d1")
                let n = try notifier(
                    f, holder: "d1", targets: [AlertTarget(name: "hook", destination: .webhook(url: .literal(hook.url + "/hook")), notify: ["prod"])])
                let running = Running(n)
                defer { Task { await running.stop() } }
                try await caughtUp(f, "hook")
                // Someone with XADD rights writes an entry without an action.
                let client = RedisClient(configuration: f.server.configuration)
                _ = try await client.send(["XADD", RedisArgument(try StoreLayout(environment: "prod").audit), "*", "foo", "bar"])
                _ = try await f.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: "after it")
                try await waitUntil("both announced") { hook.count >= 2 }
                try await caughtUp(f, "hook")
                let bodies = hook.requests.compactMap { try? JSONParser.parse($0.body) }
                #expect(bodies.map { $0["action"]?.stringValue } == [FlagStore.unreadableAction, "set"])
                #expect(bodies.first?["title"]?.stringValue?.contains("cannot be read") == true)
                #expect(bodies.first?["severity"] == "warning")
            }
        }
    }

    @Test("at an empty stream the starting cursor keeps the revision, so that later trimming is counted")
    func emptyStreamCursor() async throws {
        try await RolloutFixture.with { f in
            _ = try await f.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: nil)
            let revision = try await f.control.store.revision()
            let client = RedisClient(configuration: f.server.configuration)
            _ = try await client.send(["DEL", RedisArgument(try StoreLayout(environment: "prod").audit)])
            let end = try await f.control.store.auditEnd()
            #expect(end.id == "0-0" && end.revision == revision && revision > 0)
        }
    }

    @Test("two daemons: only the lease holder announces; when it stops, the other takes over from the stored cursor; each change once")
    func twoDaemons() async throws {
        try await RolloutFixture.with { f in
            try await StandInServer.with { hook in
                let targets = [AlertTarget(name: "hook", destination: .webhook(url: .literal(hook.url + "/hook")), notify: ["prod"])]
                // Each daemon: its watcher (which takes and renews the lease) and its notifier.
                func watcher(_ holder: String) throws -> RolloutWatcher {
                    var c = RolloutWatcher.Configuration(environment: "prod", holderID: holder)
                    c.interval = .milliseconds(200)
                    c.leaseTTL = .seconds(3)
                    let client = RedisClient(configuration: f.server.configuration)
                    return try RolloutWatcher(
                        configuration: c, client: client, metricSource: RolloutWatcher.standardMetricSources(environment: "prod", client: client),
                        alerts: CollectingAlerts(), logger: Logger(label: "test"))
                }
                let w1 = try watcher("d1"), w2 = try watcher("d2")
                let n1 = try notifier(f, holder: "d1", targets: targets), n2 = try notifier(f, holder: "d2", targets: targets)
                _ = try await w1.tick()  // d1 leads
                let watcher1 = Task { try? await w1.run() }
                let watcher2 = Task { try? await w2.run() }
                let notifier1 = Running(n1), notifier2 = Running(n2)
                defer {
                    watcher2.cancel()
                    Task { await notifier2.stop() }
                }
                try await caughtUp(f, "hook")
                for i in 0..<4 {
                    _ = try await f.control.apply(.enable(i % 2 == 1), flag: "new-checkout", actor: "ann", reason: "round \(i)")
                }
                try await waitUntil("four notices") { hook.count >= 4 }
                try await caughtUp(f, "hook")
                #expect(n1.statistics["hook"]?.sent == 4 && n2.statistics["hook"]?.sent == 0)

                // d1 stops as a daemon does: its notifier first, then its watcher gives the lease up.
                await notifier1.stop()
                watcher1.cancel()
                _ = await watcher1.value
                for i in 0..<3 {
                    _ = try await f.control.apply(.set(variant: i % 2 == 0 ? "on" : "off"), flag: "new-checkout", actor: "bob", reason: nil)
                }
                try await waitUntil("d2 takes over and announces the rest", timeout: .seconds(15)) { hook.count >= 7 }
                try await caughtUp(f, "hook")
                #expect(hook.count == 7)
                let ids = webhookIDs(hook)
                #expect(Set(ids).count == 7 && ids == ids.sorted { NotificationCursor.precedes($0, $1) })
                #expect(n2.statistics["hook"]?.sent == 3)
            }
        }
    }

    @Test("a watcher revert goes once to a target that announces the environment (as a notification), and as an alert to the others")
    func alertsAndNotificationsCombine() {
        let revert = Alert(severity: .critical, title: "prod: x reverted", text: "", environment: "prod", at: 1, auditedAction: "rollout-revert")
        let incident = Alert(severity: .warning, title: "prod: x holding", text: "", environment: "prod", at: 1)
        let notifies = AlertTarget(name: "n", destination: .webhook(url: .literal("http://x")), notify: ["prod"])
        let alertsOnly = AlertTarget(name: "a", destination: .webhook(url: .literal("http://x")))
        let otherEnvironment = AlertTarget(name: "t", destination: .webhook(url: .literal("http://x")), notify: ["test"])
        #expect(!AlertDispatcher.sends(revert, to: notifies))
        #expect(AlertDispatcher.sends(incident, to: notifies), "an alert with no audit entry still goes as an alert")
        #expect(AlertDispatcher.sends(revert, to: alertsOnly) && AlertDispatcher.sends(revert, to: otherEnvironment))
        #expect(ChangeNotice.isAnnounced(action: "rollout-revert") && !ChangeNotice.isAnnounced(action: "rollout-hold"))
    }

    /// Writes what the stand-ins received to `$FLAGPOLE_NOTIFY_SAMPLES` (a Markdown file), when set.
    static func writeSamples(hook: String, slack: String, telegram: String) throws {
        guard let path = ProcessInfo.processInfo.environment["FLAGPOLE_NOTIFY_SAMPLES"], !path.isEmpty else { return }
        func pretty(_ body: String) -> String {
            guard let data = body.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data),
                let out = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            else { return body }
            return String(decoding: out, as: UTF8.self)
        }
        let text = """
            # Notification samples, as stand-in targets received them

            Captured by `ChangeNotifierTests` (`FLAGPOLE_NOTIFY_SAMPLES=… swift test --filter ChangeNotifierTests`): the first
            change (`set new-checkout on`, reason `launch <!channel> & more`), posted by the notifier to local stand-ins.

            ## Telegram (`POST /bot<token>/sendMessage`)

            The body exactly as received:

            ```json
            \(telegram)
            ```

            The same, indented:

            ```json
            \(pretty(telegram))
            ```

            ## Slack-compatible webhook

            The body exactly as received:

            ```json
            \(slack)
            ```

            The same, indented:

            ```json
            \(pretty(slack))
            ```

            ## Generic webhook

            The body exactly as received:

            ```json
            \(hook)
            ```

            The same, indented:

            ```json
            \(pretty(hook))
            ```

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

struct NotifierTestError: Error, CustomStringConvertible {
    var description: String
}
