// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so the product never depends on the harness.
// Run: cd Benchmarks && swift package benchmark        (ns/op, allocations, p50/p99)
//      cd Benchmarks && swift run -c release redis-comparison   (ratios against redis-benchmark)
//      cd Benchmarks && swift run -c release hook-comparison    (evaluation with and without a hook, beside a dictionary)
//      cd Benchmarks && swift run -c release fleet-load         (1,000 clients: propagation, Redis cost, cold start)
//      cd Benchmarks && swift run -c release ofrep-load --url … (HTTP latency at a fixed request rate)
//
// The benchmarks measure the package's own modules, whose shared API is `package` (visible only
// inside one SwiftPM package) and which are not products. So this package compiles those modules
// itself, from the root's sources through the symbolic link `Root` (→ ../Sources): the targets
// below mirror the root Package.swift's (same sources, same dependencies; keep them in step —
// Benchmarks/smoke, run by CI, fails when they drift).
let package = Package(
    name: "FlagpoleBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ofrep-load", targets: ["OFREPLoad"]),
    ],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // MARK: The root package's modules (Root → ../Sources), as the root Package.swift defines them.
        .systemLibrary(name: "CHiredis", path: "Root/CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "FlagpoleRedis", dependencies: ["CHiredis", .product(name: "Logging", package: "swift-log")], path: "Root/FlagpoleRedis"),
        .target(name: "FlagpoleCore", dependencies: [.product(name: "Yams", package: "Yams")], path: "Root/FlagpoleCore"),
        .target(name: "FlagpoleRollout", dependencies: ["FlagpoleCore"], path: "Root/FlagpoleRollout"),
        .target(name: "FlagpoleStore", dependencies: ["FlagpoleCore", "FlagpoleRollout", "FlagpoleRedis"], path: "Root/FlagpoleStore"),
        .target(
            name: "Flagpole",
            dependencies: [
                "FlagpoleCore", "FlagpoleRollout", "FlagpoleRedis", "FlagpoleStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Root/Flagpole",
            exclude: ["Flagpole.docc"]
        ),
        .target(
            name: "FlagpoleControl",
            dependencies: [
                "FlagpoleCore", "FlagpoleRollout", "FlagpoleRedis", "FlagpoleStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Root/FlagpoleControl"
        ),
        .target(name: "FlagpoleTestKit", dependencies: ["Flagpole", "FlagpoleCore", "FlagpoleStore"], path: "Root/FlagpoleTestKit"),
        .target(
            name: "FlagpoleTesting",
            dependencies: [
                "FlagpoleRedis", .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Root/FlagpoleTesting"
        ),

        // MARK: The benchmarks
        .executableTarget(
            name: "RedisBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "FlagpoleRedis",
                "FlagpoleTesting",
            ],
            path: "Benchmarks/RedisBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "sync-benchmark",
            dependencies: [
                "FlagpoleControl",
                "FlagpoleStore",
                "FlagpoleCore",
                "FlagpoleRedis",
                "FlagpoleTesting",
            ],
            path: "Sources/SyncBenchmark"
        ),
        .executableTarget(
            name: "ClientBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "Flagpole",
                "FlagpoleCore",
                "FlagpoleControl",
                "FlagpoleStore",
                "FlagpoleRedis",
                "FlagpoleTesting",
            ],
            path: "Benchmarks/ClientBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "redis-comparison",
            dependencies: [
                "CHiredisBaseline",
                "FlagpoleRedis",
                "FlagpoleTesting",
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
                "FlagpoleCore",
            ],
            path: "Benchmarks/EvaluationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "evaluation-comparison",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "FlagpoleCore",
            ],
            path: "Sources/EvaluationComparison"
        ),
        .executableTarget(
            name: "hook-comparison",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "Flagpole",
                "FlagpoleTestKit",
            ],
            path: "Sources/HookComparison"
        ),
        .executableTarget(
            name: "load-benchmark",
            dependencies: [
                "FlagpoleCore",
            ],
            path: "Sources/LoadBenchmark"
        ),
        .executableTarget(
            name: "fleet-load",
            dependencies: [
                "Flagpole",
                "FlagpoleControl",
                "FlagpoleStore",
                "FlagpoleCore",
                "FlagpoleRedis",
                "FlagpoleTesting",
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
