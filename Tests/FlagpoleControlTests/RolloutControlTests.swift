import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Synchronization
import Testing

/// A metric source whose answers the test scripts (Redis stays real; only the metric source is a double).
final class ScriptedMetricSource: RolloutMetricSource {
    let name = "scripted"
    private let answer: Mutex<@Sendable (CohortQuery) throws -> CohortCounts>
    let queries = Mutex<[CohortQuery]>([])

    init(_ answer: @escaping @Sendable (CohortQuery) throws -> CohortCounts) {
        self.answer = Mutex(answer)
    }

    func script(_ answer: @escaping @Sendable (CohortQuery) throws -> CohortCounts) {
        self.answer.withLock { $0 = answer }
    }

    func counts(_ query: CohortQuery) async throws -> CohortCounts {
        queries.withLock { $0.append(query) }
        let f = answer.withLock { $0 }
        return try f(query)
    }

    /// Healthy traffic: 1,000 outcomes a minute per cohort, `rate` of them failing.
    static func rate(_ treatmentRate: Double, control controlRate: Double = 0.01) -> @Sendable (CohortQuery) -> CohortCounts {
        { q in
            let n = Double(max(0, q.to - q.from)) / 60 * 1000
            let r = q.role == "treatment" ? treatmentRate : controlRate
            return CohortCounts(successes: (n * (1 - r)).rounded(), failures: (n * r).rounded())
        }
    }
}

/// Collects alerts.
final class CollectingAlerts: AlertSink {
    let alerts = Mutex<[Alert]>([])
    func send(_ alert: Alert) { alerts.withLock { $0.append(alert) } }
    var all: [Alert] { alerts.withLock { $0 } }
}

/// A real Redis, a flags folder, one synced flag.
struct RolloutFixture {
    static let flag: JSONValue = [
        "state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off",
        "metadata": ["rollout.watch": "1h", "rollout.minSamples": 100],
    ]

    let server: RedisServer
    let client: RedisClient
    let control: EnvironmentControl
    let root: URL

    static func with(config: String? = nil, _ body: (RolloutFixture) async throws -> Void) async throws {
        try await RedisServer.withServer { server in
            let root = server.directory.appendingPathComponent("flags-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            if let config { try config.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8) }
            let client = RedisClient(configuration: server.configuration)
            let control = try EnvironmentControl(environment: "prod", client: client, directory: FlagDirectory(root: root.path))
            var sync = StoreChange(audit: AuditEntry(action: "sync", actor: "ci", at: 1, flags: ["new-checkout"]))
            sync.setDefinitions = ["new-checkout": flag]
            try await control.store.apply(sync, expectedRevision: 0)
            try await body(RolloutFixture(server: server, client: client, control: control, root: root))
        }
    }

    func start(steps: [Int] = [10, 50, 100], dryRun: Bool = false, holdback: Double? = nil, now: Int64) async throws -> RolloutRecord {
        var r = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
        r.steps = steps
        r.holdback = holdback
        r.dryRun = dryRun
        r.actor = "ann@host"
        r.now = now
        return try await control.startRollout(r)
    }
}

@Suite("flagctl rollout: start, pause, resume, abort, promote", .timeLimit(.minutes(2)))
struct RolloutControlTests {
    @Test("start writes the first step's sticky split, the record and the audit in one revision; guards default from the flag's metadata")
    func start() async throws {
        try await RolloutFixture.with { f in
            let record = try await f.start(now: 1_000)
            #expect(record.revision == 2 && record.overrideRevision == 2)
            #expect(record.watchSeconds == 3600 && record.limits.minSamples == 100 && record.limits.maxErrorRate == 0.05)
            let live = try await f.control.store.read()
            guard case .rollout(let split)? = live.overrides["new-checkout"]?.override else {
                Issue.record("no rollout override")
                return
            }
            #expect(split.percent == 10 && split.targetVariant == "on" && split.rolloutID == record.id)
            #expect(try await f.control.store.rollout(flag: "new-checkout") == record)
            #expect(try await f.control.store.auditEntries(limit: 1).first?.action == "rollout-start")
        }
    }

