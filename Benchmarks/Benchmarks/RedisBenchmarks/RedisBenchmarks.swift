import Benchmark
import Foundation
import FlagpoleRedis
import FlagpoleTesting

// A real redis-server on loopback, started once for these benchmarks.
nonisolated(unsafe) var server: RedisServer?

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .cpuTotal],
        timeUnits: .nanoseconds,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )
    // Benchmarks/smoke (CI): a few iterations each, to check that they run, not how fast.
    let smoke = ProcessInfo.processInfo.environment["FLAGPOLE_BENCH_SMOKE"] != nil
    if smoke {
        Benchmark.defaultConfiguration.maxDuration = .milliseconds(200)
        Benchmark.defaultConfiguration.maxIterations = 20
    }
    Benchmark.setup = {
        let s = try await RedisServer.start()
        server = s
        let c = try RedisConnection(configuration: s.configuration)
        _ = try c.send(["SET", "bench:key", "flagpole"])
    }
    Benchmark.teardown = {
        server?.remove()
        server = nil
    }

    Benchmark("GET round trip (RedisConnection)") { benchmark in
        let c = try RedisConnection(configuration: server!.configuration)
        let get: RedisCommand = ["GET", "bench:key"]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try c.send(get))
        }
    }

    Benchmark("GET round trip (RedisClient, async)") { benchmark in
        let client = RedisClient(configuration: server!.configuration)
        _ = try await client.send("PING")
        let get: RedisCommand = ["GET", "bench:key"]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await client.send(get))
        }
    }

    Benchmark(
        "Pipelined GET, depth 100, per command (RedisConnection)",
        configuration: .init(scalingFactor: .kilo)
    ) { benchmark in
        let c = try RedisConnection(configuration: server!.configuration)
        let batch = [RedisCommand](repeating: ["GET", "bench:key"], count: 100)
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 100) {
            blackHole(try c.pipeline(batch))
        }
    }
}
