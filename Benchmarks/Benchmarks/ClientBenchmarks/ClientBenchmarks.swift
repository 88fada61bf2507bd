import Benchmark
import Flagpole
import FlagpoleCore
import FlagpoleControl
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Synchronization

// The client library, measured through its public API against a real redis-server on loopback.
//
//   cd Benchmarks && swift package --disable-sandbox benchmark --target ClientBenchmarks
//
// The propagation benchmark re-runs this executable as child processes (FLAGPOLE_BENCH_CHILD),
// each holding 50 clients (or 50 raw subscribers), so that 100 of them in two processes follow
// one Redis.

nonisolated(unsafe) var server: RedisServer?
nonisolated(unsafe) var client: FlagpoleClient?
nonisolated(unsafe) var clientTask: Task<Void, any Error>?

/// Flags of the evaluation benchmarks (environment `bench`): 100 simple ones and four named ones.
let simpleFlags = 100
func benchDefinitions() -> [String: JSONValue] {
    var defs: [String: JSONValue] = [:]
    for i in 0..<simpleFlags { defs["flag-\(i)"] = simpleFlag(i % 2 == 0 ? "on" : "off") }
    defs["static-bool"] = simpleFlag("on")
    defs["toggled"] = simpleFlag("off")
    defs["rule"] = [
        "state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off",
        "targeting": ["if": [["ends_with": [["var": "email"], "@example.com"]], "on", "off"]],
    ]
    defs["split"] = [
        "state": "ENABLED", "variants": ["a": "A", "b": "B"], "defaultVariant": "a",
        "targeting": ["fractional": [["a", 50], ["b", 50]]],
    ]
    return defs
}

func simpleFlag(_ defaultVariant: String) -> JSONValue {
    ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": .string(defaultVariant)]
}

/// Writes flags into an environment the way a sync does (one atomic write).
func seed(_ environment: String, _ definitions: [String: JSONValue], on redis: RedisClient) async throws {
    let store = try FlagStore(client: redis, environment: environment)
    var change = StoreChange(audit: AuditEntry(action: "sync", actor: "bench", at: 0, flags: definitions.keys.sorted()))
    change.setDefinitions = definitions
    change.meta = ["fractionalAlgorithm": "v3", "flagSetMetadata": "{}"]
    change.metadataChanged = true
    try await store.apply(change, expectedRevision: try await store.revision())
}

func configuration(_ environment: String, url: String, application: String = "bench") throws -> FlagpoleClient.Configuration {
    var c = FlagpoleClient.Configuration(redis: try RedisConfiguration(url: url), environment: environment, application: application)
    c.snapshotPath = nil
    return c
}

