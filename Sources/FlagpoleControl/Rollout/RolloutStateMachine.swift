import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore

/// One rollout's life as a pure state machine: events in, actions out. No I/O and no clock of its
/// own: every event that needs the time carries `now` (Unix milliseconds, from the caller's
/// ``RolloutClock``; tests use ``ManualRolloutClock`` or plain numbers).
///
/// The watcher (``RolloutWatcher``) and `flagctl rollout pause|resume|abort|promote`
/// (``EnvironmentControl/driveRollout(_:flag:actor:reason:now:)``) only carry out what it returns:
///
/// - ``Event/tick(now:freeze:)`` → ``Action/measure(_:)``: read the cohorts over these windows, ask the
///   decider, and feed the decision back as ``Event/judged(_:_:now:)``. The tick carries the freeze
///   in force (``FreezeHold``, computed by the caller from the project config's freeze windows):
///   while there is one, an advance or a completion becomes a hold that says "frozen until …";
///   a revert is always allowed.
/// - ``Event/judged(_:_:now:)`` → ``Action/observe(_:audit:required:)`` (hold, paused, a dry run's
///   "would advance"), or ``Action/write(_:)`` (advance, complete, revert, a dry run's first "would
///   revert"); an incident's first look adds a warning ``Action/alert(_:)``.
/// - ``Event/foreignChange(actor:revision:now:)`` and ``Event/flagRemoved(now:)`` (a person changed
///   or removed the flag since the rollout wrote it) → ``Action/write(_:)`` that stops the rollout.
/// - ``Event/command(_:by:reason:flag:now:)`` (a person) → ``Action/write(_:)`` or
///   ``Action/refuse(_:)`` with the reason in words.
/// - ``Event/written(revision:now:)`` (the write applied) → what follows it: the observation (best
///   effort), the alert, and ``Action/finished(_:reason:)`` naming the ``Outcome``.
/// - ``Event/leaseLost`` (a write was fenced) → nothing more: no alert for a write that did not happen.
///
/// The durable state is the ``RolloutRecord`` in Redis: the machine is rebuilt from it at every look,
/// with the watcher's ``Memory`` of earlier looks (held holds, the last sampled hold audit, whether an
/// incident is under way), which is all that lives outside Redis.
package struct RolloutStateMachine: Sendable {
    /// Who acts, and how often a hold is audited.
    package struct Configuration: Sendable, Hashable {
        /// The environment (in alert titles and texts).
        package var environment: String
        /// The actor named in the audit and pins of the watcher's writes. Default: `watcher`.
        package var actor: String
        /// The watcher's identity in observations. Default: empty (a person's command writes none).
        package var watcher: String
        /// At most one audited hold per rollout per this interval. Default: 60 s.
        package var holdAuditInterval: Duration

        /// Creates a configuration.
        package init(environment: String, actor: String = "watcher", watcher: String = "", holdAuditInterval: Duration = .seconds(60)) {
            self.environment = environment
            self.actor = actor
            self.watcher = watcher
            self.holdAuditInterval = holdAuditInterval
        }
    }

    /// What the watcher remembers of a rollout between looks. Kept in memory only: a watcher that
    /// restarts (or takes over) starts afresh, which costs at most one more sampled hold audit and
    /// one more incident warning.
    package struct Memory: Sendable, Hashable {
        /// The step the hold count is for.
        package var step: Int?
        /// Consecutive holds in ``step``.
        package var holds = 0
        /// When a hold was last audited (Unix ms).
        package var lastHoldAuditAt: Int64?
        /// Whether the last look found an incident (a warning alert when one begins).
        package var inIncident = false

        /// Nothing remembered yet.
        package init() {}
    }

    /// What a person can do to a running rollout.
    package enum Command: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case pause, resume, abort, promote

        package var description: String { rawValue }
    }

    /// How the flag stands against the override the rollout last wrote.
    package enum FlagChange: Sendable, Hashable {
        /// It still carries the rollout's override, as written.
        case unchanged
        /// Someone changed (or removed) its override since; their name and the revision when known.
        case changed(actor: String?, revision: Int64?)
        /// The flag itself was removed from the environment.
        case removed
    }

    /// What the metric source read for one look: the cohorts' totals (nil when it failed) and its name.
    package struct Reading: Sendable, Hashable {
        package var treatment: CohortCounts?
        package var control: CohortCounts?
        /// The metric source's name (`builtin`, `prometheus`).
        package var source: String

        /// Creates a reading.
        package init(treatment: CohortCounts?, control: CohortCounts?, source: String) {
            self.treatment = treatment
            self.control = control
            self.source = source
        }
    }

    /// The cohorts' windows of one look, in Unix seconds (see
    /// ``windows(stepStartedAt:startedAt:concurrent:now:)``).
    package struct CohortWindows: Sendable, Hashable {
        /// The treatment's `[from, to)`.
        package var treatmentFrom: Int64
        package var treatmentTo: Int64
        /// The control's `[from, to)`.
        package var controlFrom: Int64
        package var controlTo: Int64
        /// Whether the control is concurrent (below 100 %, or a holdback) or the window before the rollout.
        package var isConcurrent: Bool
        /// How long the step has been watched, in seconds.
        package var stepElapsed: Int64
    }

    /// Where the rollout stands, as the machine sees it.
    package enum State: Sendable, Hashable {
        /// Watched; the watcher acts on its verdicts.
        case running
        /// Held by a person: the watcher reports but does not act.
        case paused
        /// A write is out; ``Event/written(revision:now:)`` or ``Event/leaseLost`` comes next.
        case writing
        /// Over: completed, reverted, aborted or stopped.
        case ended(RolloutRecord.Status)
        /// The watcher's write was fenced: another watcher holds the lease, this one does nothing more.
        case leaseLost
    }

    /// What one look (or command) came to, for ``RolloutWatcher/TickReport`` and the logs.
    package enum Outcome: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case hold, advance, complete, revert
        /// The step passed, but a freeze window applies: held until it ends.
        case frozen
        /// A person changed the flag: the rollout stopped and left their change alone.
        case stop
        /// Paused: looked at, nothing done.
        case paused
        /// Dry runs: judged, nothing done.
        case wouldAdvance = "would-advance"
        case wouldComplete = "would-complete"
        case wouldRevert = "would-revert"
        /// A person's command applied.
        case commanded

        /// `hold`, `would-revert`, … (the watcher's logs and tests print it).
        package var description: String { rawValue }

        /// The status a rollout ends in when this is what happened to it; nil when it goes on.
        package var endsAs: RolloutRecord.Status? {
            switch self {
            case .complete: .completed
            case .revert: .reverted
            case .stop: .stopped
            default: nil
            }
        }
    }

    /// Why an event was refused (a person's command, mostly); ``description`` is the message people read.
    package enum Refusal: Sendable, Hashable, CustomStringConvertible {
        /// The flag has no rollout at all.
        case noRollout(flag: String, environment: String)
        /// The rollout already ended.
        case ended(rolloutID: String, flag: String, status: RolloutRecord.Status, statusReason: String?, command: Command)
        /// Pause of a paused rollout.
        case alreadyPaused(rolloutID: String, flag: String)
        /// Resume of a running rollout.
        case notPaused(rolloutID: String)
        /// Promote over a person's change of the flag.
        case changedMeanwhile(flag: String, actor: String?, revision: Int64?)
        /// An event while a write is out.
        case writeInFlight(rolloutID: String)
        /// An event after the lease was lost.
        case leaseLost(rolloutID: String)

        package var description: String {
            switch self {
            case .noRollout(let flag, let environment):
                "flag '\(flag)' has no rollout in \(environment) (flagctl rollout list --env \(environment))"
            case .ended(let id, let flag, let status, let statusReason, let command):
                "rollout \(id) of '\(flag)' already ended (\(status.rawValue)\(statusReason.map { ": \($0)" } ?? "")); nothing to \(command)"
            case .alreadyPaused(let id, let flag):
                "rollout \(id) is already paused; flagctl rollout resume \(flag) continues it"
            case .notPaused(let id):
                "rollout \(id) is running, not paused"
            case .changedMeanwhile(let flag, let actor, let revision):
                "flag '\(flag)' was changed by \(actor ?? "someone") at revision \(revision.map(String.init) ?? "?") since the rollout wrote it; not promoting over their change (flagctl rollout abort \(flag) ends the rollout)"
            case .writeInFlight(let id):
                "rollout \(id) has a write in flight; wait for it and look again"
            case .leaseLost(let id):
                "this watcher lost the lease while acting on rollout \(id); the lease holder acts now"
            }
        }

        /// Whether the refusal is about the rollout record itself (no rollout, or one that ended).
        package var isAboutRecord: Bool {
            switch self {
            case .noRollout, .ended: true
            default: false
            }
        }
    }

    /// What an ``Action/alert(_:cause:)`` is about.
    package enum AlertCause: String, Sendable, Hashable, CaseIterable {
        /// Both cohorts are failing: the watcher holds through it (warning, once per incident).
        case incident
        /// Every step passed (info).
        case completed
        /// The watcher reverted the flag (critical).
        case reverted
        /// A dry run would have reverted (warning, once per rollout).
        case wouldRevert
        /// A person changed or removed the flag; the rollout stopped (warning).
        case stopped
    }

    /// What happens to the rollout.
    package enum Event: Sendable {
        /// Time to look (Unix ms), with the freeze in force for the environment at that time (nil: none).
        case tick(now: Int64, freeze: FreezeHold? = nil)
        /// The decider's verdict on the cohorts ``Action/measure(_:)`` asked for.
        case judged(RolloutDecision, Reading, now: Int64)
        /// A person's command; `flag` is how the flag stands (``flagChange(record:live:)``).
        case command(Command, by: String, reason: String?, flag: FlagChange, now: Int64)
        /// The flag's override is no longer the one the rollout wrote: changed by `actor` at `revision`
        /// (from the override, or, when it was removed, from the audit; nil when unknown).
        case foreignChange(actor: String?, revision: Int64?, now: Int64)
        /// The flag was removed from the environment.
        case flagRemoved(now: Int64)
        /// The last ``Action/write(_:)`` applied at `revision`.
        case written(revision: Int64, now: Int64)
        /// The last write was fenced: another watcher took the lease.
        case leaseLost
    }

    /// What the caller carries out, in order.
    package enum Action: Sendable {
        /// Read the cohorts over these windows, ask the decider, feed back ``Event/judged(_:_:now:)``.
        case measure(CohortWindows)
        /// Record the watcher's look (and, sampled, a hold's audit entry). When `required`, a failure
        /// fails the look; otherwise the decision already written stands whatever happens to it.
        case observe(RolloutObservation, audit: AuditEntry?, required: Bool)
        /// One atomic write, checked against the revision the caller read (and, for the watcher, its fence).
        case write(StoreChange)
        /// Tell people; `cause` says what about (the watcher logs an incident's beginning).
        case alert(Alert, cause: AlertCause)
        /// Not allowed: say why (a non-zero exit for a command).
        case refuse(Refusal)
        /// The look (or command) is over; `reason` is why, for the log.
        case finished(Outcome, reason: String?)
    }

    /// What follows a write once it applied.
    private enum Pending: Sendable {
        case advance(RolloutObservation, RolloutDecision)
        case complete(RolloutObservation, RolloutDecision)
        case revert(RolloutObservation, RolloutDecision)
        case wouldRevert(note: String, RolloutDecision)
        case stop(why: String)
        case command(Command)
    }

    package let configuration: Configuration
    /// The rollout as last read or written.
    package private(set) var record: RolloutRecord
    /// What to remember for the next look.
    package private(set) var memory: Memory
    private var pending: (change: StoreChange, then: Pending)?
    private var lostLease = false
    /// The freeze the last tick carried: it turns an advance or a completion into a hold.
    private var freeze: FreezeHold?

    /// A machine for `record` as read from Redis, with what the watcher remembers of it.
    package init(record: RolloutRecord, memory: Memory = Memory(), configuration: Configuration) {
        self.record = record
        self.memory = memory
        self.configuration = configuration
    }

    /// Where the rollout stands.
    package var state: State {
        if lostLease { return .leaseLost }
        if pending != nil { return .writing }
        switch record.status {
        case .running: return .running
        case .paused: return .paused
        case let status: return .ended(status)
        }
    }

    // MARK: - Events

    /// Takes one event; returns what to do, in order.
    package mutating func event(_ event: Event) -> [Action] {
        switch event {
        case .leaseLost:
            pending = nil
            lostLease = true
            return []
        case .command(let command, let actor, let reason, let flag, let now):
            if let refusal = busy { return [.refuse(refusal)] }
            return self.command(command, actor: actor, reason: reason, flag: flag, at: now / 1000)
        case .written(let revision, let now):
            return written(revision: revision, at: now / 1000)
        default:
            break
        }
        // The watcher's events: nothing to do unless the rollout is watched and nothing is out.
        guard busy == nil, record.status.isActive else { return [] }
        switch event {
        case .tick(let now, let freeze):
            self.freeze = freeze
            return [.measure(windows(now: now / 1000))]
        case .judged(let decision, let reading, let now):
            return judged(decision, reading, nowMilliseconds: now)
        case .foreignChange(let actor, let revision, let now):
            let why = "changed by \(actor ?? "someone") at revision \(revision.map(String.init) ?? "?"); the watcher left their change alone"
            return stop(why: why, flagRemoved: false, at: now / 1000)
        case .flagRemoved(let now):
            return stop(why: "flag \(record.flag) was removed from \(configuration.environment)", flagRemoved: true, at: now / 1000)
        case .leaseLost, .command, .written:
            return []
        }
    }

    private var busy: Refusal? {
        if lostLease { return .leaseLost(rolloutID: record.id) }
        if pending != nil { return .writeInFlight(rolloutID: record.id) }
        return nil
    }

    private mutating func write(_ change: StoreChange, then: Pending) -> [Action] {
        pending = (change, then)
        return [.write(change)]
    }

    private mutating func command(_ command: Command, actor: String, reason: String?, flag: FlagChange, at: Int64) -> [Action] {
        guard record.status.isActive else {
            return [
                .refuse(
                    .ended(rolloutID: record.id, flag: record.flag, status: record.status, statusReason: record.statusReason, command: command))
            ]
        }
        let change: StoreChange
        switch command {
        case .pause:
            guard record.status == .running else { return [.refuse(.alreadyPaused(rolloutID: record.id, flag: record.flag))] }
            change = RolloutTransitions.pause(record, actor: actor, reason: reason, at: at)
        case .resume:
            guard record.status == .paused else { return [.refuse(.notPaused(rolloutID: record.id))] }
            change = RolloutTransitions.resume(record, actor: actor, reason: reason, at: at)
        case .abort:
            change = RolloutTransitions.abort(record, actor: actor, reason: reason, at: at, touchFlag: flag == .unchanged)
        case .promote:
            switch flag {
            case .unchanged: break
            case .changed(let who, let revision): return [.refuse(.changedMeanwhile(flag: record.flag, actor: who, revision: revision))]
            case .removed: return [.refuse(.changedMeanwhile(flag: record.flag, actor: nil, revision: nil))]
            }
            change = RolloutTransitions.complete(record, actor: actor, at: at, decision: nil, promoted: true)
        }
        return write(change, then: .command(command))
    }

    private mutating func stop(why: String, flagRemoved: Bool, at: Int64) -> [Action] {
        var change = RolloutTransitions.stop(record, actor: configuration.actor, at: at, why: why)
        if flagRemoved { change.requireFlags = [] }
        return write(change, then: .stop(why: why))
    }

    private mutating func judged(_ decision: RolloutDecision, _ reading: Reading, nowMilliseconds: Int64) -> [Action] {
        let now = nowMilliseconds / 1000
        var actions: [Action] = []
        let isIncident = decision.evidence["check"]?.stringValue == "incident"
        if isIncident && !memory.inIncident { actions.append(.alert(incidentAlert(decision, at: now), cause: .incident)) }
        memory.inIncident = isIncident
        if memory.step != record.stepIndex {
            memory.step = record.stepIndex
            memory.holds = 0
        }
        if decision.verdict == .hold { memory.holds += 1 }
        var observation = RolloutObservation(
            rolloutID: record.id, at: now, verdict: decision.verdict, reason: decision.reason, evidence: decision.evidence,
            treatment: reading.treatment, control: reading.control, source: reading.source, holds: memory.holds, watcher: configuration.watcher)
        if record.status == .paused {
            observation.reason = "paused (the watcher does not act); it would \(decision.verdict.rawValue): \(decision.reason)"
            return actions + [.observe(observation, audit: nil, required: true), .finished(.paused, reason: decision.reason)]
        }
        if let freeze, decision.verdict == .advance || decision.verdict == .complete {
            // A freeze window: do not move the rollout on (a revert, below, is always allowed).
            var held = decision
            held.verdict = .hold
            held.reason = "\(freeze); the step passed and would \(decision.verdict.rawValue)\(record.dryRun ? " (dry run)" : ""): \(decision.reason)"
            if case .object(var e) = held.evidence {
                e["freeze"] = [
                    "window": .string(freeze.window), "windows": .array(freeze.windows.map { .string($0) }), "until": .int(freeze.until),
                    "untilLocal": .string(freeze.untilText), "wouldBe": .string(decision.verdict.rawValue),
                ]
                held.evidence = .object(e)
            }
            memory.holds += 1
            observation.holds = memory.holds
            observation.verdict = .hold
            observation.reason = held.reason
            observation.evidence = held.evidence
            return actions + [
                .observe(observation, audit: sampledHoldAudit(held, nowMilliseconds: nowMilliseconds), required: true),
                .finished(.frozen, reason: held.reason),
            ]
        }
        if record.dryRun && (decision.verdict == .advance || decision.verdict == .complete) {
            // A dry run of the guards: report, never act.
            observation.reason = "dry run: would \(decision.verdict.rawValue): \(decision.reason)"
            let outcome: Outcome = decision.verdict == .advance ? .wouldAdvance : .wouldComplete
            return actions + [
                .observe(observation, audit: sampledHoldAudit(decision, nowMilliseconds: nowMilliseconds), required: true),
                .finished(outcome, reason: decision.reason),
            ]
        }
        switch decision.verdict {
        case .hold:
            return actions + [
                .observe(observation, audit: sampledHoldAudit(decision, nowMilliseconds: nowMilliseconds), required: true),
                .finished(.hold, reason: decision.reason),
            ]
        case .advance:
            let change = RolloutTransitions.advance(record, actor: configuration.actor, at: now, decision: decision)
            return actions + write(change, then: .advance(observation, decision))
        case .complete:
            let change = RolloutTransitions.complete(record, actor: configuration.actor, at: now, decision: decision, promoted: false)
            return actions + write(change, then: .complete(observation, decision))
        case .revert:
            guard record.dryRun else {
                let change = RolloutTransitions.revert(record, actor: configuration.actor, at: now, decision: decision)
                return actions + write(change, then: .revert(observation, decision))
            }
            actions.append(.observe(observation, audit: nil, required: true))
            guard record.wouldRevert == nil else { return actions + [.finished(.wouldRevert, reason: decision.reason)] }
            let note = "would revert at \(Self.clockTime(now)): \(decision.reason)"
            let change = RolloutTransitions.wouldRevert(record, actor: configuration.actor, at: now, decision: decision, note: note)
            return actions + write(change, then: .wouldRevert(note: note, decision))
        }
    }

    private mutating func written(revision: Int64, at now: Int64) -> [Action] {
        guard let (change, then) = pending.map({ ($0.change, $0.then) }) else { return [] }
        pending = nil
        if var stored = change.setRollouts[record.flag] {
            stored.revision = revision
            if change.setOverrides[record.flag] != nil || change.removeOverrides.contains(record.flag) { stored.overrideRevision = revision }
            record = stored
        }
        let environment = configuration.environment, flag = record.flag, id = record.id
        switch then {
        case .advance(let observation, let decision):
            return [.observe(observation, audit: nil, required: false), .finished(.advance, reason: decision.reason)]
        case .complete(let observation, let decision):
            return [
                .observe(observation, audit: nil, required: false),
                .alert(
                    Alert(
                        severity: .info, title: "\(environment): \(flag) rollout completed",
                        text: "Rollout \(id) of \(flag) → \(record.targetVariant) passed every step. \(decision.reason)",
                        environment: environment, flag: flag, rolloutID: id, details: decision.evidence, at: now,
                        auditedAction: RolloutTransitions.Action.complete.rawValue), cause: .completed),
                .finished(.complete, reason: decision.reason),
            ]
        case .revert(let observation, let decision):
            return [
                .observe(observation, audit: nil, required: false),
                .alert(
                    Alert(
                        severity: .critical, title: "\(environment): \(flag) reverted",
                        text: """
                            Rollout \(id) of \(flag) → \(record.targetVariant) was reverted at \(record.percent)% (revision \(revision)): \(decision.reason).
                            The flag serves what it served before the rollout and is pinned; reconcile the files, then flagctl sync --env \(environment) --unpin \(flag).
                            """,
                        environment: environment, flag: flag, rolloutID: id, details: decision.evidence, at: now,
                        auditedAction: RolloutTransitions.Action.revert.rawValue), cause: .reverted),
                .finished(.revert, reason: decision.reason),
            ]
        case .wouldRevert(let note, let decision):
            return [
                .alert(
                    Alert(
                        severity: .warning, title: "\(environment): \(flag) dry run would revert",
                        text:
                            "Dry-run rollout \(id) of \(flag): \(note). The watcher changed nothing: the flag stays at \(record.percent)% until someone runs flagctl rollout abort or promote.",
                        environment: environment, flag: flag, rolloutID: id, details: decision.evidence, at: now,
                        auditedAction: RolloutTransitions.Action.wouldRevert.rawValue), cause: .wouldRevert),
                .finished(.wouldRevert, reason: decision.reason),
            ]
        case .stop(let why):
            return [
                .alert(
                    Alert(
                        severity: .warning, title: "\(environment): \(flag) rollout stopped",
                        text: "Rollout \(id) of \(flag) stopped: \(why). Nothing was reverted; check the flag and start again if needed.",
                        environment: environment, flag: flag, rolloutID: id, at: now,
                        auditedAction: RolloutTransitions.Action.stop.rawValue), cause: .stopped),
                .finished(.stop, reason: why),
            ]
        case .command:
            return [.finished(.commanded, reason: record.statusReason)]
        }
    }

    /// A warning when a look first finds an incident (both cohorts failing): the watcher holds, and
    /// people should know the service is failing — not because of this flag.
    private func incidentAlert(_ decision: RolloutDecision, at now: Int64) -> Alert {
        Alert(
            severity: .warning, title: "\(configuration.environment): \(record.flag) rollout holding through an incident",
            text:
                "Rollout \(record.id) of \(record.flag) → \(record.targetVariant) at \(record.percent)%: \(decision.reason). Not reverted; the step's clock waits until the incident is over.",
            environment: configuration.environment, flag: record.flag, rolloutID: record.id, details: decision.evidence, at: now)
    }

    /// A hold's audit entry, at most one per ``Configuration/holdAuditInterval``.
    private mutating func sampledHoldAudit(_ decision: RolloutDecision, nowMilliseconds: Int64) -> AuditEntry? {
        if let last = memory.lastHoldAuditAt, nowMilliseconds - last < Self.milliseconds(configuration.holdAuditInterval) { return nil }
        memory.lastHoldAuditAt = nowMilliseconds
        return AuditEntry(
            action: RolloutTransitions.Action.hold.rawValue, actor: configuration.actor, reason: decision.reason, at: nowMilliseconds / 1000,
            flags: [record.flag],
            details: ["rollout": .string(record.id), "percent": .int(Int64(record.percent)), "evidence": decision.evidence, "sampled": true])
    }

    private func windows(now: Int64) -> CohortWindows {
        let concurrent = record.hasConcurrentControl
        let w = Self.windows(stepStartedAt: record.stepStartedAt, startedAt: record.startedAt, concurrent: concurrent, now: now)
        return CohortWindows(
            treatmentFrom: w.from, treatmentTo: now, controlFrom: w.controlFrom, controlTo: w.controlTo, isConcurrent: concurrent,
            stepElapsed: max(0, now - record.stepStartedAt))
    }

    // MARK: - Helpers

    /// How the flag stands against the rollout's last write, from a read of the flag.
    package static func flagChange(record: RolloutRecord, live: FlagStore.FlagRead) -> FlagChange {
        flagChange(record: record, isDefined: live.definition != nil, override: live.override)
    }

    /// How the flag stands: removed, still carrying the override the rollout wrote (its split, at the
    /// revision the rollout wrote it), or changed by someone since.
    package static func flagChange(record: RolloutRecord, isDefined: Bool, override: OverrideRecord?) -> FlagChange {
        guard isDefined else { return .removed }
        if let o = override, case .rollout(let s) = o.override, s.rolloutID == record.id, o.revision == record.overrideRevision {
            return .unchanged
        }
        return .changed(actor: override?.actor, revision: override?.revision)
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
    package static func windows(
        stepStartedAt: Int64, startedAt: Int64, concurrent: Bool, now: Int64
    ) -> (
        from: Int64, controlFrom: Int64, controlTo: Int64
    ) {
        func minuteStart(_ t: Int64) -> Int64 { StoreLayout.unixMinute(t) * 60 }
        let from = min(minuteStart(stepStartedAt), now)
        guard !concurrent else { return (from, from, now) }
        let before = minuteStart(startedAt)
        return (from, before - (now - from), before)
    }

    /// Whole milliseconds of a duration.
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
