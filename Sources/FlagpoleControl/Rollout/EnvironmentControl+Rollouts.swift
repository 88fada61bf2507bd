import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation

extension EnvironmentControl {
    /// What `flagctl rollout start` asks for. Unset guard fields default from the flag's guard
    /// policy (its `rollout.*` metadata), then the project config's `guard` section, then
    /// ``GuardPolicy/builtIn``.
    package struct RolloutStart: Sendable {
        package var flag: String
        /// The variant to roll out.
        package var target: String
        /// Steps in percent, increasing, ending at 100. Default: the guard policy's (`[100]`).
        package var steps: [Int]?
        /// How long each step is watched. Default: the guard policy's (1 hour).
        package var watch: Duration?
        package var maxErrorRate: Double?
        package var maxErrorIncrease: Double?
        package var minSamples: Int?
        package var maxP95Latency: Duration?
        /// Where the watcher reads cohorts: `builtin` or `prometheus`. Default: the guard policy's, else `builtin`.
        package var metric: String?
        /// The Prometheus server. Default: the guard policy's.
        package var prometheusURL: String?
        /// The PromQL error-rate query. Default: the guard policy's.
        package var prometheusQuery: String?
        /// The final step's holdback in percent (0…50): the share of users kept on what they had
        /// before while the step at 100 % is watched, as its concurrent control. Default: the guard
        /// policy's (`rollout.holdback`, `guard.holdback`), else 0 (none).
        package var holdback: Double?
        /// A dry run of the guards: the first step goes live as usual, and the watcher judges it
        /// but never acts (never advances, completes or reverts; it reports "would revert").
        /// People still promote or abort it. Default: false.
        package var dryRun = false
        /// Start inside a freeze window, or without the promotion gate's pass (audited and
        /// alerted). Default: false.
        package var force = false
        /// The environment the rollout must have completed in first (the promotion gate, see
        /// ``PromotionGate``). Default: nil, meaning the project config's `requirePassIn` for this
        /// environment (none when it sets none); `flagctl promote` sets its `--from`.
        package var requirePassIn: String?
        package var actor = Provenance.defaultActor
        package var reason: String?
        /// Unix seconds; default: now.
        package var now: Int64?

        /// Creates a request.
        package init(flag: String, target: String) {
            self.flag = flag
            self.target = target
        }
    }

