import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Testing

@Suite("Rollout overrides and rollout state in the store", .timeLimit(.minutes(2)))
struct RolloutStoreTests {
    static let flag: JSONValue = [
        "state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off",
        "targeting": ["if": [["==": [["var": "plan"], "gold"]], "on", nil]],
    ]

    func evaluate(_ definition: JSONValue, key: String?, attributes: [String: JSONValue] = [:]) -> EvaluationResult {
        let set = CompiledFlagSet(["flags": ["f": definition]])
        return set.evaluate("f", context: EvaluationContext(targetingKey: key, attributes: attributes))
    }

    @Test("every override kind's effective definition compiles and evaluates without error")
    func everyKindCompiles() throws {
        let split = RolloutSplit(rolloutID: "f-1", targetVariant: "on", percent: 25, base: .enabled(true))
        let kinds: [FlagOverride] = [
            .variant("on"), .enabled(false), .enabled(true), .rollout(split),
            .rollout(RolloutSplit(rolloutID: "f-1", targetVariant: "on", percent: 100)), .definition(Self.flag),
        ]
        for kind in kinds {
            let effective = kind.apply(to: Self.flag)
            for key in ["u1", "u2", "u3"] {
                let r = evaluate(effective, key: key)
                #expect(r.errorCode == nil, "\(kind.summary): \(r.errorMessage ?? "")")
            }
            // And the JSON form reads back as the same override.
            let record = OverrideRecord(override: kind, actor: "a", reason: nil, at: 1, revision: 2)
            #expect(try OverrideRecord(json: record.json) == record)
        }
    }

    @Test("a rollout step is sticky: a key inside P% stays inside as P grows, and the shares are about right")
    func sticky() {
        let keys = (0..<4000).map { "user-\($0)" }
        var previous: Set<String> = []
        for p in [1, 5, 25, 50, 99, 100] {
            let def = FlagOverride.rollout(RolloutSplit(rolloutID: "new-checkout-1767225600", targetVariant: "on", percent: p)).apply(to: Self.flag)
            var treated: Set<String> = []
            for k in keys where evaluate(def, key: k).variant == "on" { treated.insert(k) }
            #expect(previous.isSubset(of: treated), "keys left the treatment at \(p)%")
            let share = Double(treated.count) / Double(keys.count)
            #expect(abs(share - Double(p) / 100) < 0.03, "share \(share) at \(p)%")
            previous = treated
        }
    }

    @Test("outside the treatment a user gets exactly what the flag gave before (its targeting)")
    func controlKeepsOriginal() {
        let def = FlagOverride.rollout(RolloutSplit(rolloutID: "r", targetVariant: "on", percent: 10)).apply(to: Self.flag)
        var controlGold = 0
        for i in 0..<500 {
            let key = "k\(i)"
            let withRollout = evaluate(def, key: key, attributes: ["plan": "silver"])
            if withRollout.variant == "on" { continue }
            #expect(withRollout.variant == evaluate(Self.flag, key: key, attributes: ["plan": "silver"]).variant)
            let gold = evaluate(def, key: key, attributes: ["plan": "gold"])
            #expect(gold.variant == "on")
            controlGold += 1
        }
        #expect(controlGold > 400)
    }

