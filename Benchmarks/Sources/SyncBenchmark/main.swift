// Sync and runtime-change figures against a real local redis-server, in one run.
//
//   cd Benchmarks && swift run -c release sync-benchmark [--flags 10000] [--rounds 5]
//
// - full sync of N flags into an empty environment: load + validate the files, read Redis, plan, write;
// - changed sync: every flag's definition changed;
// - no-op sync: files unchanged since the last sync (the source-hash fast path), and files touched
//   without changing a flag (full validate + compare, nothing written);
// - runtime change (what `flagctl set` does once connected): read, check, atomic write; p50/p99 over 300;
// - the `flagctl set` process end to end beside `flagctl --help` and `/bin/true`, when
//   ../.build/release/flagctl exists (swift build -c release --product flagctl --static-swift-stdlib,
//   as Benchmarks/run-all builds it): the three run in
//   rotating order each round; every `set` targets a flag that has the variant, alternates `on`
//   and `off` so that each one writes, must exit 0 and must move the store's revision, or the
//   benchmark fails; differences and ratios are medians of the per-round ones, with their spread.
//
// Every timed operation is checked; one that fails aborts the benchmark (exit 1).
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation

func arg(_ name: String, _ fallback: Int) -> Int {
    if let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count, let v = Int(CommandLine.arguments[i + 1]) { return v }
    return fallback
}
let flagCount = arg("--flags", 10_000)
let rounds = arg("--rounds", 5)

func ms(_ d: Duration) -> Double { d.seconds * 1000 }
func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
func spread(_ xs: [Double]) -> String { let s = xs.sorted(); return "\(fmt(s.first!)) … \(fmt(s.last!))" }
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sync-benchmark: \(message)\n".utf8))
    exit(1)
}
func percentile(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }

/// A realistic mix: a third static booleans, a third email targeting, a third percentage splits.
func writeFlags(to dir: URL, version: Int) throws {
    var yaml = "flags:\n"
    for i in 0..<flagCount {
        switch i % 3 {
        case 0:
            yaml += "  flag-\(i):\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"\(version % 2 == 0 ? "off" : "on")\"\n"
        case 1:
            yaml += "  flag-\(i):\n    state: ENABLED\n    variants: {a: \"A\", b: \"B\"}\n    defaultVariant: a\n"
            yaml += "    targeting: {if: [{ends_with: [{var: email}, \"@team\(version).example\"]}, b, a]}\n"
        default:
            yaml += "  flag-\(i):\n    state: ENABLED\n    variants: {control: 0, treatment: 1}\n    defaultVariant: control\n"
            yaml += "    targeting: {fractional: [[control, \(90 - version % 10)], [treatment, \(10 + version % 10)]]}\n"
        }
    }
    try yaml.write(to: dir.appendingPathComponent("prod/flags.yaml"), atomically: true, encoding: .utf8)
}

let server = try await RedisServer.start()
defer { server.remove() }
let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-syncbench-\(UUID().uuidString.prefix(6))")
try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: root) }
let client = RedisClient(configuration: server.configuration)

var full: [Double] = [], changed: [Double] = [], noop: [Double] = [], noopCompared: [Double] = [], loadOnly: [Double] = []
for round in 0..<rounds {
    _ = try await client.send("FLUSHALL")
    try writeFlags(to: root, version: round * 2)
    let control = try EnvironmentControl(environment: "prod", client: client, directory: FlagDirectory(root: root.path))
    var t = ContinuousClock.now
    _ = try control.directory.loadEnvironment("prod")
    loadOnly.append(ms(t.duration(to: .now)))

    t = .now
    guard case .applied = try await control.sync(.init()) else { fatalError("first sync did not apply") }
    full.append(ms(t.duration(to: .now)))

    t = .now
    guard case .noChange = try await control.sync(.init()) else { fatalError("no-op sync wrote") }
    noop.append(ms(t.duration(to: .now)))

    // The same flags with a comment added: the files differ, so sync validates and compares everything.
    let file = root.appendingPathComponent("prod/flags.yaml")
    try ("# reviewed in round \(round)\n" + String(contentsOf: file, encoding: .utf8)).write(to: file, atomically: true, encoding: .utf8)
    t = .now
    guard case .noChange = try await control.sync(.init()) else { fatalError("a comment changed a flag") }
    noopCompared.append(ms(t.duration(to: .now)))

    try writeFlags(to: root, version: round * 2 + 1)
    t = .now
    guard case .applied(let plan, _) = try await control.sync(.init()), plan.changed.count == flagCount else { fatalError("changed sync") }
    changed.append(ms(t.duration(to: .now)))
}

