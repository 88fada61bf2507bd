// A fleet of client instances on one Redis: how fast and how completely a change reaches all of
// them, what that costs Redis, and how long a cold fleet takes to get ready.
//
//   cd Benchmarks && swift run -c release fleet-load [--instances 1000] [--processes 4] [--flips 100]
//                                                   [--cold-flags 10000] [--cold-instances 200] [--gap-ms 250]
//
// Phase 1: `--instances` FlagpoleClient instances spread over `--processes` worker processes (this
// program run with --worker) join an environment with one flag; the flag is flipped `--flips`
// times with the same atomic write `flagctl set` uses, `--gap-ms` apart. Every instance reports
// (revision, wall-clock time) of each update it applies. Printed: instances that applied every
// change, propagation p50/p99/max (from before the write → instance applied; a negative one fails
// the run, and an instance that missed a change makes it exit 1 after printing), Redis CPU (user+sys
// seconds, from INFO) and memory during the phase.
// Phase 2: an environment of `--cold-flags` flags; `--cold-instances` instances start at once in
// the workers. Printed: time from launch until every instance is ready with the full flag set,
// and the bytes Redis sent meanwhile (INFO total_net_output_bytes).
import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization

func arg(_ name: String, _ fallback: Int) -> Int {
    if let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count, let v = Int(CommandLine.arguments[i + 1]) { return v }
    return fallback
}
func sarg(_ name: String) -> String? {
    if let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count { return CommandLine.arguments[i + 1] }
    return nil
}
func wallNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
func emit(_ line: String) {
    print(line)
    fflush(nil)
}

/// Workers batch their lines: one write every 100 ms instead of a syscall per applied update,
/// so the measurement does not compete with the clients for the CPU.
let pendingLines = Mutex<[String]>([])
func emitLater(_ line: String) {
    pendingLines.withLock { $0.append(line) }
}
func flushLines() {
    let lines = pendingLines.withLock { l -> [String] in
        defer { l = [] }
        return l
    }
    if !lines.isEmpty { emit(lines.joined(separator: "\n")) }
}

// MARK: - Worker: N instances in this process

if CommandLine.arguments.contains("--worker") {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = .error
        return h
    }
    let count = arg("--instances", 1)
    let first = arg("--first", 0)
    let env = sarg("--env") ?? "load"
    let redis = try RedisConfiguration(url: sarg("--redis")!)
    let expectFlags = arg("--expect-flags", 1)
    let clients = (0..<count).map { i in
        var c = FlagpoleClient.Configuration(redis: redis, environment: env, application: "fleet-load")
        c.startupTimeout = .seconds(120)
        c.outcomes.isEnabled = false
        c.heartbeat.isEnabled = false
        // Each instance keeps its own last-known-good snapshot, as on its own host (writes coalesce to 1 s).
        c.snapshotPath = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-fleet-load/instance-\(first + i).json").path
        return FlagpoleClient(configuration: c, logger: Logger(label: "fleet"))
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for client in clients { group.addTask { try await client.run() } }
        group.addTask {
            while true {
                try await Task.sleep(for: .milliseconds(100))
                flushLines()
            }
        }
        for (i, client) in clients.enumerated() {
            group.addTask {
                // Each installed snapshot with its revision and the moment it was installed.
                let updates = client.updates()
                await client.waitUntilReady(timeout: .seconds(120))
                let keys = client.flagKeys.count
                emit("READY \(first + i) \(wallNanos()) \(client.freshness.revision ?? -1) \(keys >= expectFlags ? 1 : 0)")
                for await update in updates {
                    emitLater("APPLIED \(first + i) \(update.revision ?? -1) \(update.appliedAtUnixNanos)")
                }
            }
        }
        try await group.next()
    }
    exit(0)
}

// MARK: - Coordinator

let instances = arg("--instances", 1000)
let processes = max(1, arg("--processes", 4))
let flips = arg("--flips", 100)
let gapMs = arg("--gap-ms", 250)
let coldFlags = arg("--cold-flags", 10_000)
let coldInstances = arg("--cold-instances", 200)
let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path

func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : s[min(s.count - 1, Int(Double(s.count) * p))]
}

