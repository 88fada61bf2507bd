// Evaluation cost per flag kind: ns per evaluation, allocations per evaluation, p50/p99.
//
//   cd Benchmarks && swift package --disable-sandbox benchmark --target EvaluationBenchmarks
//
// The rows of the "Flag files" issue, each a flag of Fixtures/evaluation-flags.json read through
// the typed API the way an app reads it, over eight realistic contexts in turn; beside them the
// floor, a bare `[String: Bool]` lookup of the static flag's key. Each sample is 1,000
// evaluations, so the figures are per evaluation. `evaluation-comparison` prints the same rows
// with ratios against the floor and against the Python reference evaluator.
import Benchmark
import FlagpoleCore
import Foundation

let fixture = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/evaluation-flags.json")

/// Eight users as an app would describe them: a targeting key and a handful of attributes.
/// The same users as in Sources/EvaluationComparison, so the two report the same work.
let contexts: [EvaluationContext] = [
    ("user-10231", "ann@example.com", "2.3.1", "pro", "US"),
    ("user-48812", "bo@gmail.com", "1.9.4", "free", "DE"),
    ("user-90017", "cy@flagpole.dev", "2.1.0", "enterprise", "FR"),
    ("user-33105", "di@outlook.com", "2.0.9", "business", "GB"),
    ("user-71244", "ed@example.com", "3.0.0-beta.2", "free", "NL"),
    ("user-15530", "fa@proton.me", "2.1.0-rc.1", "pro", "BR"),
    ("user-62098", "gu@yahoo.co.jp", "2.4.0", "free", "JP"),
    ("user-85467", "hi@example.org", "1.12.0", "pro", "SE"),
].enumerated().map { i, user in
    EvaluationContext(
        targetingKey: user.0,
        attributes: [
            "email": .string(user.1), "version": .string(user.2), "plan": .string(user.3),
            "country": .string(user.4), "appBuild": .int(4512 + Int64(i)), "beta": .bool(i % 3 == 0),
            "locale": .string("en-US"),
        ])
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )
    // Benchmarks/smoke (CI): a few iterations each, to check that they run, not how fast.
    let smoke = ProcessInfo.processInfo.environment["FLAGPOLE_BENCH_SMOKE"] != nil
    if smoke {
        Benchmark.defaultConfiguration.maxDuration = .milliseconds(200)
        Benchmark.defaultConfiguration.maxIterations = 20
    }

    let flags: CompiledFlagSet
    do {
        flags = CompiledFlagSet(try JSONParser.parse(String(contentsOf: fixture, encoding: .utf8)))
    } catch {
        fatalError("cannot read \(fixture.path): \(error)")
    }
    let bare = Dictionary(uniqueKeysWithValues: flags.flagKeys.map { ($0, $0 == "dark-mode") })

    Benchmark("bare [String: Bool] lookup (the floor)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(bare["dark-mode"] ?? false)
        }
    }

    Benchmark("static boolean") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(flags.bool("dark-mode", default: false, context: contexts[i & 7]).value)
        }
    }

    Benchmark("if + ends_with rule") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(flags.bool("staff-banner", default: false, context: contexts[i & 7]).value)
        }
    }

    Benchmark("fractional split 25/75") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(flags.bool("checkout-experiment", default: false, context: contexts[i & 7]).value)
        }
    }

    Benchmark("sem_ver rule") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(flags.string("sync-protocol", default: "v1", context: contexts[i & 7]).value)
        }
    }

    Benchmark("three rules via $ref") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(flags.string("pricing-page", default: "usd-prices", context: contexts[i & 7]).value)
        }
    }
}
