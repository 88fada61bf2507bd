// What the client's read paths cost, beside the floor (a bare `[String: Bool]` lookup), in one run,
// printed as a Markdown table: a static boolean flag by key and through a flag handle, with no
// hook and with one hook that does (almost) nothing; a rule (`if` + `ends_with`) and a split
// (`fractional`) by key and by handle; then 8 threads against 1 reading a handle while the flags
// change every 10 ms.
//
//   cd Benchmarks && swift run -c release hook-comparison [--rounds 15] [--thread-seconds 0.3]
//
// - The client is `InMemoryFlags`'s (FlagpoleTestKit): a real `FlagpoleClient` serving a flag file
//   from memory, so no Redis is involved and the evaluation path is the production one.
// - Rounds of about 20 ms of thread CPU time each (not wall time: the machine may be shared); the
//   three rows take turns within each round, in rotating order, so that a slow moment hits all
//   three; the median round is reported with the fastest and slowest, and the median of the
//   per-round ratios.
// - Every measured operation is checked: each read must give the flag's value (true, where the
//   code default is false; for the rule and split rows, the value the flag's details gave for that
//   context, with no error), and the hook must have run once per hooked evaluation; otherwise the
//   program fails (exit 1).
// - Threads: each of 1, then 8, threads reads the static flag's handle for about
//   `--thread-seconds` of wall time while another thread replaces a flag every 10 ms; the cost
//   is each thread's CPU time per read, the median over threads.
// - Allocations per evaluation: 10,000 evaluations counted by ordo-one's malloc interposer (the
//   program runs itself again under LD_PRELOAD, as evaluation-comparison does).
import Benchmark
import Flagpole
import FlagpoleTestKit
import Foundation
import Synchronization

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
      staff-banner:
        state: ENABLED
        variants: {"on": true, "off": false}
        defaultVariant: "off"
        targeting: {if: [{ends_with: [{var: email}, "@flagpole.dev"]}, "on", "off"]}
      checkout-experiment:
        state: ENABLED
        variants: {"on": true, "off": false}
        defaultVariant: "off"
        targeting: {fractional: [["on", 25], ["off", 75]]}
    """
let key = "dark-mode"
let plainFlags: InMemoryFlags
let plain: FlagpoleClient
let hooked: FlagpoleClient
let hook = CountingHook()
do {
    plainFlags = try InMemoryFlags(yaml: flagFile)
    plain = plainFlags.client
    hooked = try InMemoryFlags(yaml: flagFile).client
} catch {
    fail("the flags do not load: \(error)")
}
hooked.addHook(hook)
let bare: [String: Bool] = ["dark-mode": true, "other": false]
let handle = plain.flag(key, default: false)
let hookedHandle = hooked.flag(key, default: false)

/// Eight users; the rule and split rows go through them in turn.
let contexts: [EvaluationContext] = (0..<8).map { i in
    EvaluationContext(targetingKey: "user-\(i * 7919)", attributes: ["email": .string(i % 3 == 0 ? "u\(i)@flagpole.dev" : "u\(i)@example.com")])
}
/// What each rule or split flag gives each context, from its details (which must show no error).
func expected(_ flag: String) -> [Bool] {
    contexts.map { context in
        let d = plain.boolDetails(flag, default: false, context: context)
        guard d.reason == .targetingMatch, d.errorCode == nil else { fail("\(flag) for \(context): \(d)") }
        return d.value
    }
}
let ruleKey = "staff-banner", splitKey = "checkout-experiment"
let ruleExpected = expected(ruleKey), splitExpected = expected(splitKey)
guard Set(ruleExpected) == [true, false], Set(splitExpected) == [true, false] else { fail("the contexts do not reach both variants") }
let ruleHandle = plain.flag(ruleKey, default: false), splitHandle = plain.flag(splitKey, default: false)

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
    Row(name: "handle `value(for:)`, static flag, no hook") { n in
        var hits = 0
        for _ in 0..<n where handle.value(for: .empty) { hits &+= 1 }
        return hits
    },
    Row(name: "handle `value(for:)`, static flag, one counting hook", isHooked: true) { n in
        var hits = 0
        for _ in 0..<n where hookedHandle.value(for: .empty) { hits &+= 1 }
        return hits
    },
    Row(name: "client `bool`, `if` + `ends_with` rule") { n in
        var hits = 0
        for i in 0..<n where plain.bool(ruleKey, default: false, context: contexts[i & 7]) == ruleExpected[i & 7] { hits &+= 1 }
        return hits
    },
    Row(name: "handle `value(for:)`, `if` + `ends_with` rule") { n in
        var hits = 0
        for i in 0..<n where ruleHandle.value(for: contexts[i & 7]) == ruleExpected[i & 7] { hits &+= 1 }
        return hits
    },
    Row(name: "client `bool`, `fractional` split") { n in
        var hits = 0
        for i in 0..<n where plain.bool(splitKey, default: false, context: contexts[i & 7]) == splitExpected[i & 7] { hits &+= 1 }
        return hits
    },
    Row(name: "handle `value(for:)`, `fractional` split") { n in
        var hits = 0
        for i in 0..<n where splitHandle.value(for: contexts[i & 7]) == splitExpected[i & 7] { hits &+= 1 }
        return hits
    },
]

@Sendable func threadCPUNanoseconds() -> UInt64 {
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
/// A paired ratio: the median of the per-round ratios, with their fastest … slowest.
@MainActor func paired(_ a: Int, over b: Int) -> String {
    let r = zip(times[a], times[b]).map { $0 / $1 }.sorted()
    return "× \(String(format: "%.2f", median(r))) (\(String(format: "%.2f … %.2f", r.first!, r.last!)))"
}
@MainActor func goal(_ row: Int, atMost limit: Double) -> String {
    let m = median(times[row])
    return m <= limit ? "met (\(String(format: "%.1f", m)) ns ≤ \(Int(limit)) ns)" : "MISSED by \(String(format: "%.1f", m - limit)) ns (\(String(format: "%.1f", m)) ns)"
}
print()
print("Ratios are medians of the \(rounds) per-round ratios (min … max):")
print("- key, no hook vs floor: \(paired(1, over: 0))")
print("- key, one hook vs no hook: \(paired(2, over: 1))")
let handleRatio = zip(times[3], times[0]).map { $0 / $1 }.sorted()
print(
    "- handle, no hook vs floor: \(paired(3, over: 0)) — goal ≤ × 0.5: "
        + (median(handleRatio) <= 0.5 ? "met" : "MISSED by × \(String(format: "%.2f", median(handleRatio) - 0.5))"))
print("- handle vs key, static flag: \(paired(3, over: 1)); rule: \(paired(6, over: 5)); split: \(paired(8, over: 7))")
print("- rule and split rows ≤ 150 ns: key rule \(goal(5, atMost: 150)); handle rule \(goal(6, atMost: 150)); key split \(goal(7, atMost: 150)); handle split \(goal(8, atMost: 150))")
print("- every read checked (\(hook.count) hooked evaluations counted by the hook); allocations: \(allocations.note)")

// MARK: - Threads

let threadSeconds: Double = {
    if let i = arguments.firstIndex(of: "--thread-seconds"), i + 1 < arguments.count, let v = Double(arguments[i + 1]) { return max(0.05, v) }
    return 0.3
}()

/// `count` threads read the static flag's handle for about `threadSeconds` while this thread
/// replaces another flag every 10 ms; the median over threads of CPU nanoseconds per read, and
/// the number of updates. Every read must give the flag's value.
@MainActor func threaded(_ count: Int) -> (nsPerRead: Double, updates: Int) {
    let stop = Atomic<Bool>(false)
    let results = Mutex<[Double]>([])
    let wrong = Atomic<Int>(0)
    let group = DispatchGroup()
    for _ in 0..<count {
        group.enter()
        Thread {
            var reads = 0
            var bad = 0
            let start = threadCPUNanoseconds()
            while !stop.load(ordering: .relaxed) {
                for _ in 0..<1_000 where !handle.value(for: .empty) { bad &+= 1 }
                reads &+= 1_000
            }
            let cpu = threadCPUNanoseconds() - start
            results.withLock { $0.append(Double(cpu) / Double(reads)) }
            wrong.add(bad, ordering: .relaxed)
            group.leave()
        }.start()
    }
    var updates = 0
    let end = Date().addingTimeInterval(threadSeconds)
    while Date() < end {
        let variant: JSONValue = updates % 2 == 0 ? "on" : "off"
        do {
            try plainFlags.update(["other": ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": variant]])
        } catch {
            fail("update \(updates) failed: \(error)")
        }
        updates += 1
        usleep(10_000)
    }
    stop.store(true, ordering: .relaxed)
    group.wait()
    guard wrong.load(ordering: .relaxed) == 0 else { fail("\(wrong.load(ordering: .relaxed)) threaded reads did not give the flag's value") }
    guard plain.bool("other", default: false) == ((updates - 1) % 2 == 0) else { fail("the last update was not applied") }
    return (median(results.withLock { $0 }), updates)
}

_ = threaded(2)  // warm up
var single: [Double] = [], eight: [Double] = [], threadRatios: [Double] = []
var totalUpdates = 0
for _ in 0..<3 {
    let one = threaded(1)
    let many = threaded(8)
    single.append(one.nsPerRead)
    eight.append(many.nsPerRead)
    threadRatios.append(many.nsPerRead / one.nsPerRead)
    totalUpdates += one.updates + many.updates
}
threadRatios.sort()
print(
    "- handle, 8 threads vs 1, while a flag changes every 10 ms (\(totalUpdates) updates, 3 paired rounds of about \(threadSeconds) s each):"
        + " \(String(format: "%.2f", median(single))) ns → \(String(format: "%.2f", median(eight))) ns per read (thread CPU time),"
        + " × \(String(format: "%.2f", median(threadRatios))) (\(String(format: "%.2f … %.2f", threadRatios.first!, threadRatios.last!)))"
        + " — goal ≤ × 1.2: " + (median(threadRatios) <= 1.2 ? "met" : "MISSED by × \(String(format: "%.2f", median(threadRatios) - 1.2))"))