/// A worker process and the lines it printed.
final class Worker: @unchecked Sendable {
    let process = Process()
    let lock = NSLock()
    var lines: [String] = []
    var partial = Data()

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: me)
        process.arguments = ["--worker"] + arguments
        let out = Pipe()
        process.standardOutput = out
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.withLock {
                self.partial.append(d)
                while let nl = self.partial.firstIndex(of: 10) {
                    self.lines.append(String(decoding: self.partial[self.partial.startIndex..<nl], as: UTF8.self))
                    self.partial.removeSubrange(self.partial.startIndex...nl)
                }
            }
        }
        try process.run()
    }
    var snapshot: [String] { lock.withLock { lines } }
    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

func info(_ client: RedisClient, _ section: String) async throws -> [String: String] {
    let text = try await client.send("INFO", section).string ?? ""
    var out: [String: String] = [:]
    for line in text.split(whereSeparator: { $0.isNewline }) {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2 { out[String(parts[0])] = String(parts[1]).trimmingCharacters(in: .whitespaces) }
    }
    return out
}
func redisCPU(_ client: RedisClient) async throws -> Double {
    let i = try await info(client, "cpu")
    return (Double(i["used_cpu_user"] ?? "0") ?? 0) + (Double(i["used_cpu_sys"] ?? "0") ?? 0)
}

func startWorkers(total: Int, env: String, redis: String, expectFlags: Int) throws -> [Worker] {
    var workers: [Worker] = []
    var first = 0
    for p in 0..<processes {
        let n = total / processes + (p < total % processes ? 1 : 0)
        if n == 0 { continue }
        workers.append(try Worker(arguments: ["--instances", "\(n)", "--first", "\(first)", "--env", env, "--redis", redis, "--expect-flags", "\(expectFlags)"]))
        first += n
    }
    return workers
}

@MainActor func waitFor(_ what: String, timeout: Double, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { throw NSError(domain: "fleet-load", code: 1, userInfo: [NSLocalizedDescriptionKey: "timed out waiting for \(what)"]) }
        try await Task.sleep(for: .milliseconds(50))
    }
}

let server = try await RedisServer.start()
defer { server.remove() }
let url = server.url
let admin = RedisClient(configuration: server.configuration)
let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-fleet-\(UUID().uuidString.prefix(6))")
defer { try? FileManager.default.removeItem(at: root) }
for env in ["load", "cold"] {
    try FileManager.default.createDirectory(at: root.appendingPathComponent(env), withIntermediateDirectories: true)
}
try """
    flags:
      switch:
        state: ENABLED
        variants: {"on": true, "off": false}
        defaultVariant: "off"
    """.write(to: root.appendingPathComponent("load/flags.yaml"), atomically: true, encoding: .utf8)
var cold = "flags:\n"
for i in 0..<coldFlags {
    switch i % 3 {
    case 0: cold += "  flag-\(i):\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n"
    case 1:
        cold += "  flag-\(i):\n    state: ENABLED\n    variants: {a: \"A\", b: \"B\"}\n    defaultVariant: a\n"
        cold += "    targeting: {if: [{ends_with: [{var: email}, \"@example.com\"]}, b, a]}\n"
    default:
        cold += "  flag-\(i):\n    state: ENABLED\n    variants: {control: 0, treatment: 1}\n    defaultVariant: control\n"
        cold += "    targeting: {fractional: [[control, 90], [treatment, 10]]}\n"
    }
}
try cold.write(to: root.appendingPathComponent("cold/flags.yaml"), atomically: true, encoding: .utf8)
let directory = FlagDirectory(root: root.path)
for env in ["load", "cold"] {
    let control = try EnvironmentControl(environment: env, client: admin, directory: directory)
    var options = EnvironmentControl.SyncOptions()
    options.reason = "fleet-load"
    _ = try await control.sync(options)
}

