// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so the product never depends on the harness.
// Run: cd Benchmarks && swift package benchmark        (ns/op, allocations, p50/p99)
//      cd Benchmarks && swift run -c release redis-comparison   (ratios against redis-benchmark)
//      cd Benchmarks && swift run -c release hook-comparison    (evaluation with and without a hook, beside a dictionary)
//      cd Benchmarks && swift run -c release fleet-load         (1,000 clients: propagation, Redis cost, cold start)
//      cd Benchmarks && swift run -c release ofrep-load --url … (HTTP latency at a fixed request rate)
let package = Package(
    name: "FlagpoleBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ofrep-load", targets: ["OFREPLoad"]),
    ],
    dependencies: [
        .package(name: "Flagpole", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "RedisBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FlagpoleRedis", package: "Flagpole"),
                .product(name: "FlagpoleTesting", package: "Flagpole"),
            ],
            path: "Benchmarks/RedisBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "sync-benchmark",
            dependencies: [
                .product(name: "FlagpoleControl", package: "Flagpole"),
                .product(name: "FlagpoleStore", package: "Flagpole"),
                .product(name: "FlagpoleCore", package: "Flagpole"),
                .product(name: "FlagpoleRedis", package: "Flagpole"),
                .product(name: "FlagpoleTesting", package: "Flagpole"),
            ],
            path: "Sources/SyncBenchmark"
        ),
        .executableTarget(
            name: "ClientBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Flagpole", package: "Flagpole"),
                .product(name: "FlagpoleControl", package: "Flagpole"),
                .product(name: "FlagpoleStore", package: "Flagpole"),
                .product(name: "FlagpoleRedis", package: "Flagpole"),
                .product(name: "FlagpoleTesting", package: "Flagpole"),
            ],
            path: "Benchmarks/ClientBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "redis-comparison",
            dependencies: [
                "CHiredisBaseline",
                .product(name: "FlagpoleRedis", package: "Flagpole"),
                .product(name: "FlagpoleTesting", package: "Flagpole"),
            ],
            path: "Sources/RedisComparison"
        ),
        // hiredis for redis-comparison's baseline: the same calls without the Swift wrapper.
        .systemLibrary(
            name: "CHiredisBaseline",
            path: "Sources/CHiredisBaseline",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .executableTarget(
            name: "EvaluationBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FlagpoleCore", package: "Flagpole"),
            ],
            path: "Benchmarks/EvaluationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "evaluation-comparison",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FlagpoleCore", package: "Flagpole"),
            ],
            path: "Sources/EvaluationComparison"
        ),
        .executableTarget(
            name: "hook-comparison",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Flagpole", package: "Flagpole"),
                .product(name: "FlagpoleTestKit", package: "Flagpole"),
            ],
            path: "Sources/HookComparison"
        ),
        .executableTarget(
            name: "load-benchmark",
            dependencies: [
                .product(name: "FlagpoleCore", package: "Flagpole"),
            ],
            path: "Sources/LoadBenchmark"
        ),
        .executableTarget(
            name: "fleet-load",
            dependencies: [
                .product(name: "Flagpole", package: "Flagpole"),
                .product(name: "FlagpoleControl", package: "Flagpole"),
                .product(name: "FlagpoleStore", package: "Flagpole"),
                .product(name: "FlagpoleCore", package: "Flagpole"),
                .product(name: "FlagpoleRedis", package: "Flagpole"),
                .product(name: "FlagpoleTesting", package: "Flagpole"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/FleetLoad"
        ),
        .executableTarget(
            name: "OFREPLoad",
            path: "Sources/OFREPLoad"
        ),
    ]
)