    @Test("a frozen definition serves exactly itself, whatever the files now say")
    func frozen() {
        let frozen = FlagOverride.definition(Self.flag)
        let changed: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "on"]
        #expect(frozen.apply(to: changed) == Self.flag)
    }

    @Test("an override of an unknown kind is a clear corruptData error")
    func unknownKind() {
        #expect {
            try OverrideRecord(json: ["teleport": "on", "actor": "x"])
        } throws: { e in
            (e as? StoreError)?.code == .corruptData && "\(e)".contains("newer Flagpole")
        }
    }

    @Test("a watcher lease whose numbers are not whole numbers within ±2^53 is corrupt, never a trap")
    func leaseNumbers() throws {
        let good = try WatcherLease(json: ["holder": "d1", "token": 7, "renewedAt": 1_000, "expiresAt": 31_000])
        #expect(good.token == 7 && good.expiresAt == 31_000)
        for bad: JSONValue in [
            ["holder": "d1", "token": 1e19], ["holder": "d1", "token": 1.5], ["holder": "d1", "token": 1, "expiresAt": -1e300],
        ] {
            #expect(throws: StoreError.self, "\(bad)") { try WatcherLease(json: bad) }
        }
    }

    @Test("the rollout record round-trips through its JSON")
    func recordRoundTrip() throws {
        var r = RolloutRecord(
            id: "f-1", flag: "f", targetVariant: "on", steps: [5, 50, 100], stepIndex: 1, stepStartedAt: 100, watchSeconds: 60,
            limits: GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 10, maxP95LatencyMicros: 800_000),
            before: .init(
                override: OverrideRecord(override: .enabled(true), actor: "a", reason: "r", at: 1, revision: 3), pin: nil, definition: Self.flag),
            startedBy: "ann", startedAt: 90, reason: "launch")
        r.wouldRevert = "would revert at 00:02Z: x"
        r.decisions = ["advance": 1]
        #expect(try RolloutRecord(json: r.json) == r)
    }

    @Test("the lease: one holder at a time, renewals keep the token, expiry hands it over with a higher token")
    func lease() async throws {
        try await RedisServer.withServer { server in
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            guard case .acquired(let a) = try await store.acquireLease(holder: "A", nowMilliseconds: 1_000, ttlMilliseconds: 30_000) else {
                Issue.record("A did not get a free lease")
                return
            }
            guard case .heldByOther(let seen) = try await store.acquireLease(holder: "B", nowMilliseconds: 2_000, ttlMilliseconds: 30_000) else {
                Issue.record("B got a lease A holds")
                return
            }
            #expect(seen.holder == "A")
            guard case .acquired(let renewed) = try await store.acquireLease(holder: "A", nowMilliseconds: 10_000, ttlMilliseconds: 30_000) else {
                Issue.record("A could not renew")
                return
            }
            #expect(renewed.token == a.token && renewed.expiresAt == 40_000)
            guard case .acquired(let b) = try await store.acquireLease(holder: "B", nowMilliseconds: 40_001, ttlMilliseconds: 30_000) else {
                Issue.record("B did not get an expired lease")
                return
            }
            #expect(b.token == a.token + 1)
            // A's renewal now fails: B holds it.
            guard case .heldByOther = try await store.acquireLease(holder: "A", nowMilliseconds: 40_002, ttlMilliseconds: 30_000) else {
                Issue.record("A took B's lease")
                return
            }
            try await store.releaseLease(holder: "B", token: b.token)
            let read = try await store.readRollouts()
            #expect(read.lease?.holder == "B" && read.lease?.isLive(atMilliseconds: 40_003) == false)
        }
    }

    @Test("a write with a stale fencing token is refused inside the script and writes nothing")
    func fenced() async throws {
        try await RedisServer.withServer { server in
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            var sync = StoreChange(audit: AuditEntry(action: "sync", actor: "t", at: 1, flags: ["f"]))
            sync.setDefinitions = ["f": Self.flag]
            try await store.apply(sync, expectedRevision: 0)
            guard case .acquired(let old) = try await store.acquireLease(holder: "A", nowMilliseconds: 0, ttlMilliseconds: 10) else { return }
            guard case .acquired(let new) = try await store.acquireLease(holder: "B", nowMilliseconds: 100, ttlMilliseconds: 10) else { return }
            #expect(new.token == old.token + 1)
            var stale = StoreChange(audit: AuditEntry(action: "rollout-revert", actor: "watcher", at: 2, flags: ["f"]))
            stale.setOverrides = ["f": OverrideRecord(override: .variant("off"), actor: "watcher", reason: nil, at: 2, revision: 0)]
            stale.fence = old.token
            await #expect {
                try await store.apply(stale, expectedRevision: 1)
            } throws: { e in
                (e as? StoreError)?.code == .fenced && (e as? StoreError)?.key == store.layout.watcherFence
            }
            #expect(try await store.revision() == 1)
            #expect(try await store.read().overrides.isEmpty)
            stale.fence = new.token
            #expect(try await store.apply(stale, expectedRevision: 1) == 2)
            // Observations are fenced too.
            let obs = RolloutObservation(
                rolloutID: "r", at: 1, verdict: .hold, reason: "x", treatment: nil, control: nil, source: "builtin", holds: 1, watcher: "A")
            await #expect(throws: StoreError.self) { try await store.recordObservation(obs, flag: "f", token: old.token, audit: nil) }
            try await store.recordObservation(
                obs, flag: "f", token: new.token, audit: AuditEntry(action: "rollout-hold", actor: "watcher", at: 3, flags: ["f"]))
            #expect(try await store.readRollouts().observations["f"]?.reason == "x")
            let audit = try await store.auditEntries(flag: "f")
            #expect(audit.first?.action == "rollout-hold" && audit.first?.revision == 2)
            #expect(try await store.revision() == 2)
        }
    }
}