// Phase 1: propagation.
emit("phase 1: \(instances) instances in \(processes) processes, \(flips) flips \(gapMs) ms apart")
let memBefore = Double(try await info(admin, "memory")["used_memory"] ?? "0") ?? 0
var workers = try startWorkers(total: instances, env: "load", redis: url, expectFlags: 1)
let joinStart = Date()
try await waitFor("\(instances) instances ready", timeout: 180) {
    workers.reduce(0) { $0 + $1.snapshot.filter { $0.hasPrefix("READY ") }.count } >= instances
}
emit("  all \(instances) ready in \(fmt(Date().timeIntervalSince(joinStart))) s")
let clientsInfo = try await info(admin, "clients")
let memJoined = Double(try await info(admin, "memory")["used_memory"] ?? "0") ?? 0
let load = try EnvironmentControl(environment: "load", client: admin, directory: directory)
let cpuBefore = try await redisCPU(admin)
var committed: [Int64: Int64] = [:]  // revision → wall time just before its write started
for i in 0..<flips {
    let started = wallNanos()
    let outcome = try await load.apply(.set(variant: i % 2 == 0 ? "on" : "off"), flag: "switch", actor: "fleet-load", reason: nil)
    guard let revision = outcome.revision else {
        FileHandle.standardError.write(Data("fleet-load: flip \(i) wrote nothing\n".utf8))
        exit(1)
    }
    committed[revision] = started
    try await Task.sleep(for: .milliseconds(gapMs))
}
let lastRevision = committed.keys.max()!
try? await waitFor("every instance at revision \(lastRevision)", timeout: 30) {
    Set(workers.flatMap { $0.snapshot }.filter { $0.hasPrefix("APPLIED ") && $0.hasSuffix("") }.compactMap { line -> Int? in
        let f = line.split(separator: " ")
        return Int64(f[2]) == lastRevision ? Int(f[1]) : nil
    }).count >= instances
}
let cpuAfter = try await redisCPU(admin)
var applied: [Int: [Int64: Int64]] = [:]
for line in workers.flatMap({ $0.snapshot }) where line.hasPrefix("APPLIED ") {
    let f = line.split(separator: " ")
    applied[Int(f[1])!, default: [:]][Int64(f[2])!] = Int64(f[3])!
}
var latencies: [Double] = []
var complete = 0
for instance in 0..<instances {
    let mine = applied[instance] ?? [:]
    var all = true
    for (revision, at) in committed {
        if let t = mine[revision] {
            guard t >= at else {
                FileHandle.standardError.write(Data("fleet-load: instance \(instance) applied revision \(revision) before its write started\n".utf8))
                exit(1)
            }
            latencies.append(Double(t - at) / 1e6)
        } else {
            all = false
        }
    }
    if all { complete += 1 }
}
for w in workers { w.stop() }
emit("  instances that applied every one of the \(flips) changes: \(complete) of \(instances)")
emit("  propagation (before the write → instance applied), ms: p50 \(fmt(percentile(latencies, 0.5))), p99 \(fmt(percentile(latencies, 0.99))), max \(fmt(latencies.max() ?? .nan)) over \(latencies.count) applications")
emit("  Redis CPU during the flips: \(fmt(cpuAfter - cpuBefore, 3)) s (user+sys) over \(fmt(Double(flips * gapMs) / 1000, 1)) s")
emit("  Redis memory: \(fmt(memBefore / 1_048_576)) MiB before, \(fmt(memJoined / 1_048_576)) MiB with the fleet connected (\(clientsInfo["connected_clients"] ?? "?") connections)")

// Phase 2: a cold fleet on a big environment.
emit("phase 2: \(coldInstances) instances start at once on \(coldFlags) flags")
let bytesBefore = Double(try await info(admin, "stats")["total_net_output_bytes"] ?? "0") ?? 0
let launch = Date()
workers = try startWorkers(total: coldInstances, env: "cold", redis: url, expectFlags: coldFlags)
try await waitFor("\(coldInstances) cold instances ready", timeout: 300) {
    workers.reduce(0) { $0 + $1.snapshot.filter { $0.hasPrefix("READY ") }.count } >= coldInstances
}
let readyAfter = Date().timeIntervalSince(launch)
let bytesAfter = Double(try await info(admin, "stats")["total_net_output_bytes"] ?? "0") ?? 0
let full = workers.flatMap { $0.snapshot }.filter { $0.hasPrefix("READY ") && $0.hasSuffix(" 1") }.count
for w in workers { w.stop() }
emit("  all \(coldInstances) ready in \(fmt(readyAfter)) s (\(full) with all \(coldFlags) flags); Redis sent \(fmt(Double(bytesAfter - bytesBefore) / 1_048_576)) MiB (\(fmt((bytesAfter - bytesBefore) / Double(coldInstances) / 1024)) KiB per instance)")
if complete < instances {
    FileHandle.standardError.write(Data("fleet-load: \(instances - complete) of \(instances) instances missed a change\n".utf8))
    exit(1)
}
