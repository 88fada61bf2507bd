import Flagpole
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Metrics
import MetricsTestKit
import Synchronization
import Testing

/// Outcomes are the watcher's evidence: every count an application records reaches Redis once,
/// whatever the network does, and nothing else does.
@Suite("Outcome delivery: exactly once, only served flags, saturating", .timeLimit(.minutes(2)))
struct OutcomeDeliveryTests {
    /// Totals a test recorded, per variant and result.
    struct Recorded: Sendable, Hashable {
        var onOK: Int64 = 0, onErr: Int64 = 0, offOK: Int64 = 0, offErr: Int64 = 0
    }

    static func totals(_ fx: Fixture, flag: String, since start: Int64) async throws -> Recorded {
        let now = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
        let counts = try await fx.control.store.outcomes(flag: flag, minutes: (start - 1)...(now + 1))
        return Recorded(
            onOK: counts["on"]?.succeeded ?? 0, onErr: counts["on"]?.failed ?? 0, offOK: counts["off"]?.succeeded ?? 0,
            offErr: counts["off"]?.failed ?? 0)
    }

    @Test("replies lost and connections cut during flushes: Redis holds exactly the outcomes recorded, to the unit")
    func exactlyOnceUnderFaults() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let proxy = try TCPProxy(upstreamPort: server.port)
            defer { proxy.stop() }
            var configuration = fx.configuration()
            var redis = try RedisConfiguration(url: proxy.url)
            redis.backoff = server.configuration.backoff
            redis.commandTimeout = .milliseconds(500)
            configuration.redis = redis
            configuration.outcomes.flushInterval = .milliseconds(20)
            configuration.heartbeat.isEnabled = false
            let client = FlagpoleClient(configuration: configuration)
            let start = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            let evalCallsBefore = try await Self.scriptCalls(fx.admin)

            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                // Traffic: 4 kinds of outcome, recorded from a thread while faults land.
                let recorded = Mutex(Recorded())
                let stop = Atomic<Bool>(false)
                let traffic = Task.detached {
                    var i: Int64 = 0
                    while !stop.load(ordering: .relaxed) {
                        let on = i % 3 != 0
                        let ok = i % 7 != 0
                        client.recordOutcome(flag: "new-checkout", variant: on ? "on" : "off", success: ok)
                        recorded.withLock { r in
                            switch (on, ok) {
                            case (true, true): r.onOK += 1
                            case (true, false): r.onErr += 1
                            case (false, true): r.offOK += 1
                            case (false, false): r.offErr += 1
                            }
                        }
                        i += 1
                        if i % 50 == 0 { try? await Task.sleep(for: .milliseconds(1)) }
                    }
                }
                // The first flush loads the script (EVALSHA, NOSCRIPT, EVAL); from here on a lost
                // reply is the reply of a chunk Redis applied.
                let marker = fx.layout.outcomeFlushMarker(instanceID: configuration.instanceID)
                try await waitUntil("a first chunk is applied") { try await fx.admin.send("GET", marker).integer ?? 0 >= 1 }
                // Faults: 25 replies lost right after Redis carried the request out (the client
                // must send the same chunk again, and Redis must not add it twice), and 10
                // connections cut at whatever moment.
                for round in 0..<25 {
                    let lostBefore = proxy.lostReplies
                    proxy.loseNextReplies(1)
                    try await waitUntil("reply \(round + 1) is lost", timeout: .seconds(10)) { proxy.lostReplies > lostBefore }
                    if round % 5 == 2 { proxy.cutConnections() }
                    if round % 5 == 4 {
                        try await Task.sleep(for: .milliseconds(15))
                        proxy.cutConnections()
                    }
                }
                stop.store(true, ordering: .relaxed)
                await traffic.value
                let expected = recorded.withLock { $0 }
                #expect(expected.onOK > 1000 && expected.offErr > 10, "enough traffic to mean something: \(expected)")
                // Every count arrives; a double-counted chunk would overshoot and never match.
                try await waitUntil("Redis holds exactly what was recorded", timeout: .seconds(15)) {
                    try await Self.totals(fx, flag: "new-checkout", since: start) == expected
                }
                #expect(proxy.lostReplies >= 25)
            }
            // After the client's last flush and exit: still exactly what was recorded.
            let final = try await Self.totals(fx, flag: "new-checkout", since: start)
            let marker = try await fx.admin.send("GET", fx.layout.outcomeFlushMarker(instanceID: configuration.instanceID))
            let lastSequence = try #require(marker.integer)
            let calls = try await Self.scriptCalls(fx.admin) - evalCallsBefore
            #expect(final.onOK + final.onErr + final.offOK + final.offErr > 0)
            // More script calls than chunks: resends of applied chunks happened and were ignored.
            #expect(calls > lastSequence, "\(calls) script calls for \(lastSequence) chunks: no resend was exercised")
            let total = final.onOK + final.onErr + final.offOK + final.offErr
            FaultTable.record(
                fault: "outcome flushes: 25 replies lost after Redis applied the chunk, 10 connections cut",
                checked: "Redis holds exactly the outcomes recorded, per variant and result, after the faults and after the client's exit",
                passed: calls > lastSequence,
                figure: "\(total) outcomes recorded, \(total) in Redis; \(lastSequence) chunks in \(calls) script calls (resends ignored)")
        }
    }

    /// `EVALSHA` + `EVAL` calls the server has run (INFO commandstats).
    static func scriptCalls(_ admin: RedisClient) async throws -> Int64 {
        let info = try await admin.send("INFO", "commandstats").string ?? ""
        var total: Int64 = 0
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_evalsha:") || line.hasPrefix("cmdstat_eval:") {
            if let calls = line.split(separator: ",").first?.split(separator: "=").last, let n = Int64(calls) { total += n }
        }
        return total
    }

    @Test("outcomes of flags the client does not serve, or of variants they lack, are counted in a metric and never written")
    func unknownFlagsAreNotWritten() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let metrics = TestMetrics()
            var configuration = fx.configuration()
            configuration.metricsFactory = metrics
            let client = FlagpoleClient(configuration: configuration)
            let start = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                client.recordOutcome(flag: "no-such-flag", variant: "on", success: false)
                client.recordOutcome(flag: "new-checkout", variant: "purple", success: false)
                client.recordOutcome(flag: "new-checkout", variant: "on", success: true)
                client.recordOutcome(flag: "new-checkout", variant: nil, success: true)
                try await waitUntil("the served flag's outcomes land") {
                    let t = try await Self.totals(fx, flag: "new-checkout", since: start)
                    return t.onOK == 1
                }
                let keys = try await fx.admin.send("KEYS", "flagpole:{prod}:outcomes:*").array?.compactMap(\.string) ?? []
                #expect(!keys.contains { $0.hasSuffix(":no-such-flag") }, "\(keys)")
                let now = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
                let counts = try await fx.control.store.outcomes(flag: "new-checkout", minutes: (start - 1)...(now + 1))
                #expect(counts["purple"] == nil)
                #expect(counts[nil as String?]?.succeeded == 1)
                #expect(metrics.counterTotal(label: "flagpole_outcomes_unknown_total", dimensions: [("environment", "prod")]) == 2)
                // The per-flag, per-variant series: only the served flag and its variants (both
                // results of each from zero), and the code default's; never the unknown ones.
                func outcomes(_ variant: String, _ result: String) -> Int64? {
                    let d = [("environment", "prod"), ("flag", "new-checkout"), ("variant", variant), ("result", result)]
                    return metrics.counters(label: "flagpole_outcomes_total", dimensions: d).first.map { _ in
                        metrics.counterTotal(label: "flagpole_outcomes_total", dimensions: d)
                    }
                }
                #expect(outcomes("on", "success") == 1)
                #expect(outcomes("on", "failure") == 0)
                #expect(outcomes("off", "success") == 0 && outcomes("off", "failure") == 0)
                #expect(outcomes("", "success") == 1)
                let series = metrics.counters(label: "flagpole_outcomes_total")
                #expect(series.count == 6, "\(series.map(\.dimensions))")
                #expect(!series.contains { $0.dimensions.contains { $0 == ("flag", "no-such-flag") || $0 == ("variant", "purple") } })
            }
        }
    }

    @Test("counts and durations past every bound saturate in memory and in Redis instead of wrapping or trapping")
    func saturation() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let client = FlagpoleClient(configuration: fx.configuration())
            let start = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                // In memory: two huge counts with the longest duration, and a negative one.
                client.recordOutcomes(flag: "new-checkout", variant: "on", success: false, duration: .seconds(1 << 40), count: .max)
                client.recordOutcomes(flag: "new-checkout", variant: "on", success: false, duration: .seconds(-5), count: .max)
                try await waitUntil("the saturated counts land") {
                    let now = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
                    return try await fx.control.store.outcomes(flag: "new-checkout", minutes: (start - 1)...(now + 1))["on"]?.failed == .max
                }
                // In Redis: one more flush on top of Int64.max stays there.
                client.recordOutcomes(flag: "new-checkout", variant: "on", success: false, duration: .seconds(3600), count: 5)
                let marker = fx.layout.outcomeFlushMarker(instanceID: client.configuration.instanceID)
                let before = try await fx.admin.send("GET", marker).integer ?? 0
                try await waitUntil("another flush is applied") { (try await fx.admin.send("GET", marker).integer ?? 0) > before }
                let now = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
                let c = try #require(try await fx.control.store.outcomes(flag: "new-checkout", minutes: (start - 1)...(now + 1))["on"])
                #expect(c.failed == .max && c.totalMicroseconds == .max && c.timed == .max)
                #expect(c.totalMicroseconds > 0, "a wrapped sum would be negative")
            }
        }
    }
}

