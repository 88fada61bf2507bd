import Flagpole
import FlagpoleControl
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The flags most tests start from (environment `prod`).
let baseFlags = """
    {"flags": {
      "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
      "banner": {"state": "ENABLED", "variants": {"short": "Hi", "long": "Hello there"}, "defaultVariant": "short",
                 "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "long", null]}},
      "limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "low"},
      "ratio": {"state": "ENABLED", "variants": {"a": 0.25, "b": 0.75}, "defaultVariant": "a"},
      "theme": {"state": "ENABLED", "variants": {"dark": {"bg": "#000"}}, "defaultVariant": "dark"}
    }, "metadata": {"version": "1"}}
    """

/// A temporary `flags/` folder with `prod/flags.json`, synced into a test server.
struct Fixture {
    let server: RedisServer
    let root: URL
    let admin: RedisClient
    let control: EnvironmentControl

    init(_ server: RedisServer, flags: String = baseFlags, client: RedisClient? = nil) async throws {
        self.server = server
        root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-client-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
        admin = RedisClient(configuration: server.configuration)
        control = try EnvironmentControl(
            environment: "prod", client: client ?? admin, directory: FlagDirectory(root: root.path))
        try await sync(flags)
    }

    /// Writes the flag file and syncs it (removing flags that are gone from it).
    func sync(_ flags: String) async throws {
        try flags.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
        var options = EnvironmentControl.SyncOptions()
        options.prune = true
        switch try await control.sync(options) {
        case .applied, .noChange: break
        case .invalid(let diagnostics): Issue.record("invalid test flags: \(diagnostics)")
        case .planned: Issue.record("sync only planned")
        }
    }

    var layout: StoreLayout { control.store.layout }

    /// A test configuration: no disk snapshot, fast flushes and heartbeats.
    func configuration(application: String = "tests") -> FlagpoleClient.Configuration {
        var c = FlagpoleClient.Configuration(redis: server.configuration, environment: "prod", application: application)
        c.snapshotPath = nil
        c.startupTimeout = .seconds(5)
        c.outcomes.flushInterval = .milliseconds(50)
        c.heartbeat.interval = .milliseconds(200)
        return c
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }

    /// Writes a definition straight into the flags hash, bypassing the write script (no event).
    func writeRaw(flag: String, _ text: String) async throws {
        _ = try await admin.send("HSET", layout.flags, flag, text)
    }

    /// Bumps the revision by hand (no event); returns the new one.
    func bumpRevision() async throws -> Int64 {
        try await admin.send("INCR", layout.revision).integer ?? -1
    }

    /// Publishes a change event by hand.
    func publish(_ event: String) async throws {
        _ = try await admin.send("PUBLISH", layout.changes, event)
    }
}

/// Runs `client` while `body` runs; then cancels it and waits for it to finish.
func whileRunning<T>(_ client: FlagpoleClient, _ body: () async throws -> T) async throws -> T {
    let task = Task { try await client.run() }
    do {
        let result = try await body()
        task.cancel()
        try await task.value
        return result
    } catch {
        task.cancel()
        _ = try? await task.value
        throw error
    }
}

/// Threads that evaluate in a loop until stopped, counting what they see.
final class Evaluators: Sendable {
    let stop = Atomic<Bool>(false)
    let evaluations = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let inconsistent = Atomic<Int>(0)
    let stale = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    /// Per thread, the last value seen (0 false, 1 true).
    let lastValues: [AtomicBox]
    let count: Int

    init(count: Int, client: FlagpoleClient, flag: String) {
        self.count = count
        lastValues = (0..<count).map { _ in AtomicBox() }
        for i in 0..<count {
            let thread = Thread { [self] in
                while !stop.load(ordering: .relaxed) {
                    let d = client.boolDetails(flag, default: false)
                    evaluations.add(1, ordering: .relaxed)
                    if d.reason == .error { errors.add(1, ordering: .relaxed) }
                    if d.reason == .stale { stale.add(1, ordering: .relaxed) }
                    // A torn snapshot would pair a value with the other variant.
                    if d.value != (d.variant == "on") { inconsistent.add(1, ordering: .relaxed) }
                    lastValues[i].value.store(d.value ? 1 : 0, ordering: .relaxed)
                }
                finished.add(1, ordering: .relaxed)
            }
            thread.start()
        }
    }

    func allSee(_ value: Bool) -> Bool {
        lastValues.allSatisfy { $0.value.load(ordering: .relaxed) == (value ? 1 : 0) }
    }

    func halt() async throws {
        stop.store(true, ordering: .relaxed)
        try await waitUntil("the evaluating threads stop") { finished.load(ordering: .relaxed) == count }
    }
}

/// An atomic in a box of its own, for arrays of them.
final class AtomicBox: Sendable {
    let value = Atomic<Int>(-1)
}

extension Duration {
    var milliseconds: Double { seconds * 1000 }
}
