// Evaluation cost per flag kind against the floor (a bare `[String: Bool]` lookup) and against the
// Python reference evaluator, in one run, printed as a Markdown table with the issue's goals.
//
//   cd Benchmarks && swift build -c release --scratch-path .build-evalbench --product evaluation-comparison
//   .build-evalbench/release/evaluation-comparison [--rounds 15] [--lines 100000] [--no-python] [--no-flagctl]
//                                                  [--only FLAG]
//
// - Swift: each row is a flag of Fixtures/evaluation-flags.json read through the typed API over eight
//   contexts in turn; `--rounds` rounds of about 20 ms of thread CPU time each (not wall time: the
//   machine may be shared), the median round reported with the fastest and slowest. Allocations
//   per evaluation: 10,000 evaluations counted by ordo-one's malloc interposer (the program runs
//   itself again under LD_PRELOAD to load it, as the benchmark plugin does).
// - Python: openfeature-flagd-core 2.0.0 in a virtualenv under ~/.cache (FLAGD_REFERENCE_VENV, the one
//   ../shared/tools/flagd-reference uses; installed when missing), the same flags and contexts,
//   `resolve_*_value` timed in a Python loop (thread CPU time too), rounds of about 0.1 s a row.
//   One Python process stays up beside this one, and the two take turns round by round (Swift's
//   round of every row, then Python's), so that a slow moment of the machine hits both; the
//   "× faster than Python" column is the median of the per-round ratios, with their spread. Its
//   answers are checked against Swift's; a round it fails to give aborts the run.
// - flagctl: when ../.build/release/flagctl exists (swift build -c release --product flagctl),
//   `flagctl eval --flags FIXTURE --jsonl` over `--lines` lines, process start included: wall time
//   and CPU time (user + system), medians of 3.
import Benchmark
import FlagpoleCore
import Foundation

#if canImport(MallocInterposerSwift)
import MallocInterposerSwift
#endif

// MARK: - The rows

struct Row {
    let name: String
    let flag: String
    let type: FlagValueType
    let defaultValue: JSONValue
    /// A rule or a split: the issue wants it within 300 ns.
    let isRule: Bool
}

let allRows = [
    Row(name: "static boolean", flag: "dark-mode", type: .boolean, defaultValue: false, isRule: false),
    Row(name: "`if` + `ends_with`", flag: "staff-banner", type: .boolean, defaultValue: false, isRule: true),
    Row(name: "fractional 25/75", flag: "checkout-experiment", type: .boolean, defaultValue: false, isRule: true),
    Row(name: "`sem_ver`", flag: "sync-protocol", type: .string, defaultValue: "v1", isRule: true),
    Row(name: "three rules via `$ref`", flag: "pricing-page", type: .string, defaultValue: "usd-prices", isRule: true),
]
let floorKey = "dark-mode"

/// Eight users as an app would describe them: a targeting key and a handful of attributes.
/// The same users as in Benchmarks/EvaluationBenchmarks, so the two report the same work.
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

// MARK: - Arguments and files

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    if let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) { return v }
    return fallback
}
let rounds = max(3, option("--rounds", 15))
let lineCount = max(1, option("--lines", 100_000))
/// `--only FLAG`: that row alone (beside the floor), e.g. to profile it with `perf record`.
let only = arguments.firstIndex(of: "--only").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
let rows = only.map { flag in allRows.filter { $0.flag == flag } } ?? allRows

let packageDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let fixturePath = packageDirectory.appendingPathComponent("Fixtures/evaluation-flags.json").path
let flagctlPath = packageDirectory.deletingLastPathComponent().appendingPathComponent(".build/release/flagctl").path

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("evaluation-comparison: \(message)\n".utf8))
    exit(1)
}

