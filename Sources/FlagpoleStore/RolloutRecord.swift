import FlagpoleCore
import FlagpoleRollout

/// A guarded rollout as stored in the rollouts hash (`flagpole:{ENV}:rollouts`, flag key → JSON).
///
/// One record per flag: the running one, or the last one that ended. Every change to it goes
/// through the store's one write script (``FlagStore/apply(_:expectedRevision:)``), together with
/// the flag override it implies, the audit entry and the change event.
///
/// JSON (unknown fields are ignored; a missing required field is a clear error):
///
/// ```json
/// {"id":"new-checkout-1767225600","flag":"new-checkout","target":"on","steps":[5,25,50,100],
///  "step":1,"stepStartedAt":1767229200,"watchSeconds":3600,"status":"running","dryRun":false,
///  "limits":{"maxErrorRate":0.05,"maxErrorIncrease":0.01,"minSamples":200,"maxP95LatencyMicros":null},
///  "metric":{"source":"builtin"},"holdback":2,
///  "before":{"override":{…}|null,"pin":{…}|null,"definition":{…}},
///  "overrideRevision":14,"revision":14,"startedBy":"ann@host","startedAt":1767225600,"reason":"…",
///  "statusReason":null,"endedAt":null,"pausedAt":null,"wouldRevert":null,"forcedWindows":[],
///  "forcedGate":null,"decisions":{"advance":1}}
/// ```
package struct RolloutRecord: Sendable, Hashable {
    /// Where a rollout stands.
    package enum Status: String, Sendable, Hashable, CaseIterable {
        /// Watched; the watcher advances, completes or reverts it.
        case running
        /// Held at its current step by a person: the watcher reports but does not act.
        case paused
        /// Every step passed (or promoted): the flag serves the target to everyone.
        case completed
        /// The watcher found a regression and put the flag back as it was; the flag is pinned.
        case reverted
        /// A person aborted it: the flag is back as it was before the rollout.
        case aborted
        /// Someone changed the flag meanwhile: the watcher stopped and left their change alone.
        case stopped

        /// Whether the watcher still looks at it.
        package var isActive: Bool { self == .running || self == .paused }
    }

    /// Where the watcher reads the cohorts from.
    package struct MetricSettings: Sendable, Hashable {
        /// `builtin` (the client library's outcome counters) or `prometheus`.
        package var source: String
        /// The Prometheus server, for `prometheus`.
        package var prometheusURL: String?
        /// The PromQL query for the error rate, for `prometheus`.
        package var prometheusQuery: String?
        /// The PromQL query for the cohort's request count, for `prometheus` (optional).
        package var prometheusRequestsQuery: String?

        /// Creates settings; the default is the built-in counters.
        package init(source: String = "builtin", prometheusURL: String? = nil, prometheusQuery: String? = nil, prometheusRequestsQuery: String? = nil)
        {
            self.source = source
            self.prometheusURL = prometheusURL
            self.prometheusQuery = prometheusQuery
            self.prometheusRequestsQuery = prometheusRequestsQuery
        }

        /// `{"source","prometheusURL","prometheusQuery"}`.
        package var json: JSONValue {
            var o: [String: JSONValue] = ["source": .string(source)]
            if let prometheusURL { o["prometheusURL"] = .string(prometheusURL) }
            if let prometheusQuery { o["prometheusQuery"] = .string(prometheusQuery) }
            if let prometheusRequestsQuery { o["prometheusRequestsQuery"] = .string(prometheusRequestsQuery) }
            return .object(o)
        }

        init(json: JSONValue?) {
            source = json?["source"]?.stringValue ?? "builtin"
            prometheusURL = json?["prometheusURL"]?.stringValue
            prometheusQuery = json?["prometheusQuery"]?.stringValue
            prometheusRequestsQuery = json?["prometheusRequestsQuery"]?.stringValue
        }
    }

    /// What the flag was before the rollout: restored exactly by an abort or a revert.
    package struct Before: Sendable, Hashable {
        /// The override in force before (nil: none).
        package var override: OverrideRecord?
        /// The pin in force before (nil: none).
        package var pin: PinRecord?
        /// The flag's effective definition before (its definition with `override` applied).
        package var definition: JSONValue

        /// Creates a snapshot.
        package init(override: OverrideRecord?, pin: PinRecord?, definition: JSONValue) {
            self.override = override
            self.pin = pin
            self.definition = definition
        }
    }

    /// The rollout's id: `<flag>-<start unix seconds>`; also the split's bucketing seed.
    package var id: String
    /// The flag rolled out.
    package var flag: String
    /// The variant being rolled out.
    package var targetVariant: String
    /// The steps in percent, increasing, the last one 100.
    package var steps: [Int]
    /// The index of the current step in ``steps``.
    package var stepIndex: Int
    /// When the current step began (Unix seconds).
    package var stepStartedAt: Int64
    /// How long each step is watched, in seconds.
    package var watchSeconds: Int64
    /// Where the rollout stands.
    package var status: Status
    /// A dry run of the guards: the first step is live, and the watcher judges it and reports
    /// ("would revert at …") but never writes the flag; people promote or abort it.
    package var dryRun: Bool
    /// The guard limits, resolved at start (command line, flag metadata, project config, built in).
    package var limits: GuardLimits
    /// Where the watcher reads the cohorts.
    package var metric: MetricSettings
    /// The final step's holdback in percent (0…50): while the step at 100 % is watched, this share
    /// of users keeps what it had before and is the concurrent control; released on completion.
    /// 0 (also for records written before holdbacks existed): none.
    package var holdback: Double
    /// The flag before the rollout, restored exactly by an abort or a revert.
    package var before: Before
    /// The revision at which the rollout last wrote the flag's override: if the
    /// override's own `revision` differs, a person changed the flag meanwhile.
    package var overrideRevision: Int64
    /// The revision of the record's last write.
    package var revision: Int64
    /// Who started it.
    package var startedBy: String
    /// Unix seconds.
    package var startedAt: Int64
    /// Why it was started (`--reason`).
    package var reason: String?
    /// Why it ended, or was paused (`changed by ann@host at revision 17`, the revert's reason, …).
    package var statusReason: String?
    /// When it ended (Unix seconds).
    package var endedAt: Int64?
    /// When it was paused (Unix seconds), while paused.
    package var pausedAt: Int64?
    /// A dry run's "would revert at 14:02Z: …", the first time the watcher would have reverted.
    package var wouldRevert: String?
    /// Freeze windows that a forced start overrode.
    package var forcedWindows: [String]
    /// The promotion gate's refusal that a forced start overrode (what was missing), if any.
    package var forcedGate: String?
    /// How many times each verdict was acted on (holds are counted in the observation).
    package var decisions: [String: Int]
    /// The evidence of the decision that ended the rollout (revert, complete), if any.
    package var evidence: JSONValue?

    /// Creates a record.
    package init(
        id: String, flag: String, targetVariant: String, steps: [Int], stepIndex: Int = 0, stepStartedAt: Int64,
        watchSeconds: Int64, status: Status = .running, dryRun: Bool = false, limits: GuardLimits, metric: MetricSettings = .init(),
        holdback: Double = 0, before: Before, overrideRevision: Int64 = 0, revision: Int64 = 0, startedBy: String, startedAt: Int64,
        reason: String? = nil
    ) {
        self.id = id
        self.flag = flag
        self.targetVariant = targetVariant
        self.steps = steps
        self.stepIndex = stepIndex
        self.stepStartedAt = stepStartedAt
        self.watchSeconds = watchSeconds
        self.status = status
        self.dryRun = dryRun
        self.limits = limits
        self.metric = metric
        self.holdback = holdback
        self.before = before
        self.overrideRevision = overrideRevision
        self.revision = revision
        self.startedBy = startedBy
        self.startedAt = startedAt
        self.reason = reason
        self.statusReason = nil
        self.endedAt = nil
        self.pausedAt = nil
        self.wouldRevert = nil
        self.forcedWindows = []
        self.forcedGate = nil
        self.decisions = [:]
        self.evidence = nil
    }

    /// The current step's percentage.
    package var percent: Int { steps[min(max(0, stepIndex), steps.count - 1)] }
    /// Whether the current step is the last.
    package var isFinalStep: Bool { stepIndex >= steps.count - 1 }

    /// The holdback in force now: the record's at the final step, else 0.
    package var activeHoldback: Double { isFinalStep && percent >= 100 ? min(50, max(0, holdback)) : 0 }

    /// Whether the control is concurrent: below 100 %, or at 100 % with a holdback.
    package var hasConcurrentControl: Bool { percent < 100 || activeHoldback > 0 }

    /// The override this rollout's current step writes.
    package var split: RolloutSplit {
        RolloutSplit(
            rolloutID: id, targetVariant: targetVariant, percent: percent, seed: id, base: before.override?.override, holdback: activeHoldback)
    }

    /// The record as stored.
    package var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "flag": .string(flag), "target": .string(targetVariant), "steps": .array(steps.map { .int(Int64($0)) }),
            "step": .int(Int64(stepIndex)), "stepStartedAt": .int(stepStartedAt), "watchSeconds": .int(watchSeconds),
            "status": .string(status.rawValue), "dryRun": .bool(dryRun),
            "limits": [
                "maxErrorRate": .double(limits.maxErrorRate), "maxErrorIncrease": .double(limits.maxErrorIncrease),
                "minSamples": .int(Int64(limits.minSamples)), "maxP95LatencyMicros": limits.maxP95LatencyMicros.map { .double($0) } ?? .null,
            ],
            "metric": metric.json, "holdback": .double(holdback),
            "before": [
                "override": before.override?.json ?? .null, "pin": before.pin?.json ?? .null, "definition": before.definition,
            ],
            "overrideRevision": .int(overrideRevision), "revision": .int(revision), "startedBy": .string(startedBy),
            "startedAt": .int(startedAt), "forcedWindows": .array(forcedWindows.map { .string($0) }),
            "decisions": .object(decisions.mapValues { .int(Int64($0)) }),
        ]
        if let reason { o["reason"] = .string(reason) }
        if let statusReason { o["statusReason"] = .string(statusReason) }
        if let endedAt { o["endedAt"] = .int(endedAt) }
        if let pausedAt { o["pausedAt"] = .int(pausedAt) }
        if let wouldRevert { o["wouldRevert"] = .string(wouldRevert) }
        if let forcedGate { o["forcedGate"] = .string(forcedGate) }
        if let evidence { o["evidence"] = evidence }
        return .object(o)
    }

    /// Reads a stored record; a clear error names what is missing.
    package init(json: JSONValue) throws(StoreError) {
        func need<T>(_ name: String, _ value: T?) throws(StoreError) -> T {
            guard let value else {
                throw StoreError(code: .corruptData, message: "a rollout record needs \"\(name)\"; written by hand or by a newer Flagpole?")
            }
            return value
        }
        guard json.objectValue != nil else {
            throw StoreError(code: .corruptData, message: "a rollout record must be a JSON object, found \(json.typeName)")
        }
        id = try need("id", json["id"]?.stringValue)
        flag = try need("flag", json["flag"]?.stringValue)
        targetVariant = try need("target", json["target"]?.stringValue)
        steps = try need("steps", json["steps"]?.arrayValue?.compactMap { $0.numberValue.map { Int($0) } }.nilIfEmpty)
        stepIndex = Int(json["step"]?.numberValue ?? 0)
        stepStartedAt = Int64(try need("stepStartedAt", json["stepStartedAt"]?.numberValue))
        watchSeconds = Int64(json["watchSeconds"]?.numberValue ?? 3600)
        let statusText = try need("status", json["status"]?.stringValue)
        status = try need("status (one of \(Status.allCases.map(\.rawValue).joined(separator: ", ")))", Status(rawValue: statusText))
        dryRun = json["dryRun"]?.boolValue ?? false
        let l = json["limits"]
        let builtIn = GuardPolicy.builtIn
        limits = GuardLimits(
            maxErrorRate: l?["maxErrorRate"]?.numberValue ?? builtIn.maxErrorRate ?? 0.05,
            maxErrorIncrease: l?["maxErrorIncrease"]?.numberValue ?? builtIn.maxErrorIncrease ?? 0.01,
            minSamples: Int(l?["minSamples"]?.numberValue ?? Double(builtIn.minSamples ?? 200)),
            maxP95LatencyMicros: l?["maxP95LatencyMicros"]?.numberValue)
        metric = MetricSettings(json: json["metric"])
        holdback = json["holdback"]?.numberValue.map { $0.isFinite ? min(50, max(0, $0)) : 0 } ?? 0
        let b = json["before"]
        let beforeOverride: OverrideRecord? = try b?["override"].flatMap { v throws(StoreError) in v.isNull ? nil : try OverrideRecord(json: v) }
        let beforePin: PinRecord? = try b?["pin"].flatMap { v throws(StoreError) in v.isNull ? nil : try PinRecord(json: v) }
        before = Before(override: beforeOverride, pin: beforePin, definition: try need("before.definition", b?["definition"]))
        overrideRevision = Int64(json["overrideRevision"]?.numberValue ?? 0)
        revision = Int64(json["revision"]?.numberValue ?? 0)
        startedBy = json["startedBy"]?.stringValue ?? "unknown"
        startedAt = Int64(json["startedAt"]?.numberValue ?? 0)
        reason = json["reason"]?.stringValue
        statusReason = json["statusReason"]?.stringValue
        endedAt = json["endedAt"]?.numberValue.map { Int64($0) }
        pausedAt = json["pausedAt"]?.numberValue.map { Int64($0) }
        wouldRevert = json["wouldRevert"]?.stringValue
        forcedWindows = json["forcedWindows"]?.arrayValue?.compactMap(\.stringValue) ?? []
        forcedGate = json["forcedGate"]?.stringValue
        var d: [String: Int] = [:]
        for (k, v) in json["decisions"]?.objectValue ?? [:] { d[k] = Int(v.numberValue ?? 0) }
        decisions = d
        evidence = json["evidence"].flatMap { $0.isNull ? nil : $0 }
    }
}

