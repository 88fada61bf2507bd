// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the flag-file loader and the JsonLogic engine, outside CI and apart from
// the product (like Benchmarks/). How to run them: README.md.
let package = Package(
    name: "FlagpoleFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Flagpole", path: "../"),
    ],
    targets: [
        // What both fuzzers run, and the decoder that turns a crash input into a readable case.
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "FlagpoleCore", package: "Flagpole")]
        ),
        // The declaration of libFuzzer's driver, which the targets' `main` calls.
        .target(name: "CFuzzerDriver"),
        // Bytes as a YAML or JSON flag file: load (parse, merge, validate), compile, evaluate.
        .executableTarget(name: "FuzzFlagFile", dependencies: ["FuzzSupport", "CFuzzerDriver"]),
        // A JsonLogic rule and an evaluation context, as JSON text or built from the bytes.
        .executableTarget(name: "FuzzJsonLogic", dependencies: ["FuzzSupport", "CFuzzerDriver"]),
        // `fuzz-decode FILE…`: prints what a fuzz input means (the flag file or the rule and context).
        .executableTarget(name: "fuzz-decode", dependencies: ["FuzzSupport"]),
    ]
)