    /// Starts a guarded rollout: checks the flag, the variant, the steps, the promotion gate
    /// (``PromotionGate``) and the freeze windows, then in one atomic write sets the first step's
    /// split (not in a dry run), the rollout record and the audit entry. Returns the stored record.
    ///
    /// A forced start that went through a freeze window or the promotion gate records that in its
    /// audit entry (`forcedWindows`, `promotionGate`) and, once written, sends
    /// ``forcedStartAlert(_:environment:at:)`` to `alerts` (the CLI's one-shot dispatcher, or the
    /// daemon's). Default: nil (no alert).
    package func startRollout(_ request: RolloutStart, alerts: (any AlertSink)? = nil) async throws -> RolloutRecord {
        let now = request.now ?? Provenance.now
        let configLoad = directory.loadConfig()
        if configLoad.hasErrors {
            let first = configLoad.diagnostics.first { $0.severity == .error }.map { $0.description } ?? ""
            throw StoreError(
                code: .invalidInput,
                message:
                    "the project config \(configLoad.path ?? "") is invalid, so the rollout's defaults are unknown: \(first); fix it (flagctl validate)"
            )
        }
        let config = configLoad.config
        for attempt in 1...5 {
            let live = try await store.read(flag: request.flag)
            guard let definition = live.definition else {
                let known = try await store.flagKeys().sorted()
                throw StoreError(
                    code: .flagNotFound,
                    message: "flag '\(request.flag)' is not in \(environment)"
                        + (known.isEmpty
                            ? " (nothing synced yet: run flagctl sync --env \(environment))"
                            : " (flagctl list --env \(environment) shows its flags)"),
                    key: store.layout.flags)
            }
            let variants = definition["variants"]?.objectValue ?? [:]
            guard variants[request.target] != nil else {
                throw StoreError(
                    code: .invalidInput,
                    message:
                        "flag '\(request.flag)' has no variant '\(request.target)' (variants: \(variants.keys.sorted().joined(separator: ", "))); pass one of them to --to"
                )
            }
            if let pin = live.pin {
                throw StoreError(
                    code: .pinned,
                    message:
                        "flag '\(request.flag)' is pinned by an automatic revert (\(pin.by): \(pin.reason)); reconcile the files and release it with flagctl sync --unpin \(request.flag) first",
                    key: store.layout.pins)
            }
            if let existing = try await store.rollout(flag: request.flag), existing.status.isActive {
                throw StoreError(
                    code: .rolloutState,
                    message:
                        "flag '\(request.flag)' already has rollout \(existing.id) \(existing.status.rawValue) (\(existing.percent)% → \(existing.targetVariant)); flagctl rollout abort \(request.flag) ends it",
                    key: store.layout.rollouts)
            }
            if case .rollout(let leftover)? = live.override?.override {
                throw StoreError(
                    code: .rolloutState,
                    message:
                        "flag '\(request.flag)' still carries the split of rollout \(leftover.rolloutID), which no longer runs; clear it first with flagctl override clear \(request.flag)",
                    key: store.layout.overrides)
            }
            let policy = config.guardPolicy(forFlagMetadata: definition["metadata"])
            let steps = request.steps ?? policy.steps ?? [100]
            guard !steps.isEmpty, steps.allSatisfy({ $0 >= 1 && $0 <= 100 }), zip(steps, steps.dropFirst()).allSatisfy({ $0 < $1 }), steps.last == 100
            else {
                throw StoreError(
                    code: .invalidInput,
                    message:
                        "steps \(steps.map(String.init).joined(separator: ",")) must be increasing percentages between 1 and 100 ending at 100, e.g. --steps 5,25,50,100"
                )
            }
            let holdback = request.holdback ?? policy.holdback ?? 0
            guard holdback.isFinite, holdback >= 0, holdback <= 50 else {
                throw StoreError(
                    code: .invalidInput,
                    message: "--holdback \(RolloutSplit.percentText(holdback)) must be a percentage between 0 and 50, e.g. --holdback 2%")
            }
            let watch = request.watch ?? policy.watch ?? .seconds(3600)
            guard watch > .zero else { throw StoreError(code: .invalidInput, message: "--watch must be a positive duration, e.g. 1h or 30m") }
            let limits = GuardLimits(
                maxErrorRate: request.maxErrorRate ?? policy.maxErrorRate ?? 0.05,
                maxErrorIncrease: request.maxErrorIncrease ?? policy.maxErrorIncrease ?? 0.01,
                minSamples: request.minSamples ?? policy.minSamples ?? 200,
                maxP95LatencyMicros: (request.maxP95Latency ?? policy.maxP95Latency).map {
                    Double($0.components.seconds) * 1e6 + Double($0.components.attoseconds) / 1e12
                })
            var metricPolicy = policy
            if let m = request.metric {
                guard let parsed = GuardPolicy.Metric(rawValue: m) else {
                    throw StoreError(code: .invalidInput, message: "--metric must be builtin or prometheus, not '\(m)'")
                }
                metricPolicy.metric = parsed
            }
            if let u = request.prometheusURL { metricPolicy.prometheusURL = u }
            if let q = request.prometheusQuery { metricPolicy.prometheusQuery = q }
            if let problem = metricPolicy.metricProblem {
                throw StoreError(
                    code: .invalidInput,
                    message:
                        "flag '\(request.flag)': \(problem.message); \(problem.hint) (--prometheus-url/--prometheus-query, or rollout.prometheusUrl/rollout.prometheusQuery in its metadata)"
                )
            }
            let metric = RolloutRecord.MetricSettings(
                source: (metricPolicy.metric ?? .builtin).rawValue, prometheusURL: metricPolicy.prometheusURL,
                prometheusQuery: metricPolicy.prometheusQuery, prometheusRequestsQuery: metricPolicy.prometheusRequestsQuery)
            let gate = try await promotionGate(
                flag: request.flag, variant: request.target,
                requirePassIn: request.requirePassIn ?? config.environment(named: environment)?.requirePassIn,
                targetDefinition: live.override.map { $0.override.apply(to: definition) } ?? definition, force: request.force)
            if case .refused(let problem, let source) = gate {
                throw StoreError(
                    code: .promotionGate,
                    message:
                        "\(environment) requires rollouts to complete in \(source) first (requirePassIn: \(source)): \(problem); or pass --force (audited and alerted)",
                    key: store.layout.rollouts)
            }
            let windows = config.activeFreezeWindows(environment: environment, unixTime: now)
            if !windows.isEmpty && !request.force {
                let names = windows.map { w in "'\(w.name)'" + (w.reason.map { " (\($0))" } ?? "") }.joined(separator: ", ")
                throw StoreError(
                    code: .frozen,
                    message:
                        "\(environment) is inside freeze window \(names): rollouts may not start now; wait for the window to end, or pass --force (recorded in the audit)"
                )
            }
            let id = "\(request.flag)-\(now)"
            var record = RolloutRecord(
                id: id, flag: request.flag, targetVariant: request.target, steps: steps, stepStartedAt: now,
                watchSeconds: max(1, watch.components.seconds), dryRun: request.dryRun, limits: limits, metric: metric, holdback: holdback,
                before: .init(
                    override: live.override, pin: live.pin, definition: live.override.map { $0.override.apply(to: definition) } ?? definition),
                startedBy: request.actor, startedAt: now, reason: request.reason)
            record.forcedWindows = windows.map(\.name)
            if case .overridden(let problem, _) = gate { record.forcedGate = problem.description }
            var details: [String: JSONValue] = [
                "watchSeconds": .int(record.watchSeconds), "forcedWindows": .array(windows.map { .string($0.name) }),
                "before": live.override?.json ?? .null, "metric": record.metric.json, "holdback": .double(holdback),
            ]
            if let gateJSON = gate.auditJSON { details["promotionGate"] = gateJSON }
            if !windows.isEmpty || record.forcedGate != nil { details["forced"] = true }
            var change = RolloutTransitions.change(.start, record: record, actor: request.actor, reason: request.reason, at: now, details: details)
            change.setOverrides[request.flag] = OverrideRecord(
                override: .rollout(record.split), actor: request.actor, reason: "rollout \(id): step 1 of \(steps.count), \(record.percent)%",
                at: now, revision: 0)
            do {
                let revision = try await store.apply(change, expectedRevision: live.revision)
                record.revision = revision
                record.overrideRevision = revision
                if let alerts, let alert = Self.forcedStartAlert(record, environment: environment, at: now) { alerts.send(alert) }
                return record
            } catch let error as StoreError where error.code == .conflict && attempt < 5 {
                continue
            }
        }
        throw StoreError(code: .conflict, message: "\(environment) kept changing; try again")
    }

