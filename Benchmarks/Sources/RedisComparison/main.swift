// Compares Flagpole's Redis connection with redis-benchmark against the same server, in one run.
//
//   cd Benchmarks && swift run -c release redis-comparison [--trials 15] [--no-pin]
//
// Round trip: sequential GETs on one connection (redis-benchmark -c 1 -P 1).
// Pipeline: GETs in batches of 100 on one connection (redis-benchmark -c 1 -P 100).
//
// A loopback round trip here is mostly the time to wake the other side, not either side's work:
// on this 2-core VM a wake-up across vCPUs costs tens of microseconds and varies by ±15% from one
// second to the next, more than the difference being measured (a plain C loop over the same
// hiredis calls lands anywhere from 10% under to 15% over redis-benchmark, run to run). So:
//  - many short trials, each running every client back to back in alternating order; each ratio
//    is the median of the trials' own ratios (paired, so slow drift cancels), printed with the
//    middle half of the trials' ratios;
//  - with 2 or more cores (unless --no-pin), two placements, each pinned with taskset:
//    "separate CPUs" (redis-server on CPU 0, the clients on CPU 1: a wake-up per reply, as over a
//    network) and
//    "one CPU" (all on CPU 1: no cross-CPU wake-ups, so a round trip is the two sides' own work
//    and a client's overhead shows undiluted).
import CHiredisBaseline
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

