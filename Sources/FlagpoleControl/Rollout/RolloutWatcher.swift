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
/// What a look does is not decided here: each rollout's ``RolloutStateMachine`` takes the events
/// (a tick, the decider's verdict, a person's change of the flag, a write applied, the lease lost)
/// and returns the actions (measure, observe, write, alert, finished), which the watcher carries
/// out against Redis, the metric source and the alert sink.
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
        /// The project config's freeze windows (those that apply to ``environment`` count): while
        /// one is in force, no rollout advances or completes; reverts go on. Default: none.
        package var freezeWindows: [FreezeWindow] = []

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
        /// Flag → what came of its look (``RolloutStateMachine/Outcome``: hold, advance, complete,
        /// revert, would-revert, stop, paused, …).
        package var actions: [String: RolloutStateMachine.Outcome]
        /// Who holds the lease when it is not this watcher.
        package var leaseHolder: String?
    }

    /// Counters for `/metrics` (see ``Metrics``).
    package struct Snapshot: Sendable, Hashable {
        /// Rollouts by status at the last tick.
        package var rolloutsByState: [RolloutRecord.Status: Int] = [:]
        /// Decisions by verdict since start.
        package var decisionsByVerdict: [RolloutVerdict: Int] = [:]
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
        /// Rollout id → what its state machine remembers between looks (holds, the last sampled
        /// hold audit, whether an incident is under way).
        var memories: [String: RolloutStateMachine.Memory] = [:]
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
        return last > 0 && clock.nowMilliseconds() - last <= 3 * RolloutStateMachine.milliseconds(configuration.interval)
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
                holder: configuration.holderID, nowMilliseconds: now, ttlMilliseconds: RolloutStateMachine.milliseconds(configuration.leaseTTL))
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
        var actions: [String: RolloutStateMachine.Outcome] = [:]
        var byState: [RolloutRecord.Status: Int] = [:]
        for (_, r) in all.rollouts { byState[r.status, default: 0] += 1 }
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
        for (flag, outcome) in actions {
            guard let from = all.rollouts[flag]?.status, let to = outcome.endsAs else { continue }
            byState[from, default: 1] -= 1
            byState[to, default: 0] += 1
        }
        state.withLock {
            $0.snapshot.rolloutsByState = byState
            $0.snapshot.lastSuccessfulTickAt = clock.nowMilliseconds()
        }
        return TickReport(isLeader: true, token: held.token, actions: actions, leaseHolder: configuration.holderID)
    }

    // MARK: - One rollout

    /// Looks at one rollout and carries out what its ``RolloutStateMachine`` says; returns what came of it.
    private func watch(flag: String, rolloutID: String, token: Int64) async throws -> RolloutStateMachine.Outcome? {
        for attempt in 1...3 {
            let live = try await store.read(flag: flag)
            guard let record = try await store.rollout(flag: flag), record.id == rolloutID, record.status.isActive else { return nil }
            let nowMS = clock.nowMilliseconds()
            var machine = RolloutStateMachine(
                record: record, memory: state.withLock { $0.memories[record.id] } ?? .init(), configuration: machineConfiguration)
            // What the machine remembers is kept whatever happens to this look (as a person would).
            defer { state.withLock { [memory = machine.memory] in $0.memories[record.id] = memory } }
            do {
                let first: [RolloutStateMachine.Action]
                switch RolloutStateMachine.flagChange(record: record, live: live) {
                case .unchanged:
                    let freeze = FreezeHold.at(nowMS / 1000, environment: configuration.environment, windows: configuration.freezeWindows)
                    first = machine.event(.tick(now: nowMS, freeze: freeze))
                case .removed:
                    first = machine.event(.flagRemoved(now: nowMS))
                case .changed(var actor, var revision):
                    if actor == nil || revision == nil, let entry = try? await store.auditEntries(flag: flag, limit: 1).first {
                        // The override was removed: the audit says by whom.
                        actor = entry.actor
                        revision = entry.revision
                    }
                    first = machine.event(.foreignChange(actor: actor, revision: revision, now: nowMS))
                }
                return try await perform(first, machine: &machine, expectedRevision: live.revision, token: token, nowMilliseconds: nowMS)
            } catch let error as StoreError where error.code == .conflict && attempt < 3 {
                continue  // someone wrote meanwhile: look again at the new state
            }
        }
        return nil
    }

    private var machineConfiguration: RolloutStateMachine.Configuration {
        RolloutStateMachine.Configuration(
            environment: configuration.environment, actor: configuration.actor, watcher: configuration.holderID,
            holdAuditInterval: configuration.holdAuditInterval)
    }

    /// Carries out `actions` in order, feeding what comes of them (a decision, a write) back to the machine.
    private func perform(
        _ actions: [RolloutStateMachine.Action], machine: inout RolloutStateMachine, expectedRevision: Int64, token: Int64,
        nowMilliseconds nowMS: Int64
    ) async throws -> RolloutStateMachine.Outcome? {
        let record = machine.record
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .measure(let windows):
                let (decision, reading) = await judge(record, windows: windows, now: nowMS / 1000)
                count(decision: decision, at: nowMS)
                queue.append(contentsOf: machine.event(.judged(decision, reading, now: nowMS)))
            case .observe(let observation, let audit, let required):
                if required {
                    try await store.recordObservation(observation, flag: record.flag, token: token, audit: audit)
                } else {
                    try? await store.recordObservation(observation, flag: record.flag, token: token, audit: audit)  // the decision stands either way
                }
            case .write(var change):
                change.fence = token
                try await confirmPrimary()
                let revision: Int64
                do {
                    revision = try await store.apply(change, expectedRevision: expectedRevision)
                } catch let error as StoreError where error.code == .fenced {
                    _ = machine.event(.leaseLost)
                    throw error
                }
                queue.append(contentsOf: machine.event(.written(revision: revision, now: nowMS)))
            case .alert(let alert, let cause):
                if cause == .incident {
                    logger.warning(
                        "incident during a rollout: holding",
                        metadata: ["flagpole.flag": "\(record.flag)", "flagpole.rollout": "\(record.id)", "flagpole.reason": "\(alert.text)"])
                }
                alerts.send(alert)
            case .refuse(let refusal):
                logger.warning("the rollout's state machine refused", metadata: ["flagpole.flag": "\(record.flag)", "flagpole.reason": "\(refusal)"])
                return nil
            case .finished(let outcome, let reason):
                let metadata: Logger.Metadata = [
                    "flagpole.flag": "\(record.flag)", "flagpole.rollout": "\(record.id)", "flagpole.reason": "\(reason ?? "")",
                ]
                switch outcome {
                case .advance: logger.info("rollout advanced", metadata: metadata)
                case .revert:
                    state.withLock { $0.snapshot.reverts += 1 }
                    logger.warning("rollout reverted", metadata: metadata)
                case .stop: logger.warning("rollout stopped", metadata: metadata)
                default: break
                }
                return outcome
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

    /// Reads the cohorts over the machine's windows and asks the decider.
    private func judge(
        _ record: RolloutRecord, windows: RolloutStateMachine.CohortWindows, now: Int64
    ) async -> (RolloutDecision, RolloutStateMachine.Reading) {
        let concurrent = windows.isConcurrent
        let elapsed = windows.stepElapsed
        let treatmentQuery = CohortQuery(
            environment: configuration.environment, flag: record.flag, cohort: .variant(record.targetVariant), role: "treatment",
            from: windows.treatmentFrom, to: windows.treatmentTo)
        let controlQuery = CohortQuery(
            environment: configuration.environment, flag: record.flag, cohort: concurrent ? .allBut(record.targetVariant) : .all,
            role: "control", from: windows.controlFrom, to: windows.controlTo)
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
        return (decision, RolloutStateMachine.Reading(treatment: treatment, control: control, source: name))
    }

    private func count(decision: RolloutDecision, at nowMS: Int64) {
        state.withLock {
            $0.snapshot.decisionsByVerdict[decision.verdict, default: 0] += 1
            $0.snapshot.lastDecisionAt = nowMS
        }
    }
}
