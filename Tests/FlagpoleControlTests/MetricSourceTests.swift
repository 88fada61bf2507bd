import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Synchronization
import Testing

/// Writes outcome minutes by hand, as the client library does (`HINCRBY` of the documented fields).
private func write(
    _ client: RedisClient, flag: String = "checkout", minute: Int64, variant: String?, ok: Int64 = 0, err: Int64 = 0, buckets: [Int: Int64] = [:]
) async throws {
    let layout = try StoreLayout(environment: "prod")
    let key = RedisArgument(layout.outcomes(flag: flag, minute: minute))
    var commands: [RedisCommand] = []
    if ok > 0 { commands.append(["HINCRBY", key, RedisArgument(StoreLayout.outcomeField(variant: variant, .ok)), RedisArgument(ok)]) }
    if err > 0 { commands.append(["HINCRBY", key, RedisArgument(StoreLayout.outcomeField(variant: variant, .err)), RedisArgument(err)]) }
    for (k, n) in buckets {
        commands.append(["HINCRBY", key, RedisArgument(StoreLayout.latencyField(variant: variant, bucket: k)), RedisArgument(n)])
    }
    _ = try await client.pipeline(commands)
}

private func query(_ cohort: CohortSelector, role: String = "treatment", from: Int64, to: Int64, flag: String = "checkout") -> CohortQuery {
    CohortQuery(environment: "prod", flag: flag, cohort: cohort, role: role, from: from, to: to)
}

@Suite("BuiltinMetricSource against a real Redis", .timeLimit(.minutes(1)))
struct MetricSourceBuiltinTests {
    static let m: Int64 = 29_000_000  // a minute in 2025

    @Test("sums ok/err per cohort selector over the minutes of the window, in one round trip")
    func selectors() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let m = Self.m
            try await write(client, minute: m, variant: "on", ok: 90, err: 10)
            try await write(client, minute: m + 1, variant: "on", ok: 45, err: 5)
            try await write(client, minute: m, variant: "off", ok: 300, err: 3)
            try await write(client, minute: m + 1, variant: nil, ok: 20, err: 2)
            try await write(client, minute: m + 2, variant: "on", ok: 1000)  // outside [m, m+2)
            try await write(client, minute: m - 1, variant: "off", ok: 1000)  // outside too
            try await write(client, flag: "other", minute: m, variant: "on", err: 1000)  // another flag
            let source = BuiltinMetricSource(client: client, now: { m * 60 + 3600 })
            #expect(source.name == "builtin")
            let from = m * 60
            let to = (m + 2) * 60
            let calls = try await server.commandCalls("hgetall")
            let treatment = try await source.counts(query(.variant("on"), from: from, to: to))
            #expect(treatment == CohortCounts(successes: 135, failures: 15))
            #expect(treatment.errorRate == 0.1)
            #expect(try await server.commandCalls("hgetall") == calls + 2)  // one HGETALL per minute, pipelined
            let control = try await source.counts(query(.allBut("on"), role: "control", from: from, to: to))
            #expect(control == CohortCounts(successes: 320, failures: 5))
            let all = try await source.counts(query(.all, role: "control", from: from, to: to))
            #expect(all == CohortCounts(successes: 455, failures: 20))
            let none = try await source.counts(query(.variant("blue"), from: from, to: to))
            #expect(none == CohortCounts() && none.errorRate == nil)
            #expect(try await source.counts(query(.all, from: to, to: to)) == CohortCounts())  // an empty window
        }
    }

    @Test("a minute partly inside the window counts by its share; the running minute by the share of what has happened")
    func proRating() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let m = Self.m
            try await write(client, minute: m, variant: "on", ok: 60, err: 60)
            try await write(client, minute: m + 1, variant: "on", ok: 30)
            // Minute m is over; the window takes its last 15 s of 60: a quarter.
            let past = BuiltinMetricSource(client: client, now: { (m + 5) * 60 })
            #expect(try await past.counts(query(.variant("on"), from: m * 60 + 45, to: (m + 1) * 60)) == CohortCounts(successes: 15, failures: 15))
            // Minute m+1 runs: 20 s of it have happened and the window ends now, so all of it counts.
            let running = BuiltinMetricSource(client: client, now: { (m + 1) * 60 + 20 })
            #expect(
                try await running.counts(query(.variant("on"), from: m * 60 + 30, to: (m + 1) * 60 + 20)) == CohortCounts(successes: 60, failures: 30)
            )
            // Half of what happened in the running minute (10 of 20 s).
            #expect(try await running.counts(query(.variant("on"), from: (m + 1) * 60 + 10, to: (m + 1) * 60 + 20)) == CohortCounts(successes: 15))
            // Whole minutes when asked.
            var whole = BuiltinMetricSource.Configuration()
            whole.proRatePartialMinutes = false
            let unprorated = BuiltinMetricSource(client: client, configuration: whole, now: { (m + 5) * 60 })
            #expect(
                try await unprorated.counts(query(.variant("on"), from: m * 60 + 45, to: (m + 1) * 60)) == CohortCounts(successes: 60, failures: 60))
        }
    }

    @Test("the p95 comes from the latency buckets of the selected variants")
    func p95() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let m = Self.m
            // 95 fast outcomes ([768, 1024) µs) and 5 slow ones ([262144, 393216) µs) under "on".
            try await write(client, minute: m, variant: "on", ok: 100, buckets: [6: 95, 23: 5])
            try await write(client, minute: m, variant: "off", ok: 100, buckets: [30: 100])
            let source = BuiltinMetricSource(client: client, now: { (m + 5) * 60 })
            let on = try await source.counts(query(.variant("on"), from: m * 60, to: (m + 1) * 60))
            #expect(on.p95LatencyMicros == 1024)  // rank 95 ends the fast bucket
            let all = try await source.counts(query(.all, from: m * 60, to: (m + 1) * 60))
            let p95 = try #require(all.p95LatencyMicros)
            #expect(p95 >= LatencyHistogram.lowerBound(30) && p95 <= LatencyHistogram.upperBound(30))
            try await write(client, minute: m + 1, variant: "on", ok: 5)
            #expect(try await source.counts(query(.variant("on"), from: (m + 1) * 60, to: (m + 2) * 60)).p95LatencyMicros == nil)
        }
    }

    @Test("a key that is not an outcome hash, or a window too long, is an error naming it; Redis down is an error")
    func errors() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let m = Self.m
            let key = try StoreLayout(environment: "prod").outcomes(flag: "checkout", minute: m)
            _ = try await client.send("SET", key, "hand-written")
            let source = BuiltinMetricSource(client: client, now: { (m + 5) * 60 })
            await #expect { try await source.counts(query(.all, from: m * 60, to: (m + 1) * 60)) } throws: { error in
                let e = error as? MetricSourceError
                return e?.code == .redis && e!.message.contains(key) && e!.message.contains("not an outcome hash")
            }
            await #expect { try await source.counts(query(.all, from: 0, to: m * 60)) } throws: { error in
                (error as? MetricSourceError)?.code == .configuration && "\(error)".contains("minutes")
            }
            let bad = CohortQuery(environment: "pr{od}", flag: "checkout", cohort: .all, role: "control", from: 0, to: 60)
            await #expect { try await source.counts(bad) } throws: { ($0 as? MetricSourceError)?.code == .configuration }
            server.remove()
            await #expect { try await source.counts(query(.all, from: (m + 1) * 60, to: (m + 2) * 60)) } throws: { error in
                (error as? MetricSourceError)?.code == .redis && "\(error)".contains("checkout")
            }
        }
    }
}