/// The watcher's latest look at a rollout, kept in `flagpole:{ENV}:rollouts:observations`
/// (flag key → JSON). Written on every tick without bumping the revision: it changes nothing a
/// client serves.
///
/// JSON: `{"rollout","at","verdict","reason","evidence","treatment":{"successes","failures"},
/// "control":{…},"source","holds","watcher"}`.
package struct RolloutObservation: Sendable, Hashable {
    /// The rollout looked at.
    package var rolloutID: String
    /// Unix seconds.
    package var at: Int64
    /// What the watcher decided.
    package var verdict: RolloutVerdict
    /// Why, in words.
    package var reason: String
    /// The numbers behind the verdict.
    package var evidence: JSONValue
    /// The treatment cohort's counts (nil when the metric source failed).
    package var treatment: CohortCounts?
    /// The control cohort's counts (nil when the metric source failed).
    package var control: CohortCounts?
    /// The metric source's name.
    package var source: String
    /// Consecutive holds so far in this step.
    package var holds: Int
    /// The watcher that looked.
    package var watcher: String

    /// Creates an observation.
    package init(
        rolloutID: String, at: Int64, verdict: RolloutVerdict, reason: String, evidence: JSONValue = .object([:]),
        treatment: CohortCounts?, control: CohortCounts?, source: String, holds: Int, watcher: String
    ) {
        self.rolloutID = rolloutID
        self.at = at
        self.verdict = verdict
        self.reason = reason
        self.evidence = evidence
        self.treatment = treatment
        self.control = control
        self.source = source
        self.holds = holds
        self.watcher = watcher
    }

    static func countsJSON(_ c: CohortCounts?) -> JSONValue {
        guard let c else { return .null }
        return [
            "successes": .double(c.successes), "failures": .double(c.failures),
            "p95LatencyMicros": c.p95LatencyMicros.map { .double($0) } ?? .null,
        ]
    }

    static func counts(_ j: JSONValue?) -> CohortCounts? {
        guard let j, j.objectValue != nil else { return nil }
        return CohortCounts(
            successes: j["successes"]?.numberValue ?? 0, failures: j["failures"]?.numberValue ?? 0,
            p95LatencyMicros: j["p95LatencyMicros"]?.numberValue)
    }

    /// The observation as stored.
    package var json: JSONValue {
        [
            "rollout": .string(rolloutID), "at": .int(at), "verdict": .string(verdict.rawValue), "reason": .string(reason),
            "evidence": evidence, "treatment": Self.countsJSON(treatment), "control": Self.countsJSON(control),
            "source": .string(source), "holds": .int(Int64(holds)), "watcher": .string(watcher),
        ]
    }

    /// Reads a stored observation.
    package init(json: JSONValue) throws(StoreError) {
        guard let id = json["rollout"]?.stringValue, let v = json["verdict"]?.stringValue, let verdict = RolloutVerdict(rawValue: v) else {
            throw StoreError(code: .corruptData, message: "a rollout observation needs \"rollout\" and \"verdict\"")
        }
        rolloutID = id
        self.verdict = verdict
        at = Int64(json["at"]?.numberValue ?? 0)
        reason = json["reason"]?.stringValue ?? ""
        evidence = json["evidence"] ?? .object([:])
        treatment = Self.counts(json["treatment"])
        control = Self.counts(json["control"])
        source = json["source"]?.stringValue ?? ""
        holds = Int(json["holds"]?.numberValue ?? 0)
        watcher = json["watcher"]?.stringValue ?? ""
    }
}