let flags: CompiledFlagSet
do {
    flags = CompiledFlagSet(try JSONParser.parse(String(contentsOfFile: fixturePath, encoding: .utf8)))
} catch {
    fail("cannot read \(fixturePath): \(error)")
}
if rows.isEmpty { fail("no row reads the flag \(only ?? "")") }
for row in rows where flags.flag(row.flag) == nil { fail("\(fixturePath) has no flag \(row.flag)") }
let bare = Dictionary(uniqueKeysWithValues: flags.flagKeys.map { ($0, $0 == floorKey) })

// MARK: - Swift

/// The CPU time this thread has used, in nanoseconds: unlike the wall clock, it does not count the
/// time other processes on a shared machine hold the CPU.
func threadCPUNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// Runs `body` `n` times and returns CPU nanoseconds per call. Inlined so that each row's loop is its own.
@inline(__always)
func nanosecondsPerCall(_ n: Int, _ body: (Int) -> Void) -> Double {
    let start = threadCPUNanoseconds()
    for i in 0..<n { body(i) }
    return Double(threadCPUNanoseconds() - start) / Double(n)
}

/// Evaluates a row once, the way an app reads it: the typed accessor, then its value.
@inline(__always)
func evaluate(_ row: Row, _ context: EvaluationContext) -> JSONValue {
    switch row.type {
    case .boolean: .bool(flags.bool(row.flag, default: row.defaultValue.boolValue ?? false, context: context).value)
    default: .string(flags.string(row.flag, default: row.defaultValue.stringValue ?? "", context: context).value)
    }
}

/// One round: CPU nanoseconds per call over `n` calls of the floor (`k` = 0) or of row `k - 1`.
func measure(_ k: Int, _ n: Int) -> Double {
    guard k > 0 else {
        let key = floorKey
        return nanosecondsPerCall(n) { _ in blackHole(bare[key] ?? false) }
    }
    let row = rows[k - 1]
    let key = row.flag
    switch row.type {
    case .boolean:
        let fallback = row.defaultValue.boolValue ?? false
        return nanosecondsPerCall(n) { i in blackHole(flags.bool(key, default: fallback, context: contexts[i & 7]).value) }
    default:
        let fallback = row.defaultValue.stringValue ?? ""
        return nanosecondsPerCall(n) { i in blackHole(flags.string(key, default: fallback, context: contexts[i & 7]).value) }
    }
}

// MARK: - Allocations

/// Whether the malloc interposer is loaded and counting: `malloc` must reach it.
func interposerCounts() -> Bool {
    #if canImport(MallocInterposerSwift)
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    let p = malloc(48)
    blackHole(p)
    free(p)
    MallocInterposerSwift.unhook()
    return MallocInterposerSwift.getStatistics().mallocCount >= 1
    #else
    return false
    #endif
}

/// Mallocs per call over `n` calls (after one warm-up call).
func allocationsPerCall(_ n: Int = 10_000, _ body: (Int) -> Void) -> Double {
    #if canImport(MallocInterposerSwift)
    body(0)
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    for i in 0..<n { body(i) }
    MallocInterposerSwift.unhook()
    return Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(n)
    #else
    return .nan
    #endif
}

/// `--count-allocations`: the child run under LD_PRELOAD; prints one number per line, floor first.
if arguments.contains("--count-allocations") {
    guard interposerCounts() else { fail("the malloc interposer is not loaded") }
    var lines = [String(allocationsPerCall { _ in blackHole(bare[floorKey] ?? false) })]
    for row in rows { lines.append(String(allocationsPerCall { i in blackHole(evaluate(row, contexts[i & 7])) })) }
    print(lines.joined(separator: "\n"))
    exit(0)
}

struct Finished {
    var status: Int32
    var output: String
    var errors: String
    /// Wall seconds from starting the program to its exit.
    var seconds: Double
}

