import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Testing

@Suite("OutcomeFlush: chunks, and a script that applies each at most once", .timeLimit(.minutes(1)))
struct OutcomeFlushTests {
    static func builder(flags: Int, layout: StoreLayout) -> OutcomeFlush.Builder {
        var b = OutcomeFlush.Builder(layout: layout)
        for i in 0..<flags {
            var latency = [Int64](repeating: 0, count: LatencyHistogram.bucketCount)
            latency[3] = 2
            latency[7] = 1
            b.add(
                minute: 100, flag: "f\(i)", variant: "on", counts: OutcomeCounts(succeeded: 5, failed: 2, totalMicroseconds: 900, timed: 3),
                latency: latency)
            b.add(minute: 101, flag: "f\(i)", variant: nil, counts: OutcomeCounts(succeeded: 1), latency: [])
        }
        b.addDropped(minute: 100, 4)
        return b
    }

    @Test("chunks carry every increment exactly once, numbered in order, none over the size limit")
    func chunking() throws {
        let layout = try StoreLayout(environment: "prod")
        let b = Self.builder(flags: 300, layout: layout)
        let whole = b.chunks(instanceID: "i", firstSequence: 7, retention: .seconds(60), maximumIncrements: 1_000_000)
        #expect(whole.count == 1)
        let chunks = b.chunks(instanceID: "i", firstSequence: 7, retention: .seconds(60), maximumIncrements: 250)
        #expect(chunks.map(\.sequence) == Array(7..<(7 + Int64(chunks.count))))
        #expect(chunks.allSatisfy { $0.incrementCount <= 250 && $0.incrementCount > 0 })
        func flat(_ c: [OutcomeFlush]) -> [String: Int64] {
            var out: [String: Int64] = [:]
            for chunk in c { for h in chunk.hashes { for i in h.increments { out[h.key + " " + i.field, default: 0] += i.amount } } }
            return out
        }
        #expect(flat(chunks) == flat(whole))
        // 300 flags × (4 counters + 2 buckets + 1 index) + 300 × (1 counter + 1 index) + dropped.
        #expect(flat(whole).count == 300 * 7 + 300 * 2 + 1)
        #expect(flat(whole)[layout.outcomeSummary(minute: 100) + " dropped"] == 4)
    }

    @Test("a chunk sent twice, or an older one late, is applied once; sums saturate; a key of the wrong type is skipped, not fatal")
    func script() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: client, environment: "prod")
            let layout = store.layout
            var b = OutcomeFlush.Builder(layout: layout)
            b.add(minute: 100, flag: "pay", variant: "on", counts: OutcomeCounts(succeeded: 3, failed: 1), latency: [])
            let first = try #require(b.chunks(instanceID: "app-1", firstSequence: 1, retention: .seconds(600)).first)
            #expect(try await store.apply(first).applied)
            // The reply was lost and the client sends the same chunk again: nothing changes.
            #expect(try await store.apply(first).applied == false)
            let key = layout.outcomes(flag: "pay", minute: 100)
            #expect(try await client.send("HGET", key, "on|ok").integer == 3)
            #expect(try await client.send("HGET", layout.outcomeSummary(minute: 100), "flag:pay").integer == 4)
            #expect(try await client.send("GET", layout.outcomeFlushMarker(instanceID: "app-1")).integer == 1)
            let ttl = try await client.send("TTL", key).integer ?? -1
            #expect(ttl > 0 && ttl <= 600)
            // Another instance's chunk 1 is its own.
            let other = try #require(b.chunks(instanceID: "app-2", firstSequence: 1, retention: .seconds(600)).first)
            #expect(try await store.apply(other).applied)
            #expect(try await client.send("HGET", key, "on|ok").integer == 6)

            // Saturation: a counter near Int64.max stays at Int64.max.
            _ = try await client.send("HSET", key, "on|err", "9223372036854775800")
            var big = OutcomeFlush.Builder(layout: layout)
            big.add(minute: 100, flag: "pay", variant: "on", counts: OutcomeCounts(failed: 1000), latency: [])
            let second = try #require(big.chunks(instanceID: "app-1", firstSequence: 3, retention: .seconds(600)).first)
            #expect(try await store.apply(second).applied)
            #expect(try await client.send("HGET", key, "on|err").integer == .max)
            // A late chunk 2 after chunk 3: already covered, ignored.
            let late = try #require(big.chunks(instanceID: "app-1", firstSequence: 2, retention: .seconds(600)).first)
            #expect(try await store.apply(late).applied == false)
            #expect(try await client.send("HGET", key, "on|err").integer == .max)

            // A key someone turned into a string: its fields are skipped and named; the rest lands.
            let poisoned = layout.outcomes(flag: "poisoned", minute: 100)
            _ = try await client.send("SET", poisoned, "x")
            var mixed = OutcomeFlush.Builder(layout: layout)
            mixed.add(minute: 100, flag: "poisoned", variant: "on", counts: OutcomeCounts(succeeded: 1), latency: [])
            mixed.add(minute: 100, flag: "pay", variant: "off", counts: OutcomeCounts(succeeded: 2), latency: [])
            let result = try await store.apply(try #require(mixed.chunks(instanceID: "app-1", firstSequence: 4, retention: .seconds(600)).first))
            #expect(result.applied && result.skipped == 1)
            #expect(result.firstProblem?.contains(poisoned) == true && result.firstProblem?.contains("WRONGTYPE") == true, "\(result)")
            #expect(try await client.send("HGET", key, "off|ok").integer == 2)
            #expect(try await client.send("GET", poisoned).string == "x")
        }
    }

    @Test("reading counters someone wrote by hand: negative ones count as 0, huge ones saturate, nothing traps")
    func hostileCounters() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: client, environment: "prod")
            let layout = store.layout
            _ = try await client.send("HSET", layout.outcomes(flag: "pay", minute: 100), "on|ok", "9223372036854775807", "on|err", "-50")
            _ = try await client.send("HSET", layout.outcomes(flag: "pay", minute: 101), "on|ok", "9223372036854775807", "on|err", "7")
            let counts = try await store.outcomes(flag: "pay", minutes: 100...101)
            #expect(counts["on"] == OutcomeCounts(succeeded: .max, failed: 7))
            #expect(counts["on"]?.total == .max)
        }
    }
}