/// Monotonic nanoseconds, comparable across processes on one machine.
func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// The process's resident memory (from /proc/self/statm). Freed memory the allocator keeps counts
/// too, so a figure from it is an upper bound.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let parts = text.split(separator: " ")
    return parts.count > 1 ? (Int(parts[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// Gives freed heap memory back to the system (glibc's `malloc_trim`), so it leaves the figure.
func trimHeap() {
    guard let symbol = dlsym(nil, "malloc_trim") else { return }
    _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
}

/// CPU time of the calling thread, in nanoseconds.
func threadCPUNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Runs `threads` threads that evaluate `total / threads` times each, while the flag `toggled`
/// changes every 10 ms; returns the evaluating threads' CPU nanoseconds per evaluation (the
/// update's own work is not evaluation cost, and is the same whatever the thread count).
func contended(threads: Int, total: Int, control: EnvironmentControl) async throws -> Int {
    let c = client!
    let stop = Atomic<Bool>(false)
    let updater = Task {
        var on = false
        while !stop.load(ordering: .relaxed) {
            on.toggle()
            _ = try await control.apply(.set(variant: on ? "on" : "off"), flag: "toggled", actor: "bench", reason: nil)
            try await Task.sleep(for: .milliseconds(10))
        }
    }
    let done = DispatchSemaphore(value: 0)
    let perThread = total / threads
    let keys = ["toggled", "static-bool"]
    let cpu = Atomic<Int>(0)
    for _ in 0..<threads {
        Thread {
            let start = threadCPUNanos()
            var hits = 0
            for i in 0..<perThread where c.bool(keys[i & 1], default: false) { hits &+= 1 }
            blackHole(hits)
            cpu.add(Int(threadCPUNanos() - start), ordering: .relaxed)
            done.signal()
        }.start()
    }
    for _ in 0..<threads { done.wait() }
    stop.store(true, ordering: .relaxed)
    _ = try? await updater.value
    return cpu.load(ordering: .relaxed) / (perThread * threads)
}

let benchmarks: @Sendable () -> Void = {
    if ProcessInfo.processInfo.environment["FLAGPOLE_BENCH_CHILD"] != nil {
        PropagationChild.main()
        exit(0)
    }
    // Each sample is 1,000 operations; figures are per operation.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .cpuTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100_000
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
        let redis = RedisClient(configuration: s.configuration)
        try await seed("bench", benchDefinitions(), on: redis)
        let c = FlagpoleClient(configuration: try configuration("bench", url: s.url))
        client = c
        clientTask = Task { try await c.run() }
        guard await c.waitUntilReady(timeout: .seconds(10)), c.freshness.source == .redis else {
            fatalError("the benchmark client did not load its flags")
        }
    }
    Benchmark.teardown = {
        clientTask?.cancel()
        _ = try? await clientTask?.value
        server?.remove()
        server = nil
    }

    let key = ["static-bool"][0]
    var dictionary: [String: Bool] = [:]
    for (k, v) in benchDefinitions() { dictionary[k] = v["defaultVariant"] == "on" }
    let table = dictionary

    Benchmark("Baseline: [String: Bool] lookup") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(table[key] ?? false) }
    }

    let compiled = CompiledFlagSet(["flags": .object(benchDefinitions())])
    Benchmark("Reference: CompiledFlagSet.bool, static flag (no client)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(compiled.bool(key, default: false).value) }
    }

    Benchmark("Client bool, static flag (key lookup included)") { benchmark in
        let c = client!
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(c.bool(key, default: false)) }
    }

    Benchmark("Client boolDetails, static flag") { benchmark in
        let c = client!
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(c.boolDetails(key, default: false)) }
    }

    Benchmark("Client bool, rule (ends_with on an attribute)") { benchmark in
        let c = client!
        let context = EvaluationContext(targetingKey: "user-1", attributes: ["email": "ann@example.com"])
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(c.bool("rule", default: false, context: context)) }
    }

    Benchmark("Client string, split (fractional 50/50)") { benchmark in
        let c = client!
        let contexts = (0..<64).map { EvaluationContext(targetingKey: "user-\($0)") }
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations { blackHole(c.string("split", default: "", context: contexts[i & 63])) }
    }

    Benchmark("recordOutcome (flag, variant, success, duration)") { benchmark in
        let c = client!
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            c.recordOutcome(flag: key, variant: "on", success: i & 15 != 0, duration: .microseconds(250))
        }
    }

    let cpuPerEvaluation = BenchmarkMetric.custom("CPU ns per evaluation", useScalingFactor: false)
    for threads in [1, 8] {
        Benchmark(
            "Client bool, \(threads) thread\(threads == 1 ? "" : "s"), an update every 10 ms",
            configuration: .init(
                metrics: [.wallClock, .cpuTotal, cpuPerEvaluation], warmupIterations: 1, scalingFactor: .one, maxDuration: .seconds(10),
                maxIterations: 5)
        ) { benchmark in
            let redis = RedisClient(configuration: server!.configuration)
            let control = try EnvironmentControl(environment: "bench", client: redis, directory: FlagDirectory(root: "/nonexistent"))
            benchmark.startMeasurement()
            let ns = try await contended(threads: threads, total: smoke ? 40_000 : 4_000_000, control: control)
            benchmark.stopMeasurement()
            benchmark.measurement(cpuPerEvaluation, ns)
        }
    }

    let bytesPerFlag = BenchmarkMetric.custom("snapshot bytes per simple flag", useScalingFactor: false)
    Benchmark(
        "Snapshot memory: 10,000 simple flags",
        configuration: .init(metrics: [bytesPerFlag], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(30), maxIterations: 1)
    ) { benchmark in
        let redis = RedisClient(configuration: server!.configuration)
        var defs: [String: JSONValue] = [:]
        for i in 0..<10_000 { defs["memory-flag-\(i)"] = simpleFlag(i % 2 == 0 ? "on" : "off") }
        try await seed("memory", defs, on: redis)
        trimHeap()
        let before = residentBytes()
        let c = FlagpoleClient(configuration: try configuration("memory", url: server!.url))
        let task = Task { try await c.run() }
        guard await c.waitUntilReady(timeout: .seconds(30)) else { fatalError("not ready") }
        try await Task.sleep(for: .milliseconds(300))
        trimHeap()
        let after = residentBytes()
        benchmark.measurement(bytesPerFlag, (after - before) / 10_000)
        blackHole(c.bool("memory-flag-1", default: false))
        task.cancel()
        _ = try? await task.value
    }

    let flagpoleLatency = BenchmarkMetric.custom("set → 100 clients applied (µs)", useScalingFactor: false)
    let rawLatency = BenchmarkMetric.custom("raw PUBLISH → 100 subscribers (µs)", useScalingFactor: false)
    Benchmark(
        "Propagation: 1,000 changes to 100 clients in 2 processes, beside raw pub/sub",
        configuration: .init(
            metrics: [flagpoleLatency, rawLatency], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(120), maxIterations: 1)
    ) { benchmark in
        let s = server!
        let redis = RedisClient(configuration: s.configuration)
        try await seed("prop", ["switch": simpleFlag("off")], on: redis)
        let control = try EnvironmentControl(environment: "prop", client: redis, directory: FlagDirectory(root: "/nonexistent"))

        let clientsChildren = try (0..<2).map { _ in try PropagationParent.Child(mode: "clients", url: s.url, count: 50) }
        for child in clientsChildren { child.waitReady() }
        var on = false
        for _ in 0..<(smoke ? 10 : 1000) {
            on.toggle()
            // The clock starts before the write: what a user waits for is write + propagation.
            let started = monotonicNanos()
            let outcome = try await control.apply(.set(variant: on ? "on" : "off"), flag: "switch", actor: "bench", reason: nil)
            guard let revision = outcome.revision else { fatalError("no change written") }
            let applied = clientsChildren.map { $0.wait(for: revision) }.max()!
            // Never clamped: a negative latency means the measurement is broken, and fails.
            guard applied >= started else { fatalError("revision \(revision) applied \(started - applied) ns before its write started") }
            benchmark.measurement(flagpoleLatency, Int((applied - started) / 1000))
        }
        for child in clientsChildren { child.stop() }

        let rawChildren = try (0..<2).map { _ in try PropagationParent.Child(mode: "raw", url: s.url, count: 50) }
        for child in rawChildren { child.waitReady() }
        for sequence in 1...(smoke ? 10 : 1000) {
            // Timed as the set above: from before the write.
            let started = monotonicNanos()
            let receivers = try await redis.send("PUBLISH", "bench:raw", String(sequence))
            guard receivers.integer == 100 else { fatalError("PUBLISH \(sequence) reached \(String(describing: receivers)), not 100 subscribers") }
            let received = rawChildren.map { $0.wait(for: Int64(sequence)) }.max()!
            guard received >= started else { fatalError("message \(sequence) received \(started - received) ns before it was published") }
            benchmark.measurement(rawLatency, Int((received - started) / 1000))
        }
        for child in rawChildren { child.stop() }
    }
}