    /// What a person can do to a running rollout.
    package typealias RolloutCommand = RolloutStateMachine.Command

    /// Pauses, resumes, aborts or promotes the flag's rollout, in one atomic write; returns the
    /// record as stored. Abort puts the flag back exactly as it was before the rollout (unless
    /// someone changed it meanwhile: then their change stays and only the record ends). Whether the
    /// command is allowed, and what it writes, is the rollout's ``RolloutStateMachine``'s to say; a
    /// refusal throws ``StoreError/Code/rolloutState`` with its reason.
    ///
    /// `expectedRollout` is the record's ``RolloutRecord/stateFingerprint`` as the person saw it
    /// (the web console's preview): when the rollout moved on meanwhile (the watcher advanced or
    /// reverted it, someone paused it), nothing is written and ``StoreError/Code/conflict`` says
    /// where it stands now. Default: nil (the CLI).
    package func driveRollout(
        _ command: RolloutCommand, flag: String, actor: String, reason: String?, now: Int64? = nil, expectedRollout: String? = nil
    ) async throws -> RolloutRecord {
        for attempt in 1...5 {
            let at = now ?? Provenance.now
            let live = try await store.read(flag: flag)
            guard let record = try await store.rollout(flag: flag) else {
                throw refusal(.noRollout(flag: flag, environment: environment))
            }
            if let expectedRollout, record.stateFingerprint != expectedRollout {
                throw StoreError(
                    code: .conflict,
                    message:
                        "the rollout of '\(flag)' changed since you looked: it is now \(record.status.rawValue) at step \(record.stepIndex + 1) of \(record.steps.count) (\(record.percent)%)\(record.statusReason.map { ": \($0)" } ?? ""); nothing was written: look at it again and decide anew",
                    key: store.layout.rollouts)
            }
            var machine = RolloutStateMachine(record: record, configuration: .init(environment: environment, actor: actor))
            let actions = machine.event(
                .command(command, by: actor, reason: reason, flag: RolloutStateMachine.flagChange(record: record, live: live), now: at * 1000))
            // A command only writes or is refused; it neither measures, observes nor alerts.
            var write: StoreChange?
            for action in actions {
                if case .refuse(let why) = action { throw refusal(why) }
                if case .write(let change) = action { write = change }
            }
            guard let write else { throw StoreError(code: .rolloutState, message: "rollout \(record.id) of '\(flag)': nothing to \(command)") }
            do {
                _ = try await store.apply(write, expectedRevision: live.revision)
                guard let stored = try await store.rollout(flag: flag) else {
                    throw StoreError(code: .redis, message: "the rollout of '\(flag)' vanished")
                }
                return stored
            } catch let error as StoreError where error.code == .conflict && attempt < 5 {
                continue
            }
        }
        throw StoreError(code: .conflict, message: "\(environment) kept changing; try again")
    }

    private func refusal(_ why: RolloutStateMachine.Refusal) -> StoreError {
        StoreError(code: .rolloutState, message: why.description, key: why.isAboutRecord ? store.layout.rollouts : nil)
    }
}

extension RolloutRecord {
    /// Where the rollout stands, in a few characters: its id and the revision of its last write.
    /// Equal exactly when nothing happened to it in between (see
    /// ``EnvironmentControl/driveRollout(_:flag:actor:reason:now:expectedRollout:)``).
    package var stateFingerprint: String { "\(id)@\(revision)" }
}