extension RedisServer {
    /// How many times the server ran a command (`INFO commandstats`).
    func commandCalls(_ name: String) async throws -> Int {
        let client = RedisClient(configuration: configuration)
        defer { Task { await client.close() } }
        let info = try await client.send("INFO", "commandstats").string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(name):") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last
        else { return 0 }
        return Int(calls) ?? 0
    }
}

/// A fixed-answer source standing in for the built-in counters.
private struct FixedSource: RolloutMetricSource {
    var answer: CohortCounts
    var name: String { "fixed" }
    func counts(_ query: CohortQuery) async throws -> CohortCounts { answer }
}

@Suite("PrometheusMetricSource against a stand-in Prometheus", .timeLimit(.minutes(1)))
struct MetricSourcePrometheusTests {
    static let template =
        #"sum(rate(errors_total{flag="$flag",variant="$variant",cohort="$cohort",env="$env"}[$window])) / sum(rate(requests_total{flag="$flag"}[$window]))"#

    static func vector(_ value: String, series: Int = 1) -> String {
        let one = #"{"metric":{},"value":[1767225600.5,"\#(value)"]}"#
        return #"{"status":"success","data":{"resultType":"vector","result":["# + Array(repeating: one, count: series).joined(separator: ",") + "]}}"
    }

    @Test("sends the expanded query at the window's end and reads a one-series vector; counts from the requests query")
    func vectorWithRequestsQuery() async throws {
        try await StandInServer.with({ request, _ in
            request.query["query"]!.hasPrefix("sum(increase") ? .init(body: Self.vector("400")) : .init(body: Self.vector("0.025"))
        }) { prometheus in
            let source = try PrometheusMetricSource(
                configuration: .init(
                    url: prometheus.url + "/", errorRatioQuery: Self.template,
                    requestsQuery: #"sum(increase(requests_total{flag="$flag",cohort="$cohort"}[$window]))"#),
                counters: nil)
            #expect(source.name == "prometheus")
            let q = query(.allBut("on"), role: "control", from: 1_767_225_000, to: 1_767_225_600)
            let counts = try await source.counts(q)
            #expect(counts == CohortCounts(successes: 390, failures: 10))
            let requests = prometheus.requests
            #expect(requests.count == 2)
            #expect(requests.allSatisfy { $0.method == "GET" && $0.path == "/api/v1/query" && $0.query["time"] == "1767225600" })
            let sent = Set(requests.map { $0.query["query"]! })
            #expect(
                sent == [
                    #"sum(rate(errors_total{flag="checkout",variant="on",cohort="control",env="prod"}[600s])) / sum(rate(requests_total{flag="checkout"}[600s]))"#,
                    #"sum(increase(requests_total{flag="checkout",cohort="control"}[600s]))"#,
                ])
        }
    }

