// swift-tools-version:6.1
import PackageDescription

// Linux only. No Apple platform is declared: nothing here is built or tested on one (the socket
// layer of FlagpoleRedis and of FlagpoleTesting is written and tested against Glibc), so none is
// promised.
let package = Package(
    name: "Flagpole",
    products: [
        // What apps use: the client library, and its in-memory test double for their test targets.
        // The other modules are the package's own (flagctl, the daemon, the tests): not products, and
        // what they share is `package`, not `public`. docs/client.md lists the public API.
        .library(name: "Flagpole", targets: ["Flagpole"]),
        .library(name: "FlagpoleTestKit", targets: ["FlagpoleTestKit"]),
        .executable(name: "flagctl", targets: ["flagctl"]),
        .executable(name: "flagpole-traffic", targets: ["flagpole-traffic"]),
    ],
    // The trait "Tools" (on by default) is everything but the client library: flagctl and its daemon,
    // the examples, the test support. An app that embeds only the client turns it off on its
    // dependency line (`traits: []`), and then resolves and builds only swift-log, swift-metrics,
    // swift-service-lifecycle and Yams with it (docs/client.md).
    traits: [
        .trait(
            name: "Tools",
            description:
                "flagctl, the daemon, the examples and the test support (their packages: argument-parser, Hummingbird, SwiftNIO, async-http-client, swift-prometheus, gRPC, SwiftProtobuf)"
        ),
        .default(enabledTraits: ["Tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        // /metrics (the daemon's, flagpole-traffic's) from one registry; Prometheus queries and alerts.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // `swift package generate-documentation --target Flagpole` (the DocC catalog; CI builds it).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
        // flagd's sync protocol (flagd.sync.v1) in `flagctl daemon` only: FlagpoleSync. The generated code is
        // committed (scripts/generate-protos), so no build runs the protoc plugins.
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // hiredis, the C client (Debian: libhiredis-dev). Only FlagpoleRedis imports it.
        // No pkgConfig: hiredis.pc only adds /usr/include/hiredis and -D_FILE_OFFSET_BITS=64 (a no-op on
        // 64-bit Linux), and SwiftPM warned "prohibited flag(s)" on every build. The headers are found
        // as <hiredis/hiredis.h> on the default include path; scripts/install-deps.sh installs them.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // Redis over hiredis: connection, client with reconnects, pub/sub subscriber.
        .target(
            name: "FlagpoleRedis",
            dependencies: [
                "CHiredis",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The pure core: flag model, decoding, validation, JsonLogic evaluation. No I/O.
        .target(
            name: "FlagpoleCore",
            dependencies: [
                .product(name: "Yams", package: "Yams")
            ]
        ),
        // The project's rollout policy, pure: the project config (guard policy, freeze windows, alert
        // targets), the judge's statistics, the simulator. No I/O.
        .target(
            name: "FlagpoleRollout",
            dependencies: ["FlagpoleCore"]
        ),
        // Flagpole's data in Redis: the key layout, atomic revisioned writes, snapshot reads.
        .target(
            name: "FlagpoleStore",
            dependencies: [
                "FlagpoleCore",
                "FlagpoleRollout",
                "FlagpoleRedis",
            ]
        ),
        // The client library applications embed.
        .target(
            name: "Flagpole",
            dependencies: [
                "FlagpoleCore",
                "FlagpoleRollout",
                "FlagpoleRedis",
                "FlagpoleStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The control side: doctor, sync, rollouts, the watcher, alerts.
        .target(
            name: "FlagpoleControl",
            dependencies: [
                "FlagpoleCore",
                "FlagpoleRollout",
                "FlagpoleRedis",
                "FlagpoleStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client", condition: .when(traits: ["Tools"])),
                .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["Tools"])),
                .product(name: "NIOHTTP1", package: "swift-nio", condition: .when(traits: ["Tools"])),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
            ]
        ),
        // What `flagctl daemon` serves over HTTP: OFREP, outcome reporting, health and metrics, the web console.
        .target(
            name: "FlagpoleServer",
            dependencies: [
                "Flagpole",
                "FlagpoleCore",
                "FlagpoleStore",
                // The web console (Console/): its pages read through, and its actions go through, the CLI's code.
                "FlagpoleControl",
                "FlagpoleRollout",
                "FlagpoleRedis",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Tools"])),
                .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["Tools"])),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras", condition: .when(traits: ["Tools"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
            ]
        ),
        // flagd's sync service (flagd.sync.v1.FlagSyncService) over gRPC: the effective flag set of an
        // environment for flagd's in-process providers. Only flagctl depends on it: neither the client
        // library nor FlagpoleTestKit resolves gRPC.
        .target(
            name: "FlagpoleSync",
            dependencies: [
                "Flagpole",
                "FlagpoleCore",
                "FlagpoleServer",
                .product(name: "GRPCCore", package: "grpc-swift-2", condition: .when(traits: ["Tools"])),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport", condition: .when(traits: ["Tools"])),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf", condition: .when(traits: ["Tools"])),
                .product(name: "SwiftProtobuf", package: "swift-protobuf", condition: .when(traits: ["Tools"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Proto"]  // the .proto files the generated code comes from (scripts/generate-protos)
        ),
        // For an app's tests: InMemoryFlags, flagd definitions served by a client that never connects.
        .target(
            name: "FlagpoleTestKit",
            dependencies: ["Flagpole", "FlagpoleCore", "FlagpoleStore"]
        ),
        // Test support: a real redis-server (and prometheus) per suite, temporary folders, waiting with deadlines.
        .target(
            name: "FlagpoleTesting",
            dependencies: [
                "FlagpoleRedis", .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client", condition: .when(traits: ["Tools"])),
                .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["Tools"])),
            ]
        ),
        .executableTarget(
            name: "flagctl",
            dependencies: [
                "FlagpoleCore",
                "FlagpoleRollout",
                "FlagpoleRedis",
                "FlagpoleControl",
                "FlagpoleStore",
                "FlagpoleServer",
                "FlagpoleSync",
                "Flagpole",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["Tools"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
            ]
        ),
        // The README's "Use it in your Swift app": an HTTP service that reads a flag per request.
        .executableTarget(
            name: "HelloFlags",
            dependencies: [
                "Flagpole",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Tools"])),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/HelloFlags"
        ),
        // docs/client.md's plain ServiceGroup example: the client beside the app's own work, no HTTP.
        .executableTarget(
            name: "PlainService",
            dependencies: [
                "Flagpole",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/PlainService"
        ),
        // flagpole-traffic: synthetic traffic through the client library (rollout demos, the end-to-end test, load tests).
        .executableTarget(
            name: "flagpole-traffic",
            dependencies: [
                "Flagpole",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["Tools"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Tools"])),  // its own /metrics
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
            ],
            path: "Examples/TrafficGenerator"
        ),
        .testTarget(
            name: "FlagpoleRedisTests",
            dependencies: ["FlagpoleRedis", "FlagpoleTesting"]
        ),
        .testTarget(
            name: "FlagpoleRolloutTests",
            dependencies: ["FlagpoleRollout", "FlagpoleCore"]
        ),
        .testTarget(
            name: "FlagpoleCoreTests",
            dependencies: ["FlagpoleCore", "FlagpoleRollout"],  // FlagpoleRollout: loading with the guard-policy rules
            exclude: ["Fuzz"]  // the fuzzers' regression inputs, read by FuzzRegressionTests
        ),
        .testTarget(
            name: "FlagpoleTests",
            dependencies: [
                "Flagpole", "FlagpoleStore", "FlagpoleControl", "FlagpoleTesting",
                "HelloFlags",  // built for the test that runs the example, and tested with FlagpoleTestKit
                "PlainService",  // built for the test that runs it
                "FlagpoleTestKit",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
            ]
        ),
        .testTarget(
            name: "FlagpoleStoreTests",
            dependencies: ["FlagpoleStore", "FlagpoleControl", "FlagpoleTesting"]
        ),
        .testTarget(
            name: "FlagpoleServerTests",
            dependencies: [
                "FlagpoleServer", "Flagpole", "FlagpoleStore", "FlagpoleControl", "FlagpoleTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Tools"])),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
                .product(name: "NIOEmbedded", package: "swift-nio", condition: .when(traits: ["Tools"])),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras", condition: .when(traits: ["Tools"])),
            ]
        ),
        .testTarget(
            name: "FlagpoleControlTests",
            dependencies: [
                "FlagpoleControl", "FlagpoleStore", "FlagpoleCore", "FlagpoleTesting",
                // Hummingbird: stand-in webhook and Prometheus servers.
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Tools"])),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Tools"])),
            ]
        ),
        .testTarget(
            name: "FlagctlTests",
            dependencies: [
                "flagctl", "FlagpoleTesting", "FlagpoleControl", "Flagpole", "FlagpoleRedis",
                "flagpole-traffic",  // built for the end-to-end rollout tests
                "FlagpoleSync", "FlagpoleServer",  // flagd sync: its access rules, and a gRPC client against the daemon
                .product(name: "GRPCCore", package: "grpc-swift-2", condition: .when(traits: ["Tools"])),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport", condition: .when(traits: ["Tools"])),
            ]
        ),
    ]
)