@Suite("Typed object flags", .timeLimit(.minutes(1)))
struct TypedObjectFlagTests {
    struct Theme: Decodable, Sendable, Equatable {
        var bg: String
    }

    struct Strict: Decodable, Sendable, Equatable {
        var bg: Int
    }

    @Test("an object flag decodes into a Decodable struct; a value that does not fit gives the default, TYPE_MISMATCH and the path")
    func decodes() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let client = FlagpoleClient(configuration: fx.configuration())
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                #expect(client.object("theme", as: Theme.self, default: Theme(bg: "#fff")) == Theme(bg: "#000"))
                let ok = client.objectDetails("theme", as: Theme.self, default: Theme(bg: "#fff"))
                #expect(ok.variant == "dark" && ok.reason == .staticValue && ok.errorCode == nil)
                let bad = client.objectDetails("theme", as: Strict.self, default: Strict(bg: 0))
                #expect(bad.value == Strict(bg: 0) && bad.reason == .error && bad.errorCode == .typeMismatch)
                #expect(bad.errorMessage?.contains("theme: at bg: expected Int") == true, "\(bad.errorMessage ?? "")")
                let missing = client.objectDetails("nope", as: Theme.self, default: Theme(bg: "#fff"))
                #expect(missing.value == Theme(bg: "#fff") && missing.errorCode == .flagNotFound)
            }
        }
    }
}
