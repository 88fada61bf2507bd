import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The rollout watcher (`flagctl daemon --env ENV`): every interval it takes or renews the
/// environment's watcher lease, reads each running rollout's cohorts from its metric source,
/// decides hold / advance / complete / revert, and acts — every write through the store's one
/// atomic script, checked against the revision it read and the lease's fencing token.
///
/// - Durable: all state is in Redis; a watcher that is killed and restarted (or another one)
///   resumes where the last one was.
/// - Single-minded: only the lease holder acts, and a write from a watcher whose lease was taken
///   over is refused inside the script (``StoreError/Code/fenced``).
/// - Never fights a person: when the flag's override is no longer the one the rollout wrote, the
///   rollout stops (status `stopped`, "changed by … at revision N"), audited and alerted, and the
///   flag is left alone.
/// - Graceful: on shutdown it finishes the tick in progress (a decision is never half applied),
///   then gives the lease up.
///
/// Time comes from an injected ``RolloutClock``; ``tick()`` runs one pass, so tests drive an
/// hour of watching in milliseconds.
package final class RolloutWatcher: Service, Sendable {
    /// How the watcher runs.
    package struct Configuration: Sendable {
        /// The environment watched.
        package var environment: String
        /// This watcher's identity in the lease. Default: `host-pid-random`.
        package var holderID: String
        /// Time between ticks. Default: 10 s.
        package var interval: Duration = .seconds(10)
        /// How long a lease lasts without renewal (renewed every tick). Default: 30 s.
        package var leaseTTL: Duration = .seconds(30)
        /// At most one audited hold per rollout per this interval. Default: 60 s.
        package var holdAuditInterval: Duration = .seconds(60)
        /// The actor named in the audit and pins. Default: `watcher`.
        package var actor = "watcher"

        /// Creates a configuration for an environment.
        package init(environment: String, holderID: String? = nil) {
            self.environment = environment
            self.holderID = holderID ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        }
    }

    /// Makes the metric source a rollout's stored settings name (`builtin`, `prometheus`).
    package typealias MetricSourceFactory = @Sendable (RolloutRecord.MetricSettings) throws -> any RolloutMetricSource

    /// What one tick did.
    package struct TickReport: Sendable, Hashable {
        /// Whether this watcher held the lease (and so looked at rollouts).
        package var isLeader: Bool
        /// The fencing token held, if leader.
        package var token: Int64?
        /// Flag → what was done (`hold`, `advance`, `complete`, `revert`, `would-revert`, `stop`, `paused`).
        package var actions: [String: String]
        /// Who holds the lease when it is not this watcher.
        package var leaseHolder: String?
    }

    /// Counters for `/metrics` (see ``Metrics``).
    package struct Snapshot: Sendable, Hashable {
        /// Rollouts by status at the last tick.
        package var rolloutsByState: [String: Int] = [:]
        /// Decisions by verdict since start.
        package var decisionsByVerdict: [String: Int] = [:]
        package var reverts = 0
        /// Unix ms of the last decision (any verdict); 0 for none yet.
        package var lastDecisionAt: Int64 = 0
        /// Unix ms of the last tick that read Redis successfully; 0 for none yet.
        package var lastSuccessfulTickAt: Int64 = 0
        package var isLeader = false
        package var tickErrors = 0
    }

    private struct State {
        var token: Int64?
        var lastHoldAudit: [String: Int64] = [:]
        var holds: [String: Int] = [:]
        /// Rollout id → whether the last look found an incident (a warning alert when one begins).
        var inIncident: [String: Bool] = [:]
        /// Rollout id → the flag's minutes before the rollout (for the drift of a control at 100 %
        /// without a holdback): read once, when they can no longer change.
        var baselines: [String: [CohortCounts]] = [:]
        var snapshot = Snapshot()
    }

    package let configuration: Configuration
    package let store: FlagStore
    private let client: RedisClient
    private let metricSource: MetricSourceFactory
    private let decider: any RolloutDeciding
    private let alerts: any AlertSink
    let clock: any RolloutClock
    private let logger: Logger
    private let state = Mutex(State())

    /// Creates a watcher; nothing runs until ``run()`` (or ``tick()``).
    package init(
        configuration: Configuration, client: RedisClient, metricSource: @escaping MetricSourceFactory,
        decider: any RolloutDeciding = RolloutJudgeDecider(), alerts: any AlertSink, clock: any RolloutClock = SystemRolloutClock(),
        logger: Logger
    ) throws(StoreError) {
        self.configuration = configuration
        self.store = try FlagStore(client: client, environment: configuration.environment)
        self.client = client
        self.metricSource = metricSource
        self.decider = decider
        self.alerts = alerts
        self.clock = clock
        var logger = logger
        logger[metadataKey: "flagpole.environment"] = .string(configuration.environment)
        self.logger = logger
    }

    /// The counters behind ``Metrics`` (`/metrics`).
    package var snapshot: Snapshot { state.withLock { $0.snapshot } }

    /// For `/readyz`: the last tick read Redis within three intervals (as leader or standby).
    package var isHealthy: Bool {
        let last = snapshot.lastSuccessfulTickAt
        return last > 0 && clock.nowMilliseconds() - last <= 3 * Self.milliseconds(configuration.interval)
    }

    /// Ticks every ``Configuration/interval`` until cancelled or shut down gracefully; a tick in
    /// progress always finishes (its writes are never cut short). Then gives the lease up.
    package func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // The tick runs outside this task's cancellation: a decision is applied whole or not at all.
            let tick = Task { try await self.tick() }
            do { _ = try await tick.value } catch {
                logger.warning("watcher tick failed", metadata: ["flagpole.error": "\(error)"])
            }
            do {
                try await cancelWhenGracefulShutdown { try await self.clock.sleep(for: self.configuration.interval) }
            } catch {
                break
            }
        }
        if let token = state.withLock({ $0.token }) {
            try? await store.releaseLease(holder: configuration.holderID, token: token)
            state.withLock {
                $0.token = nil
                $0.snapshot.isLeader = false
            }
        }
    }

    /// One pass: lease, then every running or paused rollout. Throws when Redis cannot be read.
    @discardableResult
    package func tick() async throws -> TickReport {
        let now = clock.nowMilliseconds()
        let lease: LeaseResult
        do {
            lease = try await store.acquireLease(
                holder: configuration.holderID, nowMilliseconds: now, ttlMilliseconds: Self.milliseconds(configuration.leaseTTL))
        } catch {
            state.withLock { $0.snapshot.tickErrors += 1 }
            throw error
        }
        guard case .acquired(let held) = lease else {
            guard case .heldByOther(let other) = lease else { fatalError("unreachable") }
            state.withLock {
                $0.token = nil
                $0.snapshot.isLeader = false
                $0.snapshot.lastSuccessfulTickAt = now
            }
            return TickReport(isLeader: false, token: nil, actions: [:], leaseHolder: other.holder)
        }
        let previous = state.withLock { s -> Int64? in
            let p = s.token
            s.token = held.token
            s.snapshot.isLeader = true
            return p
        }
        if previous != held.token {
            logger.info("watcher took the lease", metadata: ["flagpole.fence": "\(held.token)", "flagpole.watcher": "\(configuration.holderID)"])
        }
        let all = try await store.readRollouts(includeObservations: false)
        var actions: [String: String] = [:]
        var byState: [String: Int] = [:]
        for (_, r) in all.rollouts { byState[r.status.rawValue, default: 0] += 1 }
        for (flag, record) in all.rollouts.sorted(by: { $0.key < $1.key }) where record.status.isActive {
            do {
                if let action = try await watch(flag: flag, rolloutID: record.id, token: held.token) { actions[flag] = action }
            } catch let error as StoreError where error.code == .fenced {
                logger.warning("watcher lost the lease mid-tick; stopping", metadata: ["flagpole.flag": "\(flag)"])
                state.withLock {
                    $0.token = nil
                    $0.snapshot.isLeader = false
                }
                return TickReport(isLeader: false, token: nil, actions: actions, leaseHolder: nil)
            } catch {
                logger.warning("watching a rollout failed", metadata: ["flagpole.flag": "\(flag)", "flagpole.error": "\(error)"])
                state.withLock { $0.snapshot.tickErrors += 1 }
            }
        }
        // The counts after this tick's actions.
        for (flag, action) in actions {
            guard let from = all.rollouts[flag]?.status.rawValue else { continue }
            let to: String? = ["complete": "completed", "revert": "reverted", "stop": "stopped"][action]
            if let to {
                byState[from, default: 1] -= 1
                byState[to, default: 0] += 1
            }
        }
        state.withLock {
            $0.snapshot.rolloutsByState = byState
            $0.snapshot.lastSuccessfulTickAt = clock.nowMilliseconds()
        }
        return TickReport(isLeader: true, token: held.token, actions: actions, leaseHolder: configuration.holderID)
    }

    // MARK: - One rollout

    /// Looks at one rollout and acts; returns what was done.
    private func watch(flag: String, rolloutID: String, token: Int64) async throws -> String? {
        for attempt in 1...3 {
            let live = try await store.read(flag: flag)
            guard let record = try await store.rollout(flag: flag), record.id == rolloutID, record.status.isActive else { return nil }
            let nowMS = clock.nowMilliseconds()
            let now = nowMS / 1000
            do {
                if let foreign = RolloutTransitions.foreignChange(record: record, live: live) {
                    return try await stop(record, live: live, foreign: foreign, token: token, now: now)
                }
                let (decision, treatment, control, sourceName) = await judge(record, now: now)
                count(decision: decision, at: nowMS)
                alertOnIncident(record, decision: decision, now: now)
                let holdKey = "\(record.id)#\(record.stepIndex)"
                let holds = state.withLock { s -> Int in
                    if decision.verdict == .hold { s.holds[holdKey, default: 0] += 1 }
                    return s.holds[holdKey] ?? 0
                }
                var observation = RolloutObservation(
                    rolloutID: record.id, at: now, verdict: decision.verdict, reason: decision.reason, evidence: decision.evidence,
                    treatment: treatment, control: control, source: sourceName, holds: holds, watcher: configuration.holderID)
                if record.status == .paused {
                    observation.reason = "paused (the watcher does not act); it would \(decision.verdict.rawValue): \(decision.reason)"
                    try await store.recordObservation(observation, flag: flag, token: token, audit: nil)
                    return "paused"
                }
                if record.dryRun && (decision.verdict == .advance || decision.verdict == .complete) {
                    // A dry run of the guards: report, never act.
                    observation.reason = "dry run: would \(decision.verdict.rawValue): \(decision.reason)"
                    try await store.recordObservation(
                        observation, flag: flag, token: token, audit: sampledHoldAudit(record, decision: decision, nowMS: nowMS))
                    return "would-\(decision.verdict.rawValue)"
                }
                switch decision.verdict {
                case .hold:
                    try await store.recordObservation(
                        observation, flag: flag, token: token, audit: sampledHoldAudit(record, decision: decision, nowMS: nowMS))
                    return "hold"
                case .advance:
                    var change = RolloutTransitions.advance(record, actor: configuration.actor, at: now, decision: decision)
                    change.fence = token
                    try await confirmPrimary()
                    try await store.apply(change, expectedRevision: live.revision)
                    try? await store.recordObservation(observation, flag: flag, token: token, audit: nil)  // the decision stands either way
                    logger.info("rollout advanced", metadata: ["flagpole.flag": "\(flag)", "flagpole.rollout": "\(record.id)"])
                    return "advance"
                case .complete:
                    var change = RolloutTransitions.complete(record, actor: configuration.actor, at: now, decision: decision, promoted: false)
                    change.fence = token
                    try await confirmPrimary()
                    try await store.apply(change, expectedRevision: live.revision)
                    try? await store.recordObservation(observation, flag: flag, token: token, audit: nil)  // the decision stands either way
                    alerts.send(
                        Alert(
                            severity: .info, title: "\(configuration.environment): \(flag) rollout completed",
                            text: "Rollout \(record.id) of \(flag) → \(record.targetVariant) passed every step. \(decision.reason)",
                            environment: configuration.environment, flag: flag, rolloutID: record.id, details: decision.evidence, at: now))
                    return "complete"
                case .revert:
                    if record.dryRun {
                        try await store.recordObservation(observation, flag: flag, token: token, audit: nil)
                        guard record.wouldRevert == nil else { return "would-revert" }
                        let note = "would revert at \(Self.clockTime(now)): \(decision.reason)"
                        var change = RolloutTransitions.wouldRevert(record, actor: configuration.actor, at: now, decision: decision, note: note)
                        change.fence = token
                        try await confirmPrimary()
                        try await store.apply(change, expectedRevision: live.revision)
                        alerts.send(
                            Alert(
                                severity: .warning, title: "\(configuration.environment): \(flag) dry run would revert",
                                text:
                                    "Dry-run rollout \(record.id) of \(flag): \(note). The watcher changed nothing: the flag stays at \(record.percent)% until someone runs flagctl rollout abort or promote.",
                                environment: configuration.environment, flag: flag, rolloutID: record.id, details: decision.evidence, at: now))
                        return "would-revert"
                    }
                    var change = RolloutTransitions.revert(record, actor: configuration.actor, at: now, decision: decision)
                    change.fence = token
                    try await confirmPrimary()
                    let revision = try await store.apply(change, expectedRevision: live.revision)
                    try? await store.recordObservation(observation, flag: flag, token: token, audit: nil)  // the decision stands either way
                    state.withLock { $0.snapshot.reverts += 1 }
                    logger.warning(
                        "rollout reverted",
                        metadata: ["flagpole.flag": "\(flag)", "flagpole.rollout": "\(record.id)", "flagpole.reason": "\(decision.reason)"])
                    alerts.send(
                        Alert(
                            severity: .critical, title: "\(configuration.environment): \(flag) reverted",
                            text: """
                                Rollout \(record.id) of \(flag) → \(record.targetVariant) was reverted at \(record.percent)% (revision \(revision)): \(decision.reason).
                                The flag serves what it served before the rollout and is pinned; reconcile the files, then flagctl sync --env \(configuration.environment) --unpin \(flag).
                                """,
                            environment: configuration.environment, flag: flag, rolloutID: record.id, details: decision.evidence, at: now))
                    return "revert"
                }
            } catch let error as StoreError where error.code == .conflict && attempt < 3 {
                continue  // someone wrote meanwhile: look again at the new state
            }
        }
        return nil
    }

    /// Before a write that acts (advance, complete, revert, stop): on a Sentinel topology, make
    /// sure the client is on the node the Sentinels name as primary now. During a failover the old
    /// primary still answers writes with OK until it is reconfigured, then drops them; a decision
    /// written there would be lost (and decided, and alerted, again). A failure here fails this
    /// rollout's pass (no write, no alert); the next tick tries again.
    private func confirmPrimary() async throws {
        do {
            try await client.confirmPrimary()
        } catch {
            logger.warning("not acting: the Redis primary could not be confirmed", metadata: ["flagpole.error": "\(error)"])
            throw error
        }
    }

    /// A warning alert when a look first finds an incident (both cohorts failing): the watcher
    /// holds, and people should know the service is failing — not because of this flag.
    private func alertOnIncident(_ record: RolloutRecord, decision: RolloutDecision, now: Int64) {
        let isIncident = decision.evidence["check"]?.stringValue == "incident"
        let began = state.withLock { s -> Bool in
            let was = s.inIncident[record.id] ?? false
            s.inIncident[record.id] = isIncident
            return isIncident && !was
        }
        guard began else { return }
        logger.warning(
            "incident during a rollout: holding",
            metadata: ["flagpole.flag": "\(record.flag)", "flagpole.rollout": "\(record.id)", "flagpole.reason": "\(decision.reason)"])
        alerts.send(
            Alert(
                severity: .warning, title: "\(configuration.environment): \(record.flag) rollout holding through an incident",
                text:
                    "Rollout \(record.id) of \(record.flag) → \(record.targetVariant) at \(record.percent)%: \(decision.reason). Not reverted; the step's clock waits until the incident is over.",
                environment: configuration.environment, flag: record.flag, rolloutID: record.id, details: decision.evidence, at: now))
    }

    /// How many minutes before the rollout the watcher reads, at 100 % without a holdback, to
    /// measure how far the baseline drifts (3 hours, within the counters' 6 hours).
    package static let baselineMinutes: Int64 = 180

    /// The flag's minutes before the rollout (oldest first), from the cache or the source; cached
    /// once the rollout has run two minutes (late outcomes have landed by then).
    private func baseline(_ record: RolloutRecord, source: any RolloutMetricSource, now: Int64) async throws -> [CohortCounts] {
        if let cached = state.withLock({ $0.baselines[record.id] }) { return cached }
        let end = StoreLayout.unixMinute(record.startedAt) * 60
        let query = CohortQuery(
            environment: configuration.environment, flag: record.flag, cohort: .all, role: "baseline", from: end - Self.baselineMinutes * 60, to: end)
        let minutes = (try await source.reading(query).minutes ?? []).map(\.counts)
        // Minutes before the first with outcomes are before the flag had traffic (or expired): not a baseline.
        let history = Array(minutes.drop { $0.total == 0 })
        if now - record.startedAt >= 120 { state.withLock { $0.baselines[record.id] = history } }
        return history
    }

    private func judge(_ record: RolloutRecord, now: Int64) async -> (RolloutDecision, CohortCounts?, CohortCounts?, String) {
        let concurrent = record.hasConcurrentControl
        let (from, controlFrom, controlTo) = Self.windows(
            stepStartedAt: record.stepStartedAt, startedAt: record.startedAt, concurrent: concurrent, now: now)
        let elapsed = max(0, now - record.stepStartedAt)
        let treatmentQuery = CohortQuery(
            environment: configuration.environment, flag: record.flag, cohort: .variant(record.targetVariant), role: "treatment",
            from: from, to: now)
        let controlQuery = CohortQuery(
            environment: configuration.environment, flag: record.flag, cohort: concurrent ? .allBut(record.targetVariant) : .all,
            role: "control", from: controlFrom, to: controlTo)
        var treatment: CohortCounts?, control: CohortCounts?
        var minutes: StepMinutes?
        var controlWindow = ControlWindow.concurrent
        var failure: String?
        var name = record.metric.source
        do {
            let source = try metricSource(record.metric)
            name = source.name
            let both = try await source.readings([treatmentQuery, controlQuery])
            let t = both[0], c = both[1]
            treatment = t.total
            control = c.total
            if let tm = t.minutes, let cm = c.minutes {
                var controlMinutes = cm.map(\.counts)
                if concurrent {
                    let byMinute = Dictionary(cm.map { ($0.minute, $0.counts) }, uniquingKeysWith: { a, _ in a })
                    controlMinutes = tm.map { byMinute[$0.minute] ?? CohortCounts() }
                }
                let seconds = tm.map { m -> Double in
                    Double(max(0, min(now, m.minute * 60 + 60) - max(record.stepStartedAt, m.minute * 60)))
                }
                let share = record.percent < 100 ? Double(record.percent) / 100 : (100 - record.activeHoldback) / 100
                minutes = StepMinutes(
                    treatment: tm.map(\.counts), control: controlMinutes, stepSeconds: seconds, treatmentShare: concurrent ? share : nil)
            }
            if !concurrent {
                controlWindow = .beforeRollout(baseline: try await baseline(record, source: source, now: now))
            }
        } catch {
            failure = "\(error)"
        }
        let look = RolloutLook(
            limits: record.limits, treatment: treatment ?? CohortCounts(), control: control ?? CohortCounts(),
            stepElapsed: .seconds(elapsed), stepWatch: .seconds(record.watchSeconds), isFinalStep: record.isFinalStep, sourceFailure: failure,
            minutes: minutes, controlWindow: controlWindow)
        var decision = decider.decide(look)
        if case .object(var e) = decision.evidence {
            let controlCohort =
                record.percent < 100
                ? "all but \(record.targetVariant)"
                : concurrent ? "the \(RolloutSplit.percentText(record.activeHoldback)) holdback" : "all, before the rollout"
            e["treatmentWindow"] = [
                "from": .int(treatmentQuery.from), "to": .int(treatmentQuery.to), "cohort": .string("variant \(record.targetVariant)"),
            ]
            e["controlWindow"] = ["from": .int(controlQuery.from), "to": .int(controlQuery.to), "cohort": .string(controlCohort)]
            e["source"] = .string(name)
            e["percent"] = .int(Int64(record.percent))
            decision.evidence = .object(e)
        }
        return (decision, treatment, control, name)
    }

    /// The cohorts' windows at `now`, in Unix seconds: the treatment's `[from, now)`, and the
    /// control's — the same window when the control is concurrent (below 100 %, or a holdback), and
    /// otherwise (100 % without a holdback) the window of the same length that ends where the
    /// rollout began.
    ///
    /// Both start at the beginning of the *minute* the step started in, and the control at 100 % ends
    /// at the beginning of the minute the rollout started in, because outcomes are counted per minute
    /// (the built-in counters, and the Prometheus source's sample counts when it has no requests
    /// query). A window edge inside a minute takes the share of the minute's counts that its part of
    /// the minute has, as if they were spread evenly over it: true within a phase of the rollout,
    /// false across the start of a step. Cut at the step's start, the treatment window counted the
    /// new variant's outcomes of that minute by the share of the minute after the start although all
    /// of them came after it — losing 10 s of its traffic on average and up to nearly all of it, in
    /// the first minutes of the step, when detection is decided; and the control at 100 % took in up
    /// to 15 s of the new variant's outcomes, at its error rate, from the minute the rollout began.
    /// What a minute-aligned window adds before the step's start is the same variants' outcomes (a
    /// smaller split of the same treatment, or the control), so it belongs to the cohorts anyway.
    /// The step's watch still counts from the step's start.
    static func windows(stepStartedAt: Int64, startedAt: Int64, concurrent: Bool, now: Int64) -> (from: Int64, controlFrom: Int64, controlTo: Int64) {
        func minuteStart(_ t: Int64) -> Int64 { StoreLayout.unixMinute(t) * 60 }
        let from = min(minuteStart(stepStartedAt), now)
        guard !concurrent else { return (from, from, now) }
        let before = minuteStart(startedAt)
        return (from, before - (now - from), before)
    }

    private func count(decision: RolloutDecision, at nowMS: Int64) {
        state.withLock {
            $0.snapshot.decisionsByVerdict[decision.verdict.rawValue, default: 0] += 1
            $0.snapshot.lastDecisionAt = nowMS
        }
    }

    private func sampledHoldAudit(_ record: RolloutRecord, decision: RolloutDecision, nowMS: Int64) -> AuditEntry? {
        let interval = Self.milliseconds(configuration.holdAuditInterval)
        let due = state.withLock { s -> Bool in
            if let last = s.lastHoldAudit[record.id], nowMS - last < interval { return false }
            s.lastHoldAudit[record.id] = nowMS
            return true
        }
        guard due else { return nil }
        return AuditEntry(
            action: RolloutTransitions.Action.hold.rawValue, actor: configuration.actor, reason: decision.reason, at: nowMS / 1000,
            flags: [record.flag],
            details: ["rollout": .string(record.id), "percent": .int(Int64(record.percent)), "evidence": decision.evidence, "sampled": true])
    }

    private func stop(
        _ record: RolloutRecord, live: FlagStore.FlagRead, foreign: (actor: String?, revision: Int64?), token: Int64, now: Int64
    ) async throws -> String {
        var actor = foreign.actor, revision = foreign.revision
        if live.definition != nil, actor == nil || revision == nil {
            // The override was removed: the audit says by whom.
            if let entry = try? await store.auditEntries(flag: record.flag, limit: 1).first {
                actor = entry.actor
                revision = entry.revision
            }
        }
        let why =
            live.definition == nil
            ? "flag \(record.flag) was removed from \(configuration.environment)" + (actor.map { " by \($0)" } ?? "")
            : "changed by \(actor ?? "someone") at revision \(revision.map(String.init) ?? "?"); the watcher left their change alone"
        var change = RolloutTransitions.stop(record, actor: configuration.actor, at: now, why: why)
        change.fence = token
        if live.definition == nil { change.requireFlags = [] }
        try await confirmPrimary()
        try await store.apply(change, expectedRevision: live.revision)
        logger.warning(
            "rollout stopped", metadata: ["flagpole.flag": "\(record.flag)", "flagpole.rollout": "\(record.id)", "flagpole.reason": "\(why)"])
        alerts.send(
            Alert(
                severity: .warning, title: "\(configuration.environment): \(record.flag) rollout stopped",
                text: "Rollout \(record.id) of \(record.flag) stopped: \(why). Nothing was reverted; check the flag and start again if needed.",
                environment: configuration.environment, flag: record.flag, rolloutID: record.id, at: now))
        return "stop"
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    /// `14:02Z` for a Unix time.
    static func clockTime(_ unix: Int64) -> String {
        let s = ((unix % 86_400) + 86_400) % 86_400
        let h = s / 3600, m = (s % 3600) / 60
        return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)Z"
    }
}