/// Runs a program to completion, its standard input read from `inputPath` (else empty); its output
/// goes through files, so a large one cannot block it.
func run(_ executable: String, _ args: [String], environment: [String: String]? = nil, inputPath: String? = nil) throws -> Finished {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("evaluation-comparison-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("out"), errURL = directory.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let environment { p.environment = environment }
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = try FileHandle(forWritingTo: errURL)
    p.standardInput = try inputPath.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
    let start = DispatchTime.now().uptimeNanoseconds
    try p.run()
    p.waitUntilExit()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return Finished(
        status: p.terminationStatus, output: try String(contentsOf: outURL, encoding: .utf8),
        errors: try String(contentsOf: errURL, encoding: .utf8), seconds: seconds)
}

/// Allocations per call, floor first then each row, from a child run with the interposer preloaded;
/// nil with the reason when they cannot be counted.
func countAllocations() -> (values: [Double]?, note: String) {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let library = executable.deletingLastPathComponent().appendingPathComponent("libMallocInterposerSwift.so").path
    guard FileManager.default.fileExists(atPath: library) else {
        return (nil, "no \(library): allocations are in the EvaluationBenchmarks target")
    }
    var environment = ProcessInfo.processInfo.environment
    environment["LD_PRELOAD"] = library
    do {
        let child = try run(executable.path, ["--count-allocations"] + (only.map { ["--only", $0] } ?? []), environment: environment)
        let values = child.output.split(separator: "\n").compactMap { Double($0) }
        guard child.status == 0, values.count == rows.count + 1 else {
            return (nil, "the counting run failed: \(child.errors.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return (values, "mallocs counted over 10,000 evaluations by ordo-one's malloc interposer")
    } catch {
        return (nil, "the counting run failed: \(error)")
    }
}

// MARK: - Python

let pythonScript = #"""
    import json, logging, sys, time
    from importlib.metadata import version
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    logging.getLogger("openfeature").addHandler(logging.NullHandler()); logging.getLogger("openfeature").propagate = False
    spec = json.load(open(sys.argv[1]))
    core = FlagdCore(); core.set_flags(open(spec["fixture"]).read())
    contexts = []
    for c in spec["contexts"]:
        c = dict(c); tk = c.pop("targetingKey", None)
        contexts.append(EvaluationContext(targeting_key=tk, attributes=c))
    cycle = contexts * 16
    def timed(resolve, key, default, passes):
        start = time.thread_time_ns()
        for _ in range(passes):
            for ctx in cycle:
                resolve(key, default, ctx)
        return (time.thread_time_ns() - start) / (passes * len(cycle))
    rows, values = [], []
    for row in spec["rows"]:
        resolve = getattr(core, "resolve_%s_value" % row["type"])
        key, default = row["flag"], row["default"]
        values.append([resolve(key, default, ctx).value for ctx in contexts])
        timed(resolve, key, default, 3)
        passes = max(1, int(spec["roundSeconds"] * 1e9 / (timed(resolve, key, default, 3) * len(cycle))))
        rows.append((resolve, key, default, passes))
    print(json.dumps({"version": version("openfeature-flagd-core"), "python": sys.version.split()[0], "values": values}), flush=True)
    # One round of every row per "round" line on standard input, until it closes.
    for line in sys.stdin:
        if line.strip() != "round":
            break
        print(json.dumps([timed(*row) for row in rows]), flush=True)
    """#

struct PythonRow {
    /// Median ns per evaluation over the rounds.
    var ns: Double
    /// Median of the per-round ratios Python ÷ Swift, and their extremes.
    var ratio: Double
    var ratioMin: Double
    var ratioMax: Double
    var values: [JSONValue]
}

/// The reference evaluator, running beside this process: one round of every row per request.
final class PythonReference {
    let process: Process
    let input: FileHandle
    let output: FileHandle
    var buffer = Data()
    /// Per row, its value for each context.
    var values: [[JSONValue]] = []
    var description = ""

    init(python: String, script: String, spec: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, spec]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        try process.run()
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
    }

    /// The next line the reference prints, nil when it ended.
    func line() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let text = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                return text
            }
            let chunk = output.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }

    /// One round of every row: ns per evaluation each.
    func round() -> [Double]? {
        input.write(Data("round\n".utf8))
        guard let text = line(), let list = (try? JSONParser.parse(text))?.arrayValue else { return nil }
        let times = list.compactMap(\.numberValue)
        return times.count == list.count ? times : nil
    }

    func stop() {
        try? input.close()
        process.waitUntilExit()
    }
}

/// Starts the reference evaluator (installing it when missing), or says why it cannot run.
@MainActor func startPython() -> (PythonReference?, note: String) {
    let environment = ProcessInfo.processInfo.environment
    let venv = environment["FLAGD_REFERENCE_VENV"] ?? (NSHomeDirectory() + "/.cache/flagd-reference-venv")
    let python = venv + "/bin/python"
    do {
        if (try? run(python, ["-c", "import openfeature.contrib.tools.flagd.core"]))?.status != 0 {
            FileHandle.standardError.write(Data("installing openfeature-flagd-core==2.0.0 into \(venv)…\n".utf8))
            let made = try run("/usr/bin/env", ["python3", "-m", "venv", venv])
            guard made.status == 0 else { return (nil, "python3 -m venv failed: \(made.errors)") }
            let installed = try run(venv + "/bin/pip", ["install", "-q", "openfeature-flagd-core==2.0.0"])
            guard installed.status == 0 else { return (nil, "pip install failed: \(installed.errors)") }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("evaluation-comparison-py-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("reference.py"), spec = directory.appendingPathComponent("spec.json")
        try pythonScript.write(to: script, atomically: false, encoding: .utf8)
        let specValue: JSONValue = [
            "fixture": .string(fixturePath), "roundSeconds": 0.1,
            "contexts": .array(contexts.map(\.jsonValue)),
            "rows": .array(rows.map { ["flag": .string($0.flag), "type": .string($0.type.rawValue), "default": $0.defaultValue] }),
        ]
        try specValue.jsonString.write(to: spec, atomically: false, encoding: .utf8)
        let reference = try PythonReference(python: python, script: script.path, spec: spec.path)
        guard let header = reference.line(), let answer = try? JSONParser.parse(header),
            let values = answer["values"]?.arrayValue?.map({ $0.arrayValue ?? [] }), values.count == rows.count
        else {
            reference.stop()
            return (nil, "the Python reference did not start (its errors are above)")
        }
        reference.values = values
        let version = answer["version"]?.stringValue ?? "?", pythonVersion = answer["python"]?.stringValue ?? "?"
        return (
            reference,
            "openfeature-flagd-core \(version) on CPython \(pythonVersion), thread CPU time, rounds of about 0.1 s a row,"
                + " taking turns with Swift's rounds in one process pair"
        )
    } catch {
        return (nil, "the Python run failed: \(error)")
    }
}

// MARK: - flagctl eval --jsonl

struct FlagctlTimes {
    /// Wall seconds for all the lines, and for one line (process start and loading the file).
    var wall: Double, wallOne: Double
    /// CPU seconds (user + system) for the same.
    var cpu: Double, cpuOne: Double
}

/// The CPU time used by the children waited for so far, in seconds.
func childrenCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(truncatingIfNeeded: RUSAGE_CHILDREN.rawValue), &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// `flagctl eval --jsonl` over `lineCount` lines and over one line, medians of 3; nil when there is no
/// release flagctl or a run fails.
func timeFlagctl() -> FlagctlTimes? {
    guard FileManager.default.isExecutableFile(atPath: flagctlPath) else { return nil }
    var text = ""
    text.reserveCapacity(lineCount * 200)
    for i in 0..<lineCount {
        let row = rows[i % rows.count]
        let request: JSONValue = [
            "flag": .string(row.flag), "type": .string(row.type.rawValue), "context": contexts[(i / rows.count) & 7].jsonValue,
        ]
        text += request.jsonString + "\n"
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("evaluation-comparison-lines-\(UUID().uuidString)")
    let allPath = directory.appendingPathComponent("all.jsonl").path, firstPath = directory.appendingPathComponent("first.jsonl").path
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try text.write(toFile: allPath, atomically: false, encoding: .utf8)
        try (String(text.prefix(while: { $0 != "\n" })) + "\n").write(toFile: firstPath, atomically: false, encoding: .utf8)
    } catch {
        return nil
    }
    defer { try? FileManager.default.removeItem(at: directory) }
    func seconds(_ inputPath: String, expecting count: Int) -> (wall: Double, cpu: Double)? {
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<3 {
            let cpuStart = childrenCPUSeconds()
            guard let done = try? run(flagctlPath, ["eval", "--flags", fixturePath, "--jsonl"], inputPath: inputPath),
                done.status == 0, done.output.utf8.lazy.filter({ $0 == 0x0A }).count == count
            else { return nil }
            wall.append(done.seconds)
            cpu.append(childrenCPUSeconds() - cpuStart)
        }
        return (median(wall.sorted()), median(cpu.sorted()))
    }
    guard let all = seconds(allPath, expecting: lineCount), let one = seconds(firstPath, expecting: 1) else { return nil }
    return FlagctlTimes(wall: all.wall, wallOne: one.wall, cpu: all.cpu, cpuOne: one.cpu)
}

// MARK: - Report

func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

func median(_ sorted: [Double]) -> Double { sorted[sorted.count / 2] }

func ns(_ x: Double) -> String {
    if x.isNaN { return "–" }
    if x >= 10_000 { return Int(x.rounded()).formatted() }
    return String(format: x >= 100 ? "%.0f" : "%.1f", x)
}

func ratio(_ x: Double) -> String {
    if x.isNaN { return "–" }
    return x >= 100 ? "\(Int(x.rounded()).formatted())×" : String(format: "%.1f×", x)
}

func allocations(_ x: Double?) -> String {
    guard let x, !x.isNaN else { return "–" }
    return x == x.rounded() ? String(Int(x)) : String(format: "%.2f", x)
}

let loadBefore = loadAverage()
let (pythonReference, pythonNote) = arguments.contains("--no-python") ? (nil, "skipped (--no-python)") : startPython()
// Sizes: about 20 ms of the floor and of each row a round.
let sizes = (0...rows.count).map { k in
    _ = measure(k, 10_000)
    return max(10_000, Int(20_000_000 / max(0.1, measure(k, 10_000))))
}
var swiftRounds = Array(repeating: [Double](), count: rows.count + 1)
var pythonRounds = Array(repeating: [Double](), count: rows.count)
for round in 0..<rounds {
    for k in 0...rows.count { swiftRounds[k].append(measure(k, sizes[k])) }
    if let pythonReference {
        guard let times = pythonReference.round(), times.count == rows.count else { fail("the Python reference gave no figures for round \(round + 1)") }
        for (i, t) in times.enumerated() { pythonRounds[i].append(t) }
    }
}
pythonReference?.stop()
let floorTimes = swiftRounds[0].sorted()
let swiftTimes = (0..<rows.count).map { swiftRounds[$0 + 1].sorted() }
/// Per row: Python's median ns, and the median (min, max) of the per-round ratios Python ÷ Swift.
let pythonRows: [PythonRow]? = pythonReference.map { reference in
    (0..<rows.count).map { i in
        let ratios = zip(pythonRounds[i], swiftRounds[i + 1]).map { $0 / $1 }.sorted()
        return PythonRow(
            ns: median(pythonRounds[i].sorted()), ratio: median(ratios), ratioMin: ratios.first!, ratioMax: ratios.last!,
            values: reference.values[i])
    }
}
let (allocationCounts, allocationNote) = countAllocations()
let flagctl = arguments.contains("--no-flagctl") ? nil : timeFlagctl()
let loadAfter = loadAverage()

let floorNs = median(floorTimes)
print("## Evaluation cost: Swift against the floor and the Python reference\n")
print("Load average (1, 5, 15 min): \(loadBefore) before, \(loadAfter) after; \(ProcessInfo.processInfo.activeProcessorCount) CPUs.")
print("Swift: thread CPU time, median of \(rounds) rounds of about 20 ms (fastest–slowest), eight contexts in turn.")
print("Allocations: \(allocationNote).")
print("Python: \(pythonNote).\n")
print("| row | flag | Swift ns/eval | allocs/eval | × bare lookup | Python ns/eval | × faster than Python | goals |")
print("|---|---|---:|---:|---:|---:|---:|---|")
print(
    "| bare `[String: Bool]` lookup (the floor) | \(floorKey) | \(ns(floorNs)) (\(ns(floorTimes.first!))–\(ns(floorTimes.last!))) "
        + "| \(allocations(allocationCounts?[0])) | 1.0× | – | – | – |")
var allMet = true
/// "goal: yes", or "goal: **no** (figure)"; a goal that could not be measured is not met.
@MainActor func verdict(_ goal: String, _ met: Bool?, _ figure: String) -> String {
    guard let met else {
        allMet = false
        return "\(goal): not measured"
    }
    if !met { allMet = false }
    return met ? "\(goal): yes" : "\(goal): **no** (\(figure))"
}
var disagreements: [String] = []
for (i, row) in rows.enumerated() {
    let t = swiftTimes[i]
    let swiftNs = median(t)
    let allocs = allocationCounts?[i + 1]
    let python = pythonRows?[i]
    let speedup = python.map(\.ratio) ?? .nan
    var goals: [String] = []
    if row.isRule {
        goals.append(verdict("≤ 300 ns", swiftNs <= 300, "\(ns(swiftNs)) ns"))
    } else {
        goals.append(verdict("≤ 3× floor", swiftNs <= 3 * floorNs, ratio(swiftNs / floorNs)))
        goals.append(verdict("0 allocs", allocs.map { $0 == 0 }, allocations(allocs)))
    }
    goals.append(verdict("≥ 50× Python", speedup.isNaN ? nil : speedup >= 50, ratio(speedup)))
    print(
        "| \(row.name) | \(row.flag) | \(ns(swiftNs)) (\(ns(t.first!))–\(ns(t.last!))) | \(allocations(allocs)) "
            + "| \(ratio(swiftNs / floorNs)) | \(python.map { ns($0.ns) } ?? "–") "
            + "| \(ratio(speedup))\(python.map { " (\(ratio($0.ratioMin))–\(ratio($0.ratioMax)))" } ?? "") "
            + "| \(goals.joined(separator: "; ")) |")
    if let python {
        for (c, context) in contexts.enumerated() where c >= python.values.count || python.values[c] != evaluate(row, context) {
            disagreements.append("\(row.flag) for \(context.targetingKey ?? "?"): Swift \(evaluate(row, context).jsonString), "
                + "Python \(c < python.values.count ? python.values[c].jsonString : "nothing")")
        }
    }
}
print("")
if pythonRows != nil {
    print(disagreements.isEmpty
        ? "Swift and Python give the same value for all \(rows.count * contexts.count) (flag, context) pairs."
        : "Swift and Python DISAGREE:\n" + disagreements.map { "- " + $0 }.joined(separator: "\n"))
}
if let flagctl {
    let perLine = (flagctl.cpu - flagctl.cpuOne) / Double(lineCount) * 1e9
    print(
        "`flagctl eval --jsonl`, \(lineCount.formatted()) lines: \(String(format: "%.3f", flagctl.wall)) s wall, "
            + "\(String(format: "%.3f", flagctl.cpu)) s CPU (one line: \(String(format: "%.3f", flagctl.wallOne)) s wall, "
            + "\(String(format: "%.3f", flagctl.cpuOne)) s CPU; about \(ns(perLine)) ns of CPU a line past start-up); medians of 3; "
            + verdict("under a second", flagctl.wall < 1, String(format: "%.3f s", flagctl.wall)) + ".")
} else if !arguments.contains("--no-flagctl") {
    allMet = false
    print("`flagctl eval --jsonl`: not measured (no \(flagctlPath) — `swift build -c release --product flagctl` — or it failed).")
}
print(allMet ? "Every goal is met." : "Not every goal is met: see the goals column.")