/// hiredis's own calls, without the wrapper: a blocking context with the same timeouts,
/// `redisCommandArgv` per GET, the reply freed unread. What RedisConnection adds is the
/// difference to this.
final class RawHiredis {
    let context: UnsafeMutablePointer<redisContext>
    /// `GET key:__rand_int__` as argv, made once.
    let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: 2)
    let lengths: [Int] = [3, 16]

    init(port: Int) throws {
        let timeout = timeval(tv_sec: 5, tv_usec: 0)
        guard let context = redisConnectWithTimeout("127.0.0.1", Int32(port), timeout) else {
            throw RedisServerError("hiredis could not connect to 127.0.0.1:\(port)")
        }
        guard context.pointee.err == 0 else {
            redisFree(context)
            throw RedisServerError("hiredis could not connect to 127.0.0.1:\(port)")
        }
        redisSetTimeout(context, timeout)
        self.context = context
        argv[0] = UnsafePointer(strdup("GET")!)
        argv[1] = UnsafePointer(strdup("key:__rand_int__")!)
    }

    deinit {
        redisFree(context)
        free(UnsafeMutablePointer(mutating: argv[0]))
        free(UnsafeMutablePointer(mutating: argv[1]))
        argv.deallocate()
    }

    func get() throws {
        guard let reply = redisCommandArgv(context, 2, argv, lengths) else { throw RedisServerError("hiredis GET failed") }
        freeReplyObject(reply)
    }

    /// Appends `count` GETs from a buffer formatted once (as redis-benchmark does), then reads and
    /// frees every reply.
    func pipeline(_ wire: [UInt8], count: Int) throws {
        let status = wire.withUnsafeBytes { redisAppendFormattedCommand(context, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard status == REDIS_OK else { throw RedisServerError("hiredis append failed") }
        for _ in 0..<count {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(context, &reply) == REDIS_OK, let reply else { throw RedisServerError("hiredis read failed") }
            defer { freeReplyObject(reply) }
            guard reply.assumingMemoryBound(to: redisReply.self).pointee.type == REDIS_REPLY_STRING else {
                throw RedisServerError("hiredis pipeline: unexpected reply type \(reply.assumingMemoryBound(to: redisReply.self).pointee.type)")
            }
        }
    }
}

func rawRoundTrip(port: Int, count: Int) throws -> Figures {
    let raw = try RawHiredis(port: port)
    for _ in 0..<1000 { try raw.get() }
    var samples = [Double]()
    samples.reserveCapacity(count)
    let clock = ContinuousClock()
    let start = clock.now
    var last = start
    for _ in 0..<count {
        try raw.get()
        let now = clock.now
        samples.append(last.duration(to: now).seconds * 1e6)
        last = now
    }
    samples.sort()
    return Figures(opsPerSecond: Double(count) / start.duration(to: last).seconds, p50Micros: percentile(samples, 0.5), p99Micros: percentile(samples, 0.99))
}

func rawPipeline(port: Int, batches: Int) throws -> Figures {
    let raw = try RawHiredis(port: port)
    let wire = Array(String(repeating: "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n", count: 100).utf8)
    for _ in 0..<50 { try raw.pipeline(wire, count: 100) }
    let start = ContinuousClock.now
    for _ in 0..<batches { try raw.pipeline(wire, count: 100) }
    return Figures(opsPerSecond: Double(batches * 100) / start.duration(to: .now).seconds)
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
    p.arguments = clientCPU.map { ["taskset", "-c", "\($0)"] }.map { $0 + ["redis-benchmark"] } ?? ["redis-benchmark"]
    p.arguments! += ["-h", "127.0.0.1", "-p", "\(port)", "-c", "1", "-n", "\(requests)", "-P", "\(pipeline)", "-t", "get", "--csv"]
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

/// Runs `taskset` with `arguments`; false when it fails.
func taskset(_ arguments: [String]) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["taskset"] + arguments
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}

var trials = 15
if let i = CommandLine.arguments.firstIndex(of: "--trials"), i + 1 < CommandLine.arguments.count, let r = Int(CommandLine.arguments[i + 1]), r > 0 {
    trials = r
}
let pin = !CommandLine.arguments.contains("--no-pin") && ProcessInfo.processInfo.activeProcessorCount >= 2

/// Where redis-server and the clients run.
struct Placement {
    var name: String
    var serverCPU: Int?
    var clientCPU: Int?
}

let server = try await RedisServer.start()
defer { server.remove() }
let config = server.configuration
_ = try RedisConnection(configuration: config).send(["SET", "key:__rand_int__", "xxx"])

/// The CPU the clients run on now (redis-benchmark is started under taskset when set).
nonisolated(unsafe) var clientCPU: Int? = nil

let placements: [Placement] =
    pin
    ? [Placement(name: "separate CPUs (redis-server on CPU 0, clients on CPU 1)", serverCPU: 0, clientCPU: 1),
       Placement(name: "one CPU (redis-server and clients on CPU 1)", serverCPU: 1, clientCPU: 1)]
    : [Placement(name: "not pinned", serverCPU: nil, clientCPU: nil)]

func quantile(_ xs: [Double], _ q: Double) -> Double {
    let s = xs.sorted()
    let position = q * Double(s.count - 1)
    let low = Int(position.rounded(.down)), high = Int(position.rounded(.up))
    return s[low] + (s[high] - s[low]) * (position - Double(low))
}

func summary(_ f: [Figures]) -> Figures {
    Figures(
        opsPerSecond: median(f.map(\.opsPerSecond)),
        p50Micros: f.first?.p50Micros == nil ? nil : median(f.compactMap(\.p50Micros)),
        p99Micros: f.first?.p99Micros == nil ? nil : median(f.compactMap(\.p99Micros)))
}

var verdicts: [String] = []
for placement in placements {
    if let cpu = placement.serverCPU, let pid = server.pid {
        guard taskset(["-a", "-p", "-c", "\(cpu)", "\(pid)"]), taskset(["-a", "-p", "-c", "\(placement.clientCPU!)", "\(getpid())"]) else {
            FileHandle.standardError.write(Data("redis-comparison: taskset failed; run with --no-pin\n".utf8))
            exit(1)
        }
    }
    clientCPU = placement.clientCPU

    var rtSwift: [Figures] = [], rtAsync: [Figures] = [], rtBench: [Figures] = [], rtRaw: [Figures] = []
    var plSwift: [Figures] = [], plBench: [Figures] = [], plRaw: [Figures] = []
    for trial in 1...trials {
        if trial % 2 == 1 {
            rtBench.append(try redisBenchmark(port: server.port, requests: 10_000, pipeline: 1))
            rtRaw.append(try rawRoundTrip(port: server.port, count: 10_000))
            rtSwift.append(try swiftRoundTrip(config, count: 10_000))
            rtAsync.append(try await swiftAsyncRoundTrip(config, count: 10_000))
            plBench.append(try redisBenchmark(port: server.port, requests: 300_000, pipeline: 100))
            plRaw.append(try rawPipeline(port: server.port, batches: 3_000))
            plSwift.append(try swiftPipeline(config, batches: 3_000))
        } else {
            rtAsync.append(try await swiftAsyncRoundTrip(config, count: 10_000))
            rtSwift.append(try swiftRoundTrip(config, count: 10_000))
            rtRaw.append(try rawRoundTrip(port: server.port, count: 10_000))
            rtBench.append(try redisBenchmark(port: server.port, requests: 10_000, pipeline: 1))
            plSwift.append(try swiftPipeline(config, batches: 3_000))
            plRaw.append(try rawPipeline(port: server.port, batches: 3_000))
            plBench.append(try redisBenchmark(port: server.port, requests: 300_000, pipeline: 100))
        }
    }
    FileHandle.standardError.write(Data("\(placement.name): \(trials) trials done\n".utf8))

    let (rs, ra, rb, ps, pb) = (summary(rtSwift), summary(rtAsync), summary(rtBench), summary(plSwift), summary(plBench))
    let (rr, pr) = (summary(rtRaw), summary(plRaw))
    // Each trial's ratio (its clients ran back to back), then the median and quartiles of those.
    let rtOverheads = zip(rtBench, rtSwift).map { ($0.opsPerSecond / $1.opsPerSecond - 1) * 100 }
    let rtAsyncOverheads = zip(rtBench, rtAsync).map { ($0.opsPerSecond / $1.opsPerSecond - 1) * 100 }
    let shares = zip(plSwift, plBench).map { $0.opsPerSecond / $1.opsPerSecond * 100 }
    let rawOverheads = zip(rtBench, rtRaw).map { ($0.opsPerSecond / $1.opsPerSecond - 1) * 100 }
    let rawShares = zip(plRaw, plBench).map { $0.opsPerSecond / $1.opsPerSecond * 100 }
    // What the wrapper adds over the same hiredis calls, trial by trial.
    let wrapperOverheads = zip(rtRaw, rtSwift).map { ($0.opsPerSecond / $1.opsPerSecond - 1) * 100 }
    let wrapperShares = zip(plSwift, plRaw).map { $0.opsPerSecond / $1.opsPerSecond * 100 }
    let (rtOverhead, rtAsyncOverhead, pipelineShare) = (median(rtOverheads), median(rtAsyncOverheads), median(shares))
    func spread(_ xs: [Double], _ format: String) -> String {
        String(format: format, quantile(xs, 0.25)) + " … " + String(format: format, quantile(xs, 0.75))
    }

    print("Redis \(server.port) on loopback, one connection, \(placement.name), median of \(trials) trials")
    print("")
    print("| measurement | ops/s | µs/op | p50 µs | p99 µs | vs redis-benchmark (median of trials) | middle half of trials |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    func row(_ name: String, _ f: Figures, _ ratio: String, _ range: String) {
        print("| \(name) | \(fmt(f.opsPerSecond, 0)) | \(fmt(1e6 / f.opsPerSecond, 2)) | \(fmt(f.p50Micros)) | \(fmt(f.p99Micros)) | \(ratio) | \(range) |")
    }
    row("GET round trip, redis-benchmark -c 1", rb, "baseline", "")
    row("GET round trip, hiredis from Swift, no wrapper", rr, String(format: "%+.1f%% time per op", median(rawOverheads)), spread(rawOverheads, "%+.1f%%"))
    row("GET round trip, RedisConnection", rs, String(format: "%+.1f%% time per op", rtOverhead), spread(rtOverheads, "%+.1f%%"))
    row("GET round trip, RedisClient (async)", ra, String(format: "%+.1f%% time per op", rtAsyncOverhead), spread(rtAsyncOverheads, "%+.1f%%"))
    row("GET pipelined ×100, redis-benchmark -P 100", pb, "baseline", "")
    row("GET pipelined ×100, hiredis from Swift, no wrapper", pr, String(format: "%.0f%% of throughput", median(rawShares)), spread(rawShares, "%.0f%%"))
    row("GET pipelined ×100, RedisConnection", ps, String(format: "%.0f%% of throughput", pipelineShare), spread(shares, "%.0f%%"))
    print("")
    print(String(format: "The wrapper itself, against the same hiredis calls (median of trials): round trip %+.1f%% time per op (middle half %@); pipelined %.0f%% of throughput (middle half %@).",
        median(wrapperOverheads), spread(wrapperOverheads, "%+.1f%%"), median(wrapperShares), spread(wrapperShares, "%.0f%%")))
    print("")
    let wrapperOverhead = median(wrapperOverheads)
    let verdict = "\(placement.name):\n"
        + "    the wrapper over the same hiredis calls: round trip \(String(format: "%+.1f", wrapperOverhead))% (goal < 10%) — \(wrapperOverhead < 10 ? "met" : "NOT met")\n"
        + "    against redis-benchmark: round trip \(String(format: "%+.1f", rtOverhead))% (goal < 10%) — \(rtOverhead < 10 ? "met" : "NOT met"); "
        + "pipelined \(String(format: "%.0f", pipelineShare))% of its throughput (goal ≥ 80%) — \(pipelineShare >= 80 ? "met" : "NOT met")"
    verdicts.append(verdict)
    fflush(nil)
}
print("Goals (the median of the trials' paired ratios):")
for verdict in verdicts { print("  " + verdict) }
