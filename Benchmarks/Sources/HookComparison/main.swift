// What evaluation hooks cost: a static boolean flag read through the client with no hook, and with
// one hook that does (almost) nothing, beside the floor (a bare `[String: Bool]` lookup), in one
// run, printed as a Markdown table.
//
//   cd Benchmarks && swift run -c release hook-comparison [--rounds 15]
//
// - The client is `InMemoryFlags`'s (FlagpoleTestKit): a real `FlagpoleClient` serving a flag file
//   from memory, so no Redis is involved and the evaluation path is the production one.
// - Rounds of about 20 ms of thread CPU time each (not wall time: the machine may be shared); the
//   three rows take turns within each round, in rotating order, so that a slow moment hits all
//   three; the median round is reported with the fastest and slowest, and the median of the
//   per-round ratios.
// - Every measured operation is checked: each read must give the flag's value (true, where the
//   code default is false), and the hook must have run once per hooked evaluation; otherwise the
//   program fails (exit 1).
// - Allocations per evaluation: 10,000 evaluations counted by ordo-one's malloc interposer (the
//   program runs itself again under LD_PRELOAD, as evaluation-comparison does).
import Benchmark
import Flagpole
import FlagpoleTestKit
import Foundation

#if canImport(MallocInterposerSwift)
import MallocInterposerSwift
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("hook-comparison: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments
let rounds: Int = {
    if let i = arguments.firstIndex(of: "--rounds"), i + 1 < arguments.count, let v = Int(arguments[i + 1]) { return max(3, v) }
    return 15
}()

/// A hook that only counts its `finally` calls: the cheapest hook that proves it ran.
/// `@unchecked Sendable`: only the benchmark's one thread evaluates, so a plain counter is safe.
final class CountingHook: FlagHook, @unchecked Sendable {
    var count = 0
    func finally(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) { count &+= 1 }
}

let flagFile = """
    flags:
      dark-mode: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "on"}
      other: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "off"}
    """
let key = "dark-mode"
let plain: FlagpoleClient
let hooked: FlagpoleClient
let hook = CountingHook()
do {
    plain = try InMemoryFlags(yaml: flagFile).client
    hooked = try InMemoryFlags(yaml: flagFile).client
} catch {
    fail("the flags do not load: \(error)")
}
hooked.addHook(hook)
let bare: [String: Bool] = ["dark-mode": true, "other": false]

// MARK: - The rows

struct Row {
    let name: String
    /// Whether the counting hook runs on this row's evaluations.
    var isHooked = false
    /// Runs `n` operations and returns how many gave the expected value.
    let run: (Int) -> Int
}

/// One read each, counting reads that gave `true` (the flag's value; the code default is false).
let rows = [
    Row(name: "floor: `[String: Bool]` lookup") { n in
        var hits = 0
        for _ in 0..<n where bare[key] ?? false { hits &+= 1 }
        return hits
    },
    Row(name: "client `bool`, static flag, no hook") { n in
        var hits = 0
        for _ in 0..<n where plain.bool(key, default: false) { hits &+= 1 }
        return hits
    },
    Row(name: "client `bool`, static flag, one counting hook", isHooked: true) { n in
        var hits = 0
        for _ in 0..<n where hooked.bool(key, default: false) { hits &+= 1 }
        return hits
    },
]

func threadCPUNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// Nanoseconds per operation over `n` operations of `row`, after checking every one succeeded.
func measure(_ row: Row, _ n: Int) -> Double {
    let hooksBefore = hook.count
    let start = threadCPUNanoseconds()
    let hits = row.run(n)
    let elapsed = threadCPUNanoseconds() - start
    guard hits == n else { fail("\(row.name): \(n - hits) of \(n) reads did not give the flag's value") }
    if row.isHooked, hook.count - hooksBefore != n {
        fail("\(row.name): the hook ran \(hook.count - hooksBefore) times for \(n) evaluations")
    }
    return Double(elapsed) / Double(n)
}

// MARK: - Allocations

func allocationsPerCall(_ row: Row, _ n: Int = 10_000) -> Double {
    #if canImport(MallocInterposerSwift)
    _ = row.run(1)
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    let hits = row.run(n)
    MallocInterposerSwift.unhook()
    guard hits == n else { fail("\(row.name): \(n - hits) of \(n) reads did not give the flag's value") }
    return Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(n)
    #else
    return .nan
    #endif
}

if arguments.contains("--count-allocations") {
    #if canImport(MallocInterposerSwift)
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    let p = malloc(48)
    blackHole(p)
    free(p)
    MallocInterposerSwift.unhook()
    guard MallocInterposerSwift.getStatistics().mallocCount >= 1 else { fail("the malloc interposer is not loaded") }
    #endif
    print(rows.map { String(allocationsPerCall($0)) }.joined(separator: "\n"))
    exit(0)
}

/// Allocations per call for each row, from a child run with the interposer preloaded.
@MainActor func countAllocations() -> (values: [Double]?, note: String) {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let library = executable.deletingLastPathComponent().appendingPathComponent("libMallocInterposerSwift.so").path
    guard FileManager.default.fileExists(atPath: library) else { return (nil, "no \(library)") }
    let p = Process()
    p.executableURL = executable
    p.arguments = ["--count-allocations"]
    var environment = ProcessInfo.processInfo.environment
    environment["LD_PRELOAD"] = library
    p.environment = environment
    let out = Pipe()
    p.standardOutput = out
    do {
        try p.run()
    } catch {
        return (nil, "the counting run failed: \(error)")
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let values = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { Double($0) }
    guard p.terminationStatus == 0, values.count == rows.count else { return (nil, "the counting run failed (exit \(p.terminationStatus))") }
    return (values, "mallocs counted over 10,000 evaluations by ordo-one's malloc interposer")
}

// MARK: - Run

// Warm up, and size a round at about 20 ms of the slowest row.
for row in rows { _ = measure(row, 10_000) }
let estimate = rows.map { max(0.1, measure($0, 100_000)) }
let sizes = estimate.map { max(10_000, Int(20_000_000 / $0)) }
var times = Array(repeating: [Double](), count: rows.count)
for round in 0..<rounds {
    for k in 0..<rows.count {
        let i = (round + k) % rows.count
        times[i].append(measure(rows[i], sizes[i]))
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
@MainActor func ratios(_ a: Int, over b: Int) -> Double { median(zip(times[a], times[b]).map { $0 / $1 }) }

let allocations = countAllocations()
print("| row | ns/op (median of \(rounds) rounds) | fastest … slowest | mallocs/op |")
print("|---|---:|---:|---:|")
for (i, row) in rows.enumerated() {
    let sorted = times[i].sorted()
    let mallocs = allocations.values.map { String(format: "%.2f", $0[i]) } ?? "n/a"
    print("| \(row.name) | \(String(format: "%.2f", median(sorted))) | \(String(format: "%.2f … %.2f", sorted.first!, sorted.last!)) | \(mallocs) |")
}
print()
print("- no hook vs floor: × \(String(format: "%.2f", ratios(1, over: 0))) (median of per-round ratios)")
print("- one hook vs no hook: × \(String(format: "%.2f", ratios(2, over: 1)))")
print("- every read checked (\(hook.count) hooked evaluations counted by the hook); allocations: \(allocations.note)")