// Runtime changes, in process.
let control = try EnvironmentControl(environment: "prod", client: client, directory: FlagDirectory(root: root.path))
var sets: [Double] = []
let changing = min(50, flagCount)
for i in 0..<300 {
    let t = ContinuousClock.now
    let outcome = try await control.apply(.enable((i / changing) % 2 == 1), flag: "flag-\(i % changing)", actor: "bench", reason: nil)
    sets.append(ms(t.duration(to: .now)))
    guard outcome.revision != nil else { fail("runtime change \(i) on flag-\(i % changing) wrote nothing") }
}

print("Flagpole sync benchmark: \(flagCount) flags (⅓ static, ⅓ targeting, ⅓ fractional), local redis-server, median of \(rounds) rounds")
print("")
print("| measurement | median ms | goal |")
print("|---|---:|---|")
print("| load + validate the files only | \(fmt(median(loadOnly))) | |")
print("| full sync into an empty environment (validate + diff + write) | \(fmt(median(full))) | < 1000 |")
print("| sync with every flag changed | \(fmt(median(changed))) | < 1000 |")
print("| no-op sync, files unchanged since the last sync (source hash matches) | \(fmt(median(noop))) | < 100 |")
print("| no-op sync, files touched (a comment): validate + compare all, nothing written | \(fmt(median(noopCompared))) | |")
print("| runtime change in process (read + check + atomic write), p50 / p99 | \(fmt(percentile(sets, 0.5))) / \(fmt(percentile(sets, 0.99))) | < 5 |")

let flagctl = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".build/release/flagctl")
if FileManager.default.isExecutableFile(atPath: flagctl.path) {
    /// Runs `executable` with `args`; the milliseconds it took, after checking it exited 0.
    func runProcess(_ executable: URL, _ args: [String]) throws -> Double {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        p.standardError = errors
        let t = ContinuousClock.now
        try p.run()
        p.waitUntilExit()
        let elapsed = ms(t.duration(to: .now))
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            fail("\(executable.lastPathComponent) \(args.joined(separator: " ")) failed (exit \(p.terminationStatus)): \(message)")
        }
        return elapsed
    }
    let trueURL = URL(fileURLWithPath: "/bin/true")
    // Flags with an "on" and an "off" variant: flag-0, flag-3, … (the static booleans).
    let targets = (0..<max(1, min(20, (flagCount + 2) / 3))).map { "flag-\($0 * 3)" }
    var baseline: [Double] = [], start: [Double] = [], whole: [Double] = []
    var startRatio: [Double] = [], setLessStart: [Double] = []
    for i in 0..<40 {
        let flag = targets[i % targets.count]
        let variant = (i / targets.count) % 2 == 0 ? "on" : "off"
        let before = try await control.store.read(flag: flag).revision
        var t = (0.0, 0.0, 0.0)
        for k in 0..<3 {
            switch (i + k) % 3 {
            case 0: t.0 = try runProcess(trueURL, [])
            case 1: t.1 = try runProcess(flagctl, ["--help"])
            default:
                t.2 = try runProcess(flagctl, ["set", flag, variant, "--env", "prod", "--flags", root.path, "--redis", server.url])
            }
        }
        let after = try await control.store.read(flag: flag).revision
        guard after > before else { fail("flagctl set \(flag) \(variant) exited 0 but wrote nothing (revision \(before) → \(after))") }
        baseline.append(t.0)
        start.append(t.1)
        whole.append(t.2)
        startRatio.append(t.1 / t.0)
        setLessStart.append(t.2 - t.1)
    }
    print("| `/bin/true` process (median, min … max) | \(fmt(median(baseline))) (\(spread(baseline))) | |")
    print("| `flagctl --help` process (median, min … max) | \(fmt(median(start))) (\(spread(start))) | |")
    print("| `flagctl --help` ÷ `/bin/true`, median of 40 paired ratios (min … max) | × \(fmt(median(startRatio))) (\(spread(startRatio))) | ≤ × 3 |")
    print("| `flagctl set` process, end to end, 40 checked writes (median, min … max) | \(fmt(median(whole))) (\(spread(whole))) | ≤ 8 |")
    print("| `flagctl set` less `flagctl --help`, median of 40 paired differences (min … max) | \(fmt(median(setLessStart))) (\(spread(setLessStart))) | |")
} else {
    print("(build ../.build/release/flagctl with `swift build -c release --product flagctl --static-swift-stdlib` to time the process too)")
}
