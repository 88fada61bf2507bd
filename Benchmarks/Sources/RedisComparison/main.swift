// Compares Flagpole's Redis connection with redis-benchmark against the same server, in one run.
//
//   cd Benchmarks && swift run -c release redis-comparison [--rounds 5]
//
// Round trip: sequential GETs on one connection (redis-benchmark -c 1 -P 1).
// Pipeline: GETs in batches of 100 on one connection (redis-benchmark -c 1 -P 100).
// Each round runs both sides back to back; the median round is reported.
import FlagpoleRedis
import FlagpoleTesting
import Foundation

struct Figures {
    var opsPerSecond: Double
    var p50Micros: Double?
    var p99Micros: Double?
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func swiftRoundTrip(_ config: RedisConfiguration, count: Int) throws -> Figures {
    let c = try RedisConnection(configuration: config)
    let get: RedisCommand = ["GET", "key:__rand_int__"]
    for _ in 0..<1000 { _ = try c.send(get) }
    var samples = [Double]()
    samples.reserveCapacity(count)
    let clock = ContinuousClock()
    let start = clock.now
    var last = start
    for _ in 0..<count {
        _ = try c.send(get)
        let now = clock.now
        samples.append(last.duration(to: now).seconds * 1e6)
        last = now
    }
    let total = start.duration(to: last).seconds
    samples.sort()
    return Figures(opsPerSecond: Double(count) / total, p50Micros: percentile(samples, 0.5), p99Micros: percentile(samples, 0.99))
}

func swiftAsyncRoundTrip(_ config: RedisConfiguration, count: Int) async throws -> Figures {
    let client = RedisClient(configuration: config)
    let get: RedisCommand = ["GET", "key:__rand_int__"]
    for _ in 0..<1000 { _ = try await client.send(get) }
    var samples = [Double]()
    samples.reserveCapacity(count)
    let clock = ContinuousClock()
    let start = clock.now
    var last = start
    for _ in 0..<count {
        _ = try await client.send(get)
        let now = clock.now
        samples.append(last.duration(to: now).seconds * 1e6)
        last = now
    }
    samples.sort()
    return Figures(opsPerSecond: Double(count) / start.duration(to: last).seconds, p50Micros: percentile(samples, 0.5), p99Micros: percentile(samples, 0.99))
}

func swiftPipeline(_ config: RedisConfiguration, batches: Int) throws -> Figures {
    let c = try RedisConnection(configuration: config)
    let batch = [RedisCommand](repeating: ["GET", "key:__rand_int__"], count: 100)
    for _ in 0..<50 { _ = try c.pipeline(batch) }
    let start = ContinuousClock.now
    for _ in 0..<batches { _ = try c.pipeline(batch) }
    return Figures(opsPerSecond: Double(batches * 100) / start.duration(to: .now).seconds)
}

/// Runs redis-benchmark and reads its CSV line: "GET","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms".
func redisBenchmark(port: Int, requests: Int, pipeline: Int) throws -> Figures {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["redis-benchmark", "-h", "127.0.0.1", "-p", "\(port)", "-c", "1", "-n", "\(requests)", "-P", "\(pipeline)", "-t", "get", "--csv"]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("\"GET\"") }) else {
        throw RedisServerError("unexpected redis-benchmark output: \(text)")
    }
    let fields = line.split(separator: ",").map { Double($0.replacingOccurrences(of: "\"", with: "")) }
    return Figures(opsPerSecond: fields[1] ?? 0, p50Micros: fields[4].map { $0 * 1000 }, p99Micros: fields[6].map { $0 * 1000 })
}

func fmt(_ x: Double?, _ digits: Int = 1) -> String {
    guard let x else { return "-" }
    return String(format: "%.\(digits)f", x)
}

var rounds = 5
if let i = CommandLine.arguments.firstIndex(of: "--rounds"), i + 1 < CommandLine.arguments.count, let r = Int(CommandLine.arguments[i + 1]) {
    rounds = r
}

let server = try await RedisServer.start()
defer { server.remove() }
let config = server.configuration
_ = try RedisConnection(configuration: config).send(["SET", "key:__rand_int__", "xxx"])

var rtSwift: [Figures] = [], rtAsync: [Figures] = [], rtBench: [Figures] = [], plSwift: [Figures] = [], plBench: [Figures] = []
for round in 1...rounds {
    rtBench.append(try redisBenchmark(port: server.port, requests: 50_000, pipeline: 1))
    rtSwift.append(try swiftRoundTrip(config, count: 50_000))
    rtAsync.append(try await swiftAsyncRoundTrip(config, count: 50_000))
    plBench.append(try redisBenchmark(port: server.port, requests: 2_000_000, pipeline: 100))
    plSwift.append(try swiftPipeline(config, batches: 20_000))
    FileHandle.standardError.write(Data("round \(round)/\(rounds) done\n".utf8))
}

func summary(_ f: [Figures]) -> Figures {
    Figures(
        opsPerSecond: median(f.map(\.opsPerSecond)),
        p50Micros: f.first?.p50Micros == nil ? nil : median(f.compactMap(\.p50Micros)),
        p99Micros: f.first?.p99Micros == nil ? nil : median(f.compactMap(\.p99Micros)))
}
let (rs, ra, rb, ps, pb) = (summary(rtSwift), summary(rtAsync), summary(rtBench), summary(plSwift), summary(plBench))

print("Redis \(server.port) on loopback, one connection, median of \(rounds) rounds")
print("")
print("| measurement | ops/s | µs/op | p50 µs | p99 µs | vs redis-benchmark |")
print("|---|---:|---:|---:|---:|---:|")
func row(_ name: String, _ f: Figures, _ ratio: String) {
    print("| \(name) | \(fmt(f.opsPerSecond, 0)) | \(fmt(1e6 / f.opsPerSecond, 2)) | \(fmt(f.p50Micros)) | \(fmt(f.p99Micros)) | \(ratio) |")
}
let rtOverhead = (rb.opsPerSecond / rs.opsPerSecond - 1) * 100
let rtAsyncOverhead = (rb.opsPerSecond / ra.opsPerSecond - 1) * 100
row("GET round trip, redis-benchmark -c 1", rb, "baseline")
row("GET round trip, RedisConnection", rs, String(format: "%+.1f%% time per op", rtOverhead))
row("GET round trip, RedisClient (async)", ra, String(format: "%+.1f%% time per op", rtAsyncOverhead))
row("GET pipelined ×100, redis-benchmark -P 100", pb, "baseline")
row("GET pipelined ×100, RedisConnection", ps, String(format: "%.0f%% of throughput", ps.opsPerSecond / pb.opsPerSecond * 100))
print("")
let pipelineShare = ps.opsPerSecond / pb.opsPerSecond * 100
print("Goals: round-trip overhead < 10% (RedisConnection \(String(format: "%+.1f", rtOverhead))%) — \(rtOverhead < 10 ? "met" : "NOT met"); "
    + "pipelined throughput ≥ 80% (\(String(format: "%.0f", pipelineShare))%) — \(pipelineShare >= 80 ? "met" : "NOT met")")
