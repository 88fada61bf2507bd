import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Testing

/// Every transition of ``RolloutStateMachine``: each event in each state, refusals included, on a
/// manual clock, with no Redis.
@Suite("Rollout state machine")
struct RolloutStateMachineTests {
    typealias Machine = RolloutStateMachine

    static let definition: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]
    /// 2026-01-01T00:00:00Z, the manual clock's start, in Unix seconds.
    static let start: Int64 = 1_767_225_600
    static let configuration = Machine.Configuration(environment: "prod", actor: "watcher", watcher: "w-1", holdAuditInterval: .seconds(60))

    /// A rollout of `checkout` to `on` in steps 5 → 50 → 100 that began 30 s into the first minute and
    /// last wrote the flag at revision 10.
    static func record(
        status: RolloutRecord.Status = .running, stepIndex: Int = 0, dryRun: Bool = false, holdback: Double = 0, wouldRevert: String? = nil,
        before: OverrideRecord? = nil
    ) -> RolloutRecord {
        var r = RolloutRecord(
            id: "checkout-\(start + 30)", flag: "checkout", targetVariant: "on", steps: [5, 50, 100], stepIndex: stepIndex,
            stepStartedAt: start + 30, watchSeconds: 3600, status: status, dryRun: dryRun,
            limits: GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 200), holdback: holdback,
            before: .init(override: before, pin: nil, definition: definition), overrideRevision: 10, revision: 10, startedBy: "ann",
            startedAt: start + 30)
        r.wouldRevert = wouldRevert
        if status == .paused { r.pausedAt = start + 90 }
        if !status.isActive {
            r.endedAt = start + 100
            r.statusReason = "ended for the test"
        }
        return r
    }

    static func machine(_ record: RolloutRecord, memory: Machine.Memory = .init()) -> Machine {
        Machine(record: record, memory: memory, configuration: configuration)
    }

    static func decision(_ verdict: RolloutVerdict, incident: Bool = false) -> RolloutDecision {
        RolloutDecision(
            verdict: verdict, reason: incident ? "both cohorts are failing: an incident" : "\(verdict.rawValue) for the test",
            evidence: ["check": .string(incident ? "incident" : "test"), "treatmentRate": 0.01])
    }

    static let reading = Machine.Reading(
        treatment: CohortCounts(successes: 990, failures: 10), control: CohortCounts(successes: 1980, failures: 20), source: "builtin")

    /// What an action is, compared structurally.
    enum Kind: Equatable, CustomStringConvertible {
        case measure
        case observe(required: Bool, audited: Bool)
        case write(RolloutTransitions.Action?)
        case alert(Machine.AlertCause, Alert.Severity)
        case refuse(Machine.Refusal)
        case finished(Machine.Outcome)

        var description: String {
            switch self {
            case .measure: "measure"
            case .observe(let required, let audited): "observe(required: \(required), audited: \(audited))"
            case .write(let a): "write(\(a?.rawValue ?? "?"))"
            case .alert(let c, let s): "alert(\(c), \(s))"
            case .refuse(let r): "refuse(\(r))"
            case .finished(let o): "finished(\(o))"
            }
        }
    }

    static func kinds(_ actions: [Machine.Action]) -> [Kind] {
        actions.map {
            switch $0 {
            case .measure: .measure
            case .observe(_, let audit, let required): .observe(required: required, audited: audit != nil)
            case .write(let change): .write(RolloutTransitions.Action(rawValue: change.audit.action))
            case .alert(let alert, let cause): .alert(cause, alert.severity)
            case .refuse(let refusal): .refuse(refusal)
            case .finished(let outcome, _): .finished(outcome)
            }
        }
    }

    static func write(_ actions: [Machine.Action]) -> StoreChange? {
        for case .write(let change) in actions { return change }
        return nil
    }

    static func observation(_ actions: [Machine.Action]) -> (RolloutObservation, AuditEntry?)? {
        for case .observe(let o, let audit, _) in actions { return (o, audit) }
        return nil
    }

    static func alert(_ actions: [Machine.Action]) -> Alert? {
        for case .alert(let a, _) in actions { return a }
        return nil
    }

    static func measured(_ actions: [Machine.Action]) -> Machine.CohortWindows? {
        for case .measure(let w) in actions { return w }
        return nil
    }

    // MARK: - tick

    @Test(
        "tick on a running or paused rollout: measure the cohorts since the minute the step began in",
        arguments: [RolloutRecord.Status.running, .paused])
    func tickMeasures(status: RolloutRecord.Status) throws {
        let clock = ManualRolloutClock()
        clock.advance(by: .seconds(600))
        var m = Self.machine(Self.record(status: status))
        let actions = m.event(.tick(now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.measure])
        let w = try #require(Self.measured(actions))
        let now = Self.start + 600
        #expect(w.treatmentFrom == Self.start && w.treatmentTo == now)
        #expect(w.isConcurrent && w.controlFrom == Self.start && w.controlTo == now, "below 100 % the control is the rest, at the same time")
        #expect(w.stepElapsed == 570)
        #expect(m.state == (status == .running ? .running : .paused), "a look changes nothing by itself")
    }

    @Test("tick at 100 % without a holdback: the control is the window of equal length before the rollout; with one, the holdback now")
    func tickAtFullWithAndWithoutHoldback() throws {
        let clock = ManualRolloutClock()
        clock.advance(by: .seconds(1800))
        let now = Self.start + 1800
        var plain = Self.machine(Self.record(stepIndex: 2))
        let w = try #require(Self.measured(plain.event(.tick(now: clock.nowMilliseconds()))))
        #expect(!w.isConcurrent)
        #expect(w.treatmentFrom == Self.start && w.controlTo == Self.start && w.controlFrom == Self.start - (now - Self.start))
        var held = Self.machine(Self.record(stepIndex: 2, holdback: 2))
        let h = try #require(Self.measured(held.event(.tick(now: clock.nowMilliseconds()))))
        #expect(h.isConcurrent && h.controlFrom == Self.start && h.controlTo == now)
    }

    // MARK: - judged, running

    @Test("hold: observed; the first hold and then at most one a minute is audited; holds count per step")
    func holdIsSampled() throws {
        let clock = ManualRolloutClock()
        var m = Self.machine(Self.record())
        var actions = m.event(.judged(Self.decision(.hold), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: true), .finished(.hold)])
        let (o, audit) = try #require(Self.observation(actions))
        #expect(o.verdict == .hold && o.holds == 1 && o.watcher == "w-1" && o.source == "builtin" && o.treatment == Self.reading.treatment)
        #expect(audit?.action == RolloutTransitions.Action.hold.rawValue && audit?.details["sampled"] == true)
        clock.advance(by: .seconds(30))
        actions = m.event(.judged(Self.decision(.hold), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: false), .finished(.hold)])
        #expect(Self.observation(actions)?.0.holds == 2)
        clock.advance(by: .seconds(30))
        actions = m.event(.judged(Self.decision(.hold), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: true), .finished(.hold)], "a minute after the last audited hold")
        #expect(m.state == .running && m.memory.holds == 3)

        // The next step counts its own holds (the memory carries over to the machine rebuilt from the new record).
        var next = Self.machine(Self.record(stepIndex: 1), memory: m.memory)
        actions = next.event(.judged(Self.decision(.hold), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.observation(actions)?.0.holds == 1)
    }

    @Test("advance: one write of the next step's split; once written, the observation (best effort) and nothing else")
    func advance() throws {
        let clock = ManualRolloutClock()
        clock.advance(by: .seconds(3700))
        var m = Self.machine(Self.record())
        let actions = m.event(.judged(Self.decision(.advance), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.write(.advance)])
        let change = try #require(Self.write(actions))
        guard case .rollout(let split)? = change.setOverrides["checkout"]?.override else {
            Issue.record("advance writes the split: \(change.setOverrides)")
            return
        }
        #expect(split.percent == 50 && change.setRollouts["checkout"]?.stepStartedAt == Self.start + 3700)
        #expect(m.state == .writing)
        let after = m.event(.written(revision: 12, now: clock.nowMilliseconds()))
        #expect(Self.kinds(after) == [.observe(required: false, audited: false), .finished(.advance)])
        #expect(m.state == .running && m.record.stepIndex == 1 && m.record.revision == 12 && m.record.overrideRevision == 12)
    }

    @Test("complete: writes the target for everyone; once written, the observation and one info alert")
    func complete() throws {
        let clock = ManualRolloutClock()
        var m = Self.machine(Self.record(stepIndex: 2))
        let actions = m.event(.judged(Self.decision(.complete), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.write(.complete)])
        #expect(Self.write(actions)?.setOverrides["checkout"]?.override == .variant("on"))
        let after = m.event(.written(revision: 20, now: clock.nowMilliseconds()))
        #expect(Self.kinds(after) == [.observe(required: false, audited: false), .alert(.completed, .info), .finished(.complete)])
        #expect(m.state == .ended(.completed) && m.record.statusReason == "complete for the test")
        #expect(m.event(.tick(now: clock.nowMilliseconds())).isEmpty, "a completed rollout is not looked at")
    }

    @Test("revert: writes the pre-rollout definition and a pin; once written, the observation and one critical alert naming the revision")
    func revert() throws {
        let clock = ManualRolloutClock()
        var m = Self.machine(Self.record(stepIndex: 1))
        let actions = m.event(.judged(Self.decision(.revert), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.write(.revert)])
        let change = try #require(Self.write(actions))
        #expect(change.setOverrides["checkout"]?.override == .definition(Self.definition))
        #expect(change.setPins["checkout"]?.rollout == m.record.id && change.requireFlags == ["checkout"])
        let after = m.event(.written(revision: 31, now: clock.nowMilliseconds()))
        #expect(Self.kinds(after) == [.observe(required: false, audited: false), .alert(.reverted, .critical), .finished(.revert)])
        let alert = try #require(Self.alert(after))
        #expect(alert.text.contains("was reverted at 50% (revision 31): revert for the test"))
        #expect(alert.title == "prod: checkout reverted" && alert.rolloutID == m.record.id)
        #expect(m.state == .ended(.reverted) && m.record.decisions["revert"] == 1)
        #expect(m.event(.written(revision: 32, now: clock.nowMilliseconds())).isEmpty, "one alert per write, not per event")
    }

    @Test("an incident: one warning when it begins, none while it lasts, another when a new one begins")
    func incidentAlertsOnce() {
        let clock = ManualRolloutClock()
        var m = Self.machine(Self.record())
        let first = m.event(.judged(Self.decision(.hold, incident: true), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(first) == [.alert(.incident, .warning), .observe(required: true, audited: true), .finished(.hold)])
        clock.advance(by: .seconds(10))
        let lasting = m.event(.judged(Self.decision(.hold, incident: true), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(lasting) == [.observe(required: true, audited: false), .finished(.hold)])
        clock.advance(by: .seconds(10))
        _ = m.event(.judged(Self.decision(.hold), Self.reading, now: clock.nowMilliseconds()))
        #expect(!m.memory.inIncident)
        clock.advance(by: .seconds(10))
        let again = m.event(.judged(Self.decision(.hold, incident: true), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(again).first == .alert(.incident, .warning))
    }

    // MARK: - judged, paused and dry runs

    @Test(
        "paused (a dry run too): every verdict is observed with what the watcher would do, and nothing is written",
        arguments: RolloutVerdict.allCases, [false, true])
    func pausedReportsOnly(verdict: RolloutVerdict, dryRun: Bool) throws {
        var m = Self.machine(Self.record(status: .paused, dryRun: dryRun))
        let actions = m.event(.judged(Self.decision(verdict), Self.reading, now: ManualRolloutClock().nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: false), .finished(.paused)])
        let (o, _) = try #require(Self.observation(actions))
        #expect(o.reason == "paused (the watcher does not act); it would \(verdict.rawValue): \(verdict.rawValue) for the test")
        #expect(m.state == .paused)
    }

    @Test("paused through an incident: the warning still goes out once")
    func pausedIncident() {
        var m = Self.machine(Self.record(status: .paused))
        let actions = m.event(.judged(Self.decision(.hold, incident: true), Self.reading, now: 0))
        #expect(Self.kinds(actions) == [.alert(.incident, .warning), .observe(required: true, audited: false), .finished(.paused)])
        #expect(Self.kinds(m.event(.judged(Self.decision(.hold, incident: true), Self.reading, now: 10_000))).first != .alert(.incident, .warning))
    }

    @Test("a dry run's advance and complete are observed as 'would …', never written", arguments: [RolloutVerdict.advance, .complete])
    func dryRunWouldPass(verdict: RolloutVerdict) throws {
        var m = Self.machine(Self.record(dryRun: true))
        let actions = m.event(.judged(Self.decision(verdict), Self.reading, now: ManualRolloutClock().nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: true), .finished(verdict == .advance ? .wouldAdvance : .wouldComplete)])
        #expect(Self.observation(actions)?.0.reason == "dry run: would \(verdict.rawValue): \(verdict.rawValue) for the test")
        #expect(m.state == .running)
    }

    @Test("a dry run's revert: noted in the record and alerted the first time only; the flag is never written")
    func dryRunWouldRevertOnce() throws {
        let clock = ManualRolloutClock()
        clock.advance(by: .seconds(14 * 3600 + 2 * 60))
        var m = Self.machine(Self.record(dryRun: true))
        let actions = m.event(.judged(Self.decision(.revert), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: false), .write(.wouldRevert)])
        let change = try #require(Self.write(actions))
        #expect(change.setOverrides.isEmpty && change.setPins.isEmpty && change.removeOverrides.isEmpty, "the flag is untouched")
        #expect(change.setRollouts["checkout"]?.wouldRevert == "would revert at 14:02Z: revert for the test")
        let after = m.event(.written(revision: 11, now: clock.nowMilliseconds()))
        #expect(Self.kinds(after) == [.alert(.wouldRevert, .warning), .finished(.wouldRevert)])
        #expect(m.state == .running && m.record.wouldRevert != nil)
        clock.advance(by: .seconds(10))
        let again = m.event(.judged(Self.decision(.revert), Self.reading, now: clock.nowMilliseconds()))
        #expect(Self.kinds(again) == [.observe(required: true, audited: false), .finished(.wouldRevert)], "said once")
    }

    @Test("a dry run's hold is an ordinary hold")
    func dryRunHold() {
        var m = Self.machine(Self.record(dryRun: true))
        let actions = m.event(.judged(Self.decision(.hold), Self.reading, now: ManualRolloutClock().nowMilliseconds()))
        #expect(Self.kinds(actions) == [.observe(required: true, audited: true), .finished(.hold)])
    }

    // MARK: - A person's change of the flag

    @Test(
        "someone changed the flag: the rollout stops, names them, and leaves their change alone", arguments: [RolloutRecord.Status.running, .paused])
    func foreignChangeStops(status: RolloutRecord.Status) throws {
        let clock = ManualRolloutClock()
        var m = Self.machine(Self.record(status: status))
        let actions = m.event(.foreignChange(actor: "bob@host", revision: 17, now: clock.nowMilliseconds()))
        #expect(Self.kinds(actions) == [.write(.stop)])
        let change = try #require(Self.write(actions))
        #expect(change.setOverrides.isEmpty && change.removeOverrides.isEmpty && change.setPins.isEmpty)
        #expect(change.requireFlags == ["checkout"])
        #expect(change.audit.reason == "changed by bob@host at revision 17; the watcher left their change alone")
        let after = m.event(.written(revision: 18, now: clock.nowMilliseconds()))
        #expect(Self.kinds(after) == [.alert(.stopped, .warning), .finished(.stop)])
        #expect(m.state == .ended(.stopped))
    }

    @Test("a change by someone unknown says so")
    func foreignChangeUnknown() {
        var m = Self.machine(Self.record())
        let change = Self.write(m.event(.foreignChange(actor: nil, revision: nil, now: 0)))
        #expect(change?.audit.reason == "changed by someone at revision ?; the watcher left their change alone")
    }

    @Test("the flag was removed: the rollout stops without requiring the flag to exist", arguments: [RolloutRecord.Status.running, .paused])
    func flagRemovedStops(status: RolloutRecord.Status) throws {
        var m = Self.machine(Self.record(status: status))
        let actions = m.event(.flagRemoved(now: ManualRolloutClock().nowMilliseconds()))
        let change = try #require(Self.write(actions))
        #expect(change.requireFlags.isEmpty && change.audit.reason == "flag checkout was removed from prod")
        #expect(Self.kinds(m.event(.written(revision: 5, now: 0))) == [.alert(.stopped, .warning), .finished(.stop)])
        #expect(m.state == .ended(.stopped))
    }

    @Test(
        "how the flag stands: unchanged only while it carries this rollout's split at the revision the rollout wrote")
    func flagChange() {
        let r = Self.record()
        func override(_ o: FlagOverride, revision: Int64, actor: String = "ann") -> OverrideRecord {
            OverrideRecord(override: o, actor: actor, reason: nil, at: 0, revision: revision)
        }
        #expect(Machine.flagChange(record: r, isDefined: true, override: override(.rollout(r.split), revision: 10)) == .unchanged)
        #expect(
            Machine.flagChange(record: r, isDefined: true, override: override(.rollout(r.split), revision: 11, actor: "bob"))
                == .changed(actor: "bob", revision: 11))
        let other = RolloutSplit(rolloutID: "other", targetVariant: "on", percent: 5)
        #expect(
            Machine.flagChange(record: r, isDefined: true, override: override(.rollout(other), revision: 10)) == .changed(actor: "ann", revision: 10))
        #expect(
            Machine.flagChange(record: r, isDefined: true, override: override(.variant("off"), revision: 12, actor: "bob"))
                == .changed(actor: "bob", revision: 12))
        #expect(Machine.flagChange(record: r, isDefined: true, override: nil) == .changed(actor: nil, revision: nil))
        #expect(Machine.flagChange(record: r, isDefined: false, override: override(.rollout(r.split), revision: 10)) == .removed)
    }

    // MARK: - Commands

    @Test("pause a running rollout: written, then it reports only; pausing again is refused")
    func pause() throws {
        var m = Self.machine(Self.record())
        let actions = m.event(.command(.pause, by: "ann", reason: "lunch", flag: .unchanged, now: (Self.start + 600) * 1000))
        #expect(Self.kinds(actions) == [.write(.pause)])
        let record = try #require(Self.write(actions)?.setRollouts["checkout"])
        #expect(record.status == .paused && record.pausedAt == Self.start + 600 && record.statusReason == "paused by ann: lunch")
        #expect(Self.kinds(m.event(.written(revision: 11, now: 0))) == [.finished(.commanded)])
        #expect(m.state == .paused)
        let again = m.event(.command(.pause, by: "ann", reason: nil, flag: .unchanged, now: 0))
        #expect(Self.kinds(again) == [.refuse(.alreadyPaused(rolloutID: m.record.id, flag: "checkout"))])
    }

    @Test("resume a paused rollout: the step's clock goes on where it stopped; resuming a running one is refused")
    func resume() throws {
        var m = Self.machine(Self.record(status: .paused))
        let actions = m.event(.command(.resume, by: "ann", reason: nil, flag: .unchanged, now: (Self.start + 690) * 1000))
        let record = try #require(Self.write(actions)?.setRollouts["checkout"])
        #expect(record.status == .running && record.pausedAt == nil)
        #expect(record.stepStartedAt == Self.start + 30 + 600, "paused at +90 for 600 s")
        _ = m.event(.written(revision: 12, now: 0))
        #expect(m.state == .running)
        #expect(
            Self.kinds(m.event(.command(.resume, by: "ann", reason: nil, flag: .unchanged, now: 0))) == [.refuse(.notPaused(rolloutID: m.record.id))])
    }

    @Test(
        "abort restores the override there was before, or none — unless someone changed the flag: then only the record ends",
        arguments: [RolloutRecord.Status.running, .paused])
    func abort(status: RolloutRecord.Status) throws {
        let before = OverrideRecord(override: .variant("off"), actor: "carl", reason: nil, at: 1, revision: 3)
        var restoring = Self.machine(Self.record(status: status, before: before))
        let restore = try #require(Self.write(restoring.event(.command(.abort, by: "ann", reason: "no", flag: .unchanged, now: 0))))
        #expect(restore.setOverrides["checkout"] == before && restore.setRollouts["checkout"]?.status == .aborted)
        var removing = Self.machine(Self.record(status: status))
        let remove = try #require(Self.write(removing.event(.command(.abort, by: "ann", reason: nil, flag: .unchanged, now: 0))))
        #expect(remove.removeOverrides == ["checkout"] && remove.setOverrides.isEmpty)
        for flag in [Machine.FlagChange.changed(actor: "bob", revision: 17), .removed] {
            var leaving = Self.machine(Self.record(status: status, before: before))
            let leave = try #require(Self.write(leaving.event(.command(.abort, by: "ann", reason: nil, flag: flag, now: 0))))
            #expect(leave.setOverrides.isEmpty && leave.removeOverrides.isEmpty && leave.audit.details["restored"] == "untouched")
            _ = leaving.event(.written(revision: 20, now: 0))
            #expect(leaving.state == .ended(.aborted))
        }
    }

    @Test("promote: the target for everyone; refused over a person's change of the flag", arguments: [RolloutRecord.Status.running, .paused])
    func promote(status: RolloutRecord.Status) throws {
        var m = Self.machine(Self.record(status: status))
        let change = try #require(Self.write(m.event(.command(.promote, by: "ann", reason: nil, flag: .unchanged, now: 0))))
        #expect(change.audit.action == RolloutTransitions.Action.promote.rawValue && change.setOverrides["checkout"]?.override == .variant("on"))
        _ = m.event(.written(revision: 30, now: 0))
        #expect(m.state == .ended(.completed) && m.record.statusReason == "promoted by ann")

        var changed = Self.machine(Self.record(status: status))
        let refused = changed.event(.command(.promote, by: "ann", reason: nil, flag: .changed(actor: "bob", revision: 17), now: 0))
        #expect(Self.kinds(refused) == [.refuse(.changedMeanwhile(flag: "checkout", actor: "bob", revision: 17))])
        #expect(changed.state == (status == .running ? .running : .paused), "a refusal changes nothing")
        var removed = Self.machine(Self.record(status: status))
        #expect(
            Self.kinds(removed.event(.command(.promote, by: "ann", reason: nil, flag: .removed, now: 0)))
                == [.refuse(.changedMeanwhile(flag: "checkout", actor: nil, revision: nil))])
    }

    // MARK: - Ended rollouts, writes in flight, a lost lease

    static let ended: [RolloutRecord.Status] = [.completed, .reverted, .aborted, .stopped]

    /// Every event the watcher feeds.
    static let watcherEvents: [Machine.Event] = [
        .tick(now: 0), .judged(decision(.hold), reading, now: 0), .judged(decision(.advance), reading, now: 0),
        .judged(decision(.complete), reading, now: 0), .judged(decision(.revert), reading, now: 0),
        .judged(decision(.hold, incident: true), reading, now: 0), .foreignChange(actor: "bob", revision: 1, now: 0), .flagRemoved(now: 0),
        .written(revision: 99, now: 0),
    ]

    @Test("an ended rollout: the watcher's events do nothing, every command is refused saying how it ended", arguments: ended)
    func endedRollout(status: RolloutRecord.Status) {
        var m = Self.machine(Self.record(status: status))
        for event in Self.watcherEvents {
            #expect(m.event(event).isEmpty, "\(status): \(event)")
        }
        for command in Machine.Command.allCases {
            let refused = m.event(.command(command, by: "ann", reason: nil, flag: .unchanged, now: 0))
            let refusal = Machine.Refusal.ended(
                rolloutID: m.record.id, flag: "checkout", status: status, statusReason: "ended for the test", command: command)
            #expect(Self.kinds(refused) == [.refuse(refusal)])
            #expect(
                refusal.description
                    == "rollout \(m.record.id) of 'checkout' already ended (\(status.rawValue): ended for the test); nothing to \(command.rawValue)")
        }
        #expect(m.state == .ended(status))
        #expect(m.event(.leaseLost).isEmpty)
        #expect(m.state == .leaseLost && m.record.status == status, "a lost lease changes nothing in the record")
    }

    @Test("a write in flight: the watcher's events wait for it, commands are refused, the lease's loss drops it")
    func writeInFlight() {
        var m = Self.machine(Self.record())
        _ = m.event(.judged(Self.decision(.revert), Self.reading, now: 0))
        #expect(m.state == .writing)
        for event in Self.watcherEvents.dropLast() {
            #expect(m.event(event).isEmpty, "\(event)")
        }
        for command in Machine.Command.allCases {
            #expect(
                Self.kinds(m.event(.command(command, by: "ann", reason: nil, flag: .unchanged, now: 0)))
                    == [.refuse(.writeInFlight(rolloutID: m.record.id))])
        }
        #expect(m.event(.leaseLost).isEmpty)
        #expect(m.state == .leaseLost)
        #expect(m.event(.written(revision: 40, now: 0)).isEmpty, "no alert for a write that was fenced")
        #expect(m.record.status == .running)
    }

    @Test("after the lease is lost the machine does nothing more", arguments: [RolloutRecord.Status.running, .paused])
    func leaseLost(status: RolloutRecord.Status) {
        var m = Self.machine(Self.record(status: status))
        #expect(m.event(.leaseLost).isEmpty)
        for event in Self.watcherEvents {
            #expect(m.event(event).isEmpty, "\(event)")
        }
        #expect(
            Self.kinds(m.event(.command(.abort, by: "ann", reason: nil, flag: .unchanged, now: 0))) == [.refuse(.leaseLost(rolloutID: m.record.id))])
        #expect(m.state == .leaseLost)
    }

    @Test("written with nothing in flight does nothing", arguments: [RolloutRecord.Status.running, .paused])
    func writtenWithoutWrite(status: RolloutRecord.Status) {
        var m = Self.machine(Self.record(status: status))
        #expect(m.event(.written(revision: 3, now: 0)).isEmpty)
        #expect(m.record.revision == 10)
    }

    // MARK: - Words

    @Test("refusals say what is wrong and how to go on, as flagctl prints them")
    func refusalTexts() {
        #expect(
            Machine.Refusal.noRollout(flag: "x", environment: "prod").description
                == "flag 'x' has no rollout in prod (flagctl rollout list --env prod)")
        #expect(
            Machine.Refusal.alreadyPaused(rolloutID: "x-1", flag: "x").description
                == "rollout x-1 is already paused; flagctl rollout resume x continues it")
        #expect(Machine.Refusal.notPaused(rolloutID: "x-1").description == "rollout x-1 is running, not paused")
        #expect(
            Machine.Refusal.changedMeanwhile(flag: "x", actor: nil, revision: nil).description
                == "flag 'x' was changed by someone at revision ? since the rollout wrote it; not promoting over their change (flagctl rollout abort x ends the rollout)"
        )
        #expect(Machine.Refusal.noRollout(flag: "x", environment: "prod").isAboutRecord)
        #expect(!Machine.Refusal.notPaused(rolloutID: "x-1").isAboutRecord)
    }

    @Test("outcomes print as before, and name the status a rollout ends in")
    func outcomes() {
        #expect(Machine.Outcome.wouldRevert.description == "would-revert" && Machine.Outcome.hold.description == "hold")
        #expect(
            Machine.Outcome.complete.endsAs == .completed && Machine.Outcome.revert.endsAs == .reverted && Machine.Outcome.stop.endsAs == .stopped)
        #expect(Machine.Outcome.allCases.filter { $0.endsAs != nil }.count == 3)
    }
}