    @Test("a scalar answer works; without a requests query the totals (and p95) come from the counters")
    func scalarWithCounters() async throws {
        try await StandInServer.with({ _, _ in .init(body: #"{"status":"success","data":{"resultType":"scalar","result":[1767225600,"0.5"]}}"#) }) {
            prometheus in
            let source = try PrometheusMetricSource(
                configuration: .init(url: prometheus.url, errorRatioQuery: "vector(0.5)"),
                counters: FixedSource(answer: CohortCounts(successes: 180, failures: 20, p95LatencyMicros: 1234)))
            let counts = try await source.counts(query(.variant("on"), from: 0, to: 60))
            #expect(counts == CohortCounts(successes: 100, failures: 100, p95LatencyMicros: 1234))
        }
    }

    @Test("an empty window asks nothing and counts nothing (PromQL refuses a [0s] range)")
    func emptyWindow() async throws {
        try await StandInServer.with { prometheus in
            let source = try PrometheusMetricSource(configuration: .flagpoleOutcomes(url: prometheus.url), counters: nil)
            #expect(try await source.counts(query(.variant("on"), from: 120, to: 120)) == CohortCounts())
            #expect(prometheus.count == 0)
        }
    }

    @Test("docs/rollouts.md shows the default queries the source runs")
    func documentedDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/rollouts.md"), encoding: .utf8)
        for query in [
            PrometheusMetricSource.defaultErrorRatioQuery, PrometheusMetricSource.defaultRequestsQuery, PrometheusMetricSource.defaultLatencyQuery,
        ] {
            #expect(doc.contains("`" + query + "`"), "docs/rollouts.md lacks \(query)")
        }
    }

    @Test("placeholders are escaped for PromQL strings; $variant at 100 % is the target variant; $variant_matcher selects the cohort")
    func expansion() {
        var q = CohortQuery(environment: "prod", flag: #"we"ird\flag"#, cohort: .all, role: "control", from: 100, to: 400)
        q.targetVariant = "on"
        #expect(
            PrometheusMetricSource.expand(#"x{f="$flag",v="$variant",c="$cohort"}[$window] $other $"#, for: q)
                == #"x{f="we\"ird\\flag",v="on",c="control"}[300s] $other $"#)
        let template = #"x{f="$flag",$variant_matcher}"#
        #expect(PrometheusMetricSource.expand(template, for: q) == #"x{f="we\"ird\\flag",variant=~".*"}"#)
        #expect(PrometheusMetricSource.expand(template, for: query(.variant(#"o"n"#), from: 0, to: 60)) == #"x{f="checkout",variant="o\"n"}"#)
        #expect(PrometheusMetricSource.expand(template, for: query(.allBut("on"), from: 0, to: 60)) == #"x{f="checkout",variant!="on"}"#)
    }

    @Test(
        "failures throw an error naming the URL and the query (the watcher holds)",
        arguments: [
            ("HTTP 500", StandInServer.Reply(status: .internalServerError, body: #"{"status":"error","error":"boom"}"#), "answered HTTP 500: boom"),
            (
                "error status", StandInServer.Reply(body: #"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#),
                "failed: parse error at char 3"
            ),
            (
                "empty", StandInServer.Reply(body: #"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
                "gave no sample (empty result)"
            ),
            ("NaN", StandInServer.Reply(body: MetricSourcePrometheusTests.vector("NaN")), "gave NaN"),
            ("several series", StandInServer.Reply(body: MetricSourcePrometheusTests.vector("0.1", series: 3)), "gave 3 series"),
            ("a percentage", StandInServer.Reply(body: MetricSourcePrometheusTests.vector("2.5")), "gave 2.5; it must give the cohort's error ratio"),
            ("a matrix", StandInServer.Reply(body: #"{"status":"success","data":{"resultType":"matrix","result":[]}}"#), "gave a matrix"),
            ("not JSON", StandInServer.Reply(body: "<html>"), "did not answer a Prometheus query result"),
        ])
    func failures(name: String, reply: StandInServer.Reply, message: String) async throws {
        try await StandInServer.with({ _, _ in reply }) { prometheus in
            let source = try PrometheusMetricSource(
                configuration: .init(url: prometheus.url, errorRatioQuery: #"sum(rate(e{flag="$flag"}[$window]))"#),
                counters: FixedSource(answer: CohortCounts(successes: 10)))
            await #expect {
                try await source.counts(query(.variant("on"), from: 0, to: 60))
            } throws: { error in
                let text = "\(error)"
                return text.contains(prometheus.url) && text.contains(#"sum(rate(e{flag="checkout"}[60s]))"#) && text.contains(message)
            }
        }
    }

    @Test("a hanging server times out, an unreachable one fails; credentials in the URL are not printed")
    func timeoutAndUnreachable() async throws {
        try await StandInServer.with({ _, _ in .init(body: Self.vector("0"), delay: .seconds(30)) }) { prometheus in
            let source = try PrometheusMetricSource(
                configuration: .init(url: prometheus.url, errorRatioQuery: "vector(0)", timeout: .milliseconds(300)),
                counters: FixedSource(answer: CohortCounts(successes: 10)))
            let started = ContinuousClock.now
            await #expect { try await source.counts(query(.all, from: 0, to: 60)) } throws: { error in
                (error as? MetricSourceError)?.code == .http
            }
            // Far below the server's 30 s hang; the slack is for a loaded 2-core machine (seen: 8.9 s at load 20).
            #expect(started.duration(to: .now) < .seconds(12))
        }
        let port = try await StandInServer.with { $0.url }  // a port nobody listens on any more
        let secret = port.replacingOccurrences(of: "http://", with: "http://admin:hunter2@")
        let source = try PrometheusMetricSource(
            configuration: .init(url: secret, errorRatioQuery: "vector(0)"), counters: FixedSource(answer: CohortCounts()))
        await #expect { try await source.counts(query(.all, from: 0, to: 60)) } throws: { error in
            let text = "\(error)"
            return (error as? MetricSourceError)?.code == .http && !text.contains("hunter2") && text.contains("vector(0)")
        }
    }

    @Test(
        "makeMetricSource: builtin by default; prometheus needs a URL, said clearly, and takes the default queries without one of its own; bad queries are refused"
    )
    func factory() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let builtin = try makeMetricSource(policy: .builtIn, environment: "prod", client: client)
            #expect(builtin.name == "builtin")
            let unset = try makeMetricSource(policy: GuardPolicy(), environment: "prod", client: client)
            #expect(unset.name == "builtin")
            let policy = GuardPolicy(metric: .prometheus, prometheusURL: "http://p:9090", prometheusQuery: "vector(0)")
            let prometheus = try makeMetricSource(policy: policy, environment: "prod", client: client)
            #expect(prometheus.name == "prometheus")
            let defaults = try #require(
                try makeMetricSource(policy: GuardPolicy(metric: .prometheus, prometheusURL: "http://p:9090"), environment: "prod", client: client)
                    as? PrometheusMetricSource)
            #expect(defaults.configuration.errorRatioQuery == PrometheusMetricSource.defaultErrorRatioQuery)
            #expect(defaults.configuration.requestsQuery == PrometheusMetricSource.defaultRequestsQuery)
            #expect(defaults.configuration.latencyQuery == PrometheusMetricSource.defaultLatencyQuery)
            #expect { try makeMetricSource(policy: GuardPolicy(metric: .prometheus), environment: "prod", client: client) } throws: { error in
                (error as? MetricSourceError)?.code == .configuration && "\(error)".contains("prometheusUrl")
                    && "\(error)".contains("rollout.prometheusUrl")
            }
            #expect { try makeMetricSource(policy: .builtIn, environment: "pr/od", client: client) } throws: { _ in true }
            #expect {
                try PrometheusMetricSource(configuration: .init(url: "http://p:9090", errorRatioQuery: "x{a=\"$flg\"}"), counters: nil)
            } throws: { "\($0)".contains("unknown placeholder $flg") }
            #expect {
                try PrometheusMetricSource(configuration: .init(url: "p:9090", errorRatioQuery: "x"), counters: nil)
            } throws: { "\($0)".contains("http:// or https://") }
        }
    }
}