    @Test("bad starts are clear errors and write nothing", arguments: ["unknown-variant", "steps", "running", "pinned", "no-flag"])
    func badStarts(kind: String) async throws {
        try await RolloutFixture.with { f in
            var r = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
            var expected: StoreError.Code
            var words: String
            switch kind {
            case "unknown-variant":
                r.target = "maybe"
                expected = .invalidInput
                words = "no variant 'maybe' (variants: off, on)"
            case "steps":
                r.steps = [50, 10]
                expected = .invalidInput
                words = "increasing percentages"
            case "running":
                _ = try await f.start(now: 1)
                expected = .rolloutState
                words = "already has rollout"
            case "pinned":
                var pin = StoreChange(audit: AuditEntry(action: "test", actor: "t", at: 1, flags: ["new-checkout"]))
                pin.setPins = ["new-checkout": PinRecord(by: "watcher", reason: "x", at: 1, revision: 0)]
                try await f.control.store.apply(pin, expectedRevision: 1)
                expected = .pinned
                words = "--unpin new-checkout"
            default:
                r.flag = "nope"
                expected = .flagNotFound
                words = "flag 'nope' is not in prod"
            }
            let before = try await f.control.store.revision()
            await #expect {
                try await f.control.startRollout(r)
            } throws: { e in
                guard let e = e as? StoreError else { return false }
                return e.code == expected && e.message.contains(words)
            }
            #expect(try await f.control.store.revision() == before)
        }
    }