/// The watcher lease as stored in `flagpole:{ENV}:watcher:lease`: who holds it, its fencing
/// token, and until when (the holder renews it every tick: it is also the watcher's heartbeat).
///
/// JSON: `{"holder":"host-pid-…","token":7,"renewedAt":UNIX_MS,"expiresAt":UNIX_MS}`.
package struct WatcherLease: Sendable, Hashable {
    /// The watcher's identity (`host-pid-random` by default).
    package var holder: String
    /// The fencing token: the value of `flagpole:{ENV}:watcher:fence` when the lease was taken.
    package var token: Int64
    /// Unix milliseconds.
    package var renewedAt: Int64
    /// Unix milliseconds.
    package var expiresAt: Int64

    /// Creates a lease.
    package init(holder: String, token: Int64, renewedAt: Int64, expiresAt: Int64) {
        self.holder = holder
        self.token = token
        self.renewedAt = renewedAt
        self.expiresAt = expiresAt
    }

    /// Whether a watcher holds it at `nowMilliseconds`.
    package func isLive(atMilliseconds now: Int64) -> Bool { now < expiresAt }

    /// The lease as stored.
    package var json: JSONValue {
        ["holder": .string(holder), "token": .int(token), "renewedAt": .int(renewedAt), "expiresAt": .int(expiresAt)]
    }

    /// Reads a stored lease.
    package init(json: JSONValue) throws(StoreError) {
        guard let holder = json["holder"]?.stringValue, let token = json["token"]?.numberValue else {
            throw StoreError(code: .corruptData, message: "the watcher lease needs \"holder\" and \"token\"")
        }
        // Whole numbers within ±2^53 (what the write script stores); anything else is corrupt,
        // never converted with a trap.
        func whole(_ value: Double?, _ field: String) throws(StoreError) -> Int64 {
            guard let value else { return 0 }
            guard value.rounded() == value, abs(value) <= 9_007_199_254_740_992, let whole = Int64(exactly: value) else {
                throw StoreError(code: .corruptData, message: "the watcher lease's \(field) is not a whole number: \(value)")
            }
            return whole
        }
        self.holder = holder
        self.token = try whole(token, "token")
        renewedAt = try whole(json["renewedAt"]?.numberValue, "renewedAt")
        expiresAt = try whole(json["expiresAt"]?.numberValue, "expiresAt")
    }
}

extension Array {
    fileprivate var nilIfEmpty: Self? { isEmpty ? nil : self }
}
