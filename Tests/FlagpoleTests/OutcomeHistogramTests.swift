import Flagpole
import FlagpoleControl
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

@Suite("Outcome latency histogram", .timeLimit(.minutes(2)))
struct OutcomeHistogramTests {
    @Test("buckets: below 128 µs, then two per doubling on the documented bounds, then 67.1 s and more")
    func bucketBounds() {
        #expect(LatencyHistogram.bucket(micros: -5) == 0)
        #expect(LatencyHistogram.bucket(micros: 0) == 0)
        #expect(LatencyHistogram.bucket(micros: 127) == 0)
        #expect(LatencyHistogram.bucket(micros: 128) == 1)
        #expect(LatencyHistogram.bucket(micros: 191) == 1)
        #expect(LatencyHistogram.bucket(micros: 192) == 2)
        #expect(LatencyHistogram.bucket(micros: 256) == 3)
        #expect(LatencyHistogram.bucket(micros: 1_000) == 6)  // [768, 1024)
        #expect(LatencyHistogram.bucket(micros: 1 << 26) == 39)
        #expect(LatencyHistogram.bucket(micros: .max) == 39)
        for k in 1..<LatencyHistogram.bucketCount {
            let lower = Int64(LatencyHistogram.lowerBound(k))
            #expect(LatencyHistogram.bucket(micros: lower) == k, "bucket \(k) starts at \(lower) µs")
            #expect(LatencyHistogram.bucket(micros: lower - 1) == k - 1, "just below bucket \(k)")
            #expect(LatencyHistogram.upperBound(k - 1) == LatencyHistogram.lowerBound(k))
        }
        #expect(LatencyHistogram.lowerBound(38) == 3 * Double(1 << 24))  // 50.3 s
        #expect(LatencyHistogram.upperBound(39) == .infinity)
    }

    @Test("quantiles interpolate inside the bucket; the open last bucket gives its lower bound")
    func quantiles() throws {
        var h = LatencyHistogram()
        #expect(h.quantile(0.95) == nil)
        for _ in 0..<100 { h.record(micros: 1_000) }  // bucket 6: [768, 1024)
        let p50 = try #require(h.quantile(0.5))
        #expect(p50 == 768 + 256 * 0.5)
        #expect(h.quantile(1) == 1024)
        h.record(micros: 100_000_000)
        #expect(h.quantile(1) == LatencyHistogram.lowerBound(39))
        #expect(h.total == 101)
        #expect(LatencyHistogram.quantile(0.5, of: [0, 0.5, 0.5]) == 192)  // rank 0.5 ends bucket 1: [128, 192)
        #expect(LatencyHistogram.quantile(0.75, of: [0, 0.5, 0.5]) == 224)  // half-way through bucket 2: [192, 256)
    }

    @Test("fields: <variant>|h<k> round-trips; other fields are not latency buckets")
    func fields() {
        #expect(StoreLayout.latencyField(variant: "on", bucket: 17) == "on|h17")
        #expect(StoreLayout.parseLatencyField("on|h17")! == ("on", 17))
        #expect(StoreLayout.parseLatencyField("a|b|h3")! == ("a|b", 3))
        #expect(StoreLayout.parseLatencyField("|h0")! == (nil, 0))
        #expect(StoreLayout.parseLatencyField("on|h40") == nil)
        #expect(StoreLayout.parseLatencyField("on|ok") == nil)
        #expect(StoreLayout.parseLatencyField("on|h") == nil)
        #expect(StoreLayout.parseOutcomeField("on|h3") == nil)
    }

    @Test("the client's timed outcomes land as histogram fields in the minute hash, in the same flush")
    func throughTheClient() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let client = FlagpoleClient(configuration: fx.configuration())
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                let minute = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
                for _ in 0..<3 { client.recordOutcome(flag: "new-checkout", variant: "on", success: true, duration: .microseconds(100)) }
                for _ in 0..<2 { client.recordOutcome(flag: "new-checkout", variant: "on", success: false, duration: .microseconds(200)) }
                client.recordOutcome(flag: "new-checkout", variant: "on", success: true, duration: .seconds(5))
                client.recordOutcome(flag: "new-checkout", variant: "on", success: true)  // untimed: no bucket
                client.recordOutcome(flag: "new-checkout", variant: nil, success: true, duration: .milliseconds(1))
                var fields: [String: Int64] = [:]
                try await waitUntil("the histogram lands") {
                    fields = [:]
                    for m in (minute - 1)...(minute + 2) {
                        let reply = try await fx.admin.send("HGETALL", fx.layout.outcomes(flag: "new-checkout", minute: m))
                        for (k, v) in reply.dictionary ?? [:] { fields[k, default: 0] += v.integer ?? 0 }
                    }
                    return fields["on|ok"] == 5 && fields["|ok"] == 1
                }
                let five = LatencyHistogram.bucket(micros: 5_000_000)
                #expect(five == 2 * (22 - 7) + 1 + 0)  // 5 s is in [2^22, 1.5·2^22) µs
                let expected: [String: Int64] = [
                    "on|ok": 5, "on|err": 2, "on|us": 300 + 400 + 5_000_000, "on|timed": 6,
                    "on|h0": 3, "on|h2": 2, "on|h\(five)": 1,
                    "|ok": 1, "|us": 1000, "|timed": 1, "|h6": 1,
                ]
                #expect(fields == expected)
            }
        }
    }

    @Test("BuiltinMetricSource reads what the client recorded: cohort counts and a p95 from the histogram")
    func builtinSourceReadsTheClient() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let client = FlagpoleClient(configuration: fx.configuration())
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                let start = Int64(Date().timeIntervalSince1970)
                for i in 0..<100 { client.recordOutcome(flag: "new-checkout", variant: "on", success: i >= 5, duration: .milliseconds(1)) }
                for _ in 0..<10 { client.recordOutcome(flag: "new-checkout", variant: "on", success: true, duration: .milliseconds(300)) }
                for i in 0..<40 { client.recordOutcome(flag: "new-checkout", variant: "off", success: i > 0, duration: .milliseconds(2)) }
                client.recordOutcome(flag: "new-checkout", variant: nil, success: false)
                let source = BuiltinMetricSource(client: fx.admin)
                func query(_ cohort: CohortSelector, _ role: String) -> CohortQuery {
                    // Whole minutes, from the one before the first outcome to two after now.
                    CohortQuery(
                        environment: "prod", flag: "new-checkout", cohort: cohort, role: role, from: (start / 60 - 1) * 60,
                        to: (start / 60 + 3) * 60)
                }
                try await waitUntil("every outcome lands") {
                    try await source.counts(query(.all, "control")).total == 151
                }
                let treatment = try await source.counts(query(.variant("on"), "treatment"))
                #expect(treatment.successes == 105 && treatment.failures == 5)
                // 110 timed; the 95th percentile (rank 104.5) is among the ten 300 ms ones: [262144, 393216) µs.
                let p95 = try #require(treatment.p95LatencyMicros)
                #expect(p95 >= 262_144 && p95 < 393_216, "\(p95)")
                let control = try await source.counts(query(.allBut("on"), "control"))
                #expect(control.successes == 39 && control.failures == 2)
                let p95Control = try #require(control.p95LatencyMicros)
                #expect(p95Control >= 1_536 && p95Control < 2_048, "\(p95Control)")  // 2 ms: [1536, 2048)
            }
        }
    }
}