    @Test("a start inside a freeze window is refused naming the window, unless forced, which the audit records")
    func freeze() async throws {
        let config = """
            version: 1
            freezeWindows:
              - name: year-end
                from: "2025-12-19T00:00:00Z"
                to: "2026-01-04T08:00:00Z"
                reason: Nobody is around.
            """
        try await RolloutFixture.with(config: config) { f in
            let inside: Int64 = 1_767_225_600  // 2026-01-01
            await #expect {
                _ = try await f.start(now: inside)
            } throws: { e in
                (e as? StoreError)?.code == .frozen && "\(e)".contains("'year-end' (Nobody is around.)") && "\(e)".contains("--force")
            }
            #expect(try await f.control.store.revision() == 1)
            var r = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
            r.force = true
            r.now = inside
            let record = try await f.control.startRollout(r)
            #expect(record.forcedWindows == ["year-end"])
            let audit = try await f.control.store.auditEntries(limit: 1)
            #expect(audit.first?.details["forcedWindows"] == ["year-end"])
            // Outside the window: no force needed.
            _ = try await f.control.driveRollout(.abort, flag: "new-checkout", actor: "ann", reason: nil)
            _ = try await f.start(now: inside + 30 * 86_400)
        }
    }

    @Test("abort puts back exactly the override there was before the rollout")
    func abortRestores() async throws {
        try await RolloutFixture.with { f in
            _ = try await f.control.apply(.enable(true), flag: "new-checkout", actor: "bob@host", reason: "keep on")
            let before = try await f.control.store.read().overrides["new-checkout"]
            _ = try await f.start(now: 10)
            let aborted = try await f.control.driveRollout(.abort, flag: "new-checkout", actor: "ann", reason: "not today")
            #expect(aborted.status == .aborted)
            let after = try await f.control.store.read().overrides["new-checkout"]
            #expect(after?.override == before?.override && after?.actor == "bob@host" && after?.reason == "keep on")
            await #expect(throws: StoreError.self) { try await f.control.driveRollout(.abort, flag: "new-checkout", actor: "ann", reason: nil) }
            // Without an override before, abort removes the rollout's.
            _ = try await f.control.apply(.clear(unpin: false), flag: "new-checkout", actor: "bob", reason: nil)
            _ = try await f.start(now: 20)
            _ = try await f.control.driveRollout(.abort, flag: "new-checkout", actor: "ann", reason: nil)
            #expect(try await f.control.store.read().overrides["new-checkout"] == nil)
        }
    }

    @Test("pause, resume (the step clock continues), promote (the target for everyone)")
    func pauseResumePromote() async throws {
        try await RolloutFixture.with { f in
            let started = try await f.start(now: 1_000)
            let paused = try await f.control.driveRollout(.pause, flag: "new-checkout", actor: "ann", reason: nil, now: 1_600)
            #expect(paused.status == .paused && paused.pausedAt == 1_600)
            // The state machine refuses; the refusal is the error people read.
            let again = await #expect(throws: StoreError.self) {
                try await f.control.driveRollout(.pause, flag: "new-checkout", actor: "ann", reason: nil)
            }
            #expect(again?.code == .rolloutState)
            #expect(again?.message == "rollout \(started.id) is already paused; flagctl rollout resume new-checkout continues it")
            let resumed = try await f.control.driveRollout(.resume, flag: "new-checkout", actor: "ann", reason: nil, now: 2_600)
            #expect(resumed.status == .running && resumed.stepStartedAt == started.stepStartedAt + 1_000)
            let running = await #expect(throws: StoreError.self) {
                try await f.control.driveRollout(.resume, flag: "new-checkout", actor: "ann", reason: nil)
            }
            #expect(running?.message == "rollout \(started.id) is running, not paused")
            let promoted = try await f.control.driveRollout(.promote, flag: "new-checkout", actor: "ann", reason: nil)
            #expect(promoted.status == .completed)
            let ended = await #expect(throws: StoreError.self) {
                try await f.control.driveRollout(.abort, flag: "new-checkout", actor: "ann", reason: nil)
            }
            #expect(ended?.message == "rollout \(started.id) of 'new-checkout' already ended (completed: promoted by ann); nothing to abort")
            #expect(ended?.key == f.control.store.layout.rollouts)
            #expect(try await f.control.store.read().overrides["new-checkout"]?.override == .variant("on"))
            #expect(try await f.control.store.read().effectiveDefinition(of: "new-checkout")?["defaultVariant"] == "on")
        }
    }

    @Test("a holdback: only the final step keeps a sticky share on the old variant; completing releases it; a bad one is refused")
    func holdback() async throws {
        try await RolloutFixture.with(config: "guard:\n  holdback: 3%\n") { f in
            let record = try await f.start(steps: [50, 100], holdback: 2, now: 1_000)
            #expect(record.holdback == 2 && record.activeHoldback == 0 && record.hasConcurrentControl)
            guard case .rollout(let first)? = try await f.control.store.read().overrides["new-checkout"]?.override else {
                Issue.record("no rollout override")
                return
            }
            #expect(first.holdback == 0)
            // The final step: 98 % get "on", a sticky 2 % what they had; keys in the 50 % stay in.
            var last = record
            last.stepIndex = 1
            #expect(last.activeHoldback == 2 && last.hasConcurrentControl)
            let definition = last.split.apply(to: RolloutFixture.flag)
            let buckets = definition["targeting"]?["if"]?.arrayValue?.first?["=="]?.arrayValue?.first?["fractional"]?.arrayValue
            #expect(buckets?.count == 3 && buckets?[1] == .array(["treatment", .int(9800)]) && buckets?[2] == .array(["control", .int(200)]))
            let half = first.apply(to: RolloutFixture.flag), final = last.split.apply(to: RolloutFixture.flag)
            var held = 0
            for i in 0..<2000 {
                let context = EvaluationContext(targetingKey: "user-\(i)")
                func variant(_ d: JSONValue) -> String? {
                    CompiledFlagSet(["flags": ["f": d]]).evaluate("f", context: context).variant
                }
                let a = variant(half), b = variant(final)
                if a == "on" { #expect(b == "on", "user-\(i) flipped back") }
                if b == "off" { held += 1 }
            }
            #expect(held > 15 && held < 70)  // 2 % of 2000 = 40
            // The stored split says so; an old record without "holdback" reads as none.
            #expect(try RolloutSplit(json: last.split.json).holdback == 2)
            var old = record.json.objectValue!
            old["holdback"] = nil
            #expect(try RolloutRecord(json: .object(old)).holdback == 0)
            // Promote (complete): the target for everyone, holdback released.
            _ = try await f.control.driveRollout(.promote, flag: "new-checkout", actor: "ann", reason: nil)
            #expect(try await f.control.store.read().overrides["new-checkout"]?.override == .variant("on"))
        }
        try await RolloutFixture.with(config: "guard:\n  holdback: 3%\n") { f in
            await #expect(throws: StoreError.self) { try await f.start(steps: [100], holdback: 60, now: 1_000) }
            do {
                _ = try await f.start(steps: [100], holdback: 60, now: 1_000)
            } catch let error as StoreError {
                #expect(error.message.contains("--holdback 60% must be a percentage between 0 and 50"))
            }
            #expect(try await f.start(steps: [100], now: 1_000).holdback == 3)
        }
    }
}
