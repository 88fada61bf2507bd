import FlagpoleCore

/// What a runtime override does to a flag's definition.
///
/// Stored (inside ``OverrideRecord``) as one of these JSON forms:
///
/// | kind | JSON |
/// |---|---|
/// | ``variant(_:)`` | `{"variant":"on"}` |
/// | ``enabled(_:)`` | `{"state":"ENABLED"}` or `{"state":"DISABLED"}` |
/// | ``rollout(_:)`` | `{"rollout":{"id":"…","target":"on","percent":25,"seed":"…","base":{…override…}\|null}}` |
/// | ``definition(_:)`` | `{"definition":{"state":…,"variants":…,"defaultVariant":…,"targeting":…}}` |
///
/// A reader that finds none of these keys refuses the record with a clear
/// ``StoreError/Code/corruptData`` error (written by a newer Flagpole).
public indirect enum FlagOverride: Sendable, Hashable {
    /// Serve this variant to everyone (`flagctl set`): targeting is ignored and the flag is enabled.
    case variant(String)
    /// Force the flag's state: `false` is the kill switch (`flagctl disable`), `true` turns a flag
    /// that the files disable on (`flagctl enable`).
    case enabled(Bool)
    /// A guarded rollout's current step: a sticky `fractional` split between the target variant
    /// and what the flag served before the rollout.
    case rollout(RolloutSplit)
    /// Serve exactly this definition, whatever the files say: what an automatic revert restores
    /// (the flag's effective definition before the rollout), held by a pin.
    case definition(JSONValue)

    /// The flag definition with the override applied.
    public func apply(to definition: JSONValue) -> JSONValue {
        switch self {
        case .definition(let frozen):
            return frozen
        case .rollout(let split):
            return split.apply(to: definition)
        case .variant, .enabled:
            break
        }
        guard case .object(var flag) = definition else { return definition }
        switch self {
        case .variant(let name):
            flag["state"] = "ENABLED"
            flag["defaultVariant"] = .string(name)
            flag["targeting"] = nil
        case .enabled(let on):
            flag["state"] = .string(on ? "ENABLED" : "DISABLED")
        case .rollout, .definition:
            break
        }
        return .object(flag)
    }

    /// Words for people: `variant "on"`, `disabled`, `enabled`, `rollout 25% → "on"`, `frozen definition`.
    public var summary: String {
        switch self {
        case .variant(let v): return "variant \"\(v)\""
        case .enabled(let on): return on ? "enabled" : "disabled"
        case .rollout(let s):
            return "rollout \(s.percent)% → \"\(s.targetVariant)\""
                + (s.effectiveHoldback > 0 ? " (\(RolloutSplit.percentText(s.effectiveHoldback)) held back)" : "")
        case .definition(let d):
            if d["state"]?.stringValue == "DISABLED" { return "reverted (frozen definition: disabled)" }
            return
                "reverted (frozen definition: default \(d["defaultVariant"]?.jsonString ?? "null")\(d["targeting"].map { $0.isNull || $0 == .object([:]) } == false ? ", with targeting" : ""))"
        }
    }

    /// The override's own JSON fields (without actor, reason, at and revision).
    public var jsonFields: [String: JSONValue] {
        switch self {
        case .variant(let v): return ["variant": .string(v)]
        case .enabled(let on): return ["state": .string(on ? "ENABLED" : "DISABLED")]
        case .rollout(let s): return ["rollout": s.json]
        case .definition(let d): return ["definition": d]
        }
    }

    /// Reads the override's own fields from a stored object.
    public init(fields o: [String: JSONValue]) throws(StoreError) {
        if let v = o["variant"]?.stringValue {
            self = .variant(v)
        } else if let s = o["state"]?.stringValue, s == "ENABLED" || s == "DISABLED" {
            self = .enabled(s == "ENABLED")
        } else if let r = o["rollout"] {
            self = .rollout(try RolloutSplit(json: r))
        } else if let d = o["definition"] {
            guard d.objectValue != nil else {
                throw StoreError(code: .corruptData, message: "an override's \"definition\" must be a JSON object, found \(d.typeName)")
            }
            self = .definition(d)
        } else {
            throw StoreError(
                code: .corruptData,
                message:
                    "an override needs \"variant\" (a string), \"state\" (ENABLED or DISABLED), \"rollout\" or \"definition\"; written by a newer Flagpole?"
            )
        }
    }
}

/// One step of a guarded rollout, as an override: `percent` % of targeting keys get
/// `targetVariant`, the rest get what the flag served before.
///
/// The effective targeting is
/// `{"if":[{"==":[{"fractional":[{"cat":[SEED,{"var":"targetingKey"}]},["treatment",P],["control",100-P]]},"treatment"]}, TARGET, ORIGINAL]}`
/// where ORIGINAL is the flag's targeting before the rollout (the ``base`` override applied to the
/// definition), or its default variant. The seed stays the same through every step of a rollout,
/// so a key inside P % stays inside when P grows: users never flip back and forth. At 100 % the
/// flag simply serves the target variant.
public struct RolloutSplit: Sendable, Hashable {
    /// The rollout this step belongs to.
    public var rolloutID: String
    /// The variant being rolled out.
    public var targetVariant: String
    /// The share of targeting keys that get the target, 0…100.
    public var percent: Int
    /// The bucketing seed (the rollout's id by default).
    public var seed: String
    /// The override in force before the rollout began, applied under the split; nil for none.
    public var base: FlagOverride?
    /// At 100 %: the share of targeting keys, in percent (0…50), still served what they had before
    /// (the final step's holdback); 0 for none. Stored as `"holdback"`, absent when 0.
    public var holdback: Double

    /// Creates a split; `seed` defaults to the rollout id.
    public init(rolloutID: String, targetVariant: String, percent: Int, seed: String? = nil, base: FlagOverride? = nil, holdback: Double = 0) {
        self.rolloutID = rolloutID
        self.targetVariant = targetVariant
        self.percent = percent
        self.seed = seed ?? rolloutID
        self.base = base
        self.holdback = holdback
    }

    /// The holdback in force: only at 100 %, clamped into 0…50.
    public var effectiveHoldback: Double { percent >= 100 ? min(50, max(0, holdback.isFinite ? holdback : 0)) : 0 }

    /// The definition served during this step.
    public func apply(to definition: JSONValue) -> JSONValue {
        let original = base.map { $0.apply(to: definition) } ?? definition
        guard case .object(var flag) = original else { return original }
        flag["state"] = "ENABLED"
        if percent >= 100 && effectiveHoldback == 0 {
            flag["defaultVariant"] = .string(targetVariant)
            flag["targeting"] = nil
            return .object(flag)
        }
        let before: JSONValue
        if let t = flag["targeting"], !t.isNull, t != .object([:]) {
            before = t
        } else {
            before = flag["defaultVariant"] ?? .null
        }
        // Weights in percent; with a holdback in hundredths of a percent. `fractional` buckets by the
        // share of the total weight, so a key inside the treatment at 25 % stays inside at 98 %.
        var treatment = Int64(max(0, min(100, percent))), total: Int64 = 100
        if effectiveHoldback > 0 {
            total = 10_000
            treatment = total - Int64((effectiveHoldback * 100).rounded())
        }
        let bucket: JSONValue = [
            "fractional": [
                ["cat": [.string(seed), ["var": "targetingKey"]]], ["treatment", .int(treatment)], ["control", .int(total - treatment)],
            ]
        ]
        flag["targeting"] = ["if": [["==": [bucket, "treatment"]], .string(targetVariant), before]]
        return .object(flag)
    }

    /// `{"id","target","percent","seed","base"}`, and `"holdback"` when there is one.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(rolloutID), "target": .string(targetVariant), "percent": .int(Int64(percent)), "seed": .string(seed),
            "base": base.map { .object($0.jsonFields) } ?? .null,
        ]
        if holdback > 0 { o["holdback"] = .double(holdback) }
        return .object(o)
    }

    /// Reads a stored split.
    public init(json: JSONValue) throws(StoreError) {
        guard let id = json["id"]?.stringValue, let target = json["target"]?.stringValue,
            let percent = json["percent"]?.numberValue, percent >= 0, percent <= 100
        else {
            throw StoreError(code: .corruptData, message: "a rollout override needs \"id\", \"target\" (strings) and \"percent\" (0…100)")
        }
        self.rolloutID = id
        self.targetVariant = target
        self.percent = Int(percent)
        self.seed = json["seed"]?.stringValue ?? id
        self.holdback = json["holdback"]?.numberValue.map { min(50, max(0, $0)) } ?? 0
        if let b = json["base"]?.objectValue {
            let inner = try FlagOverride(fields: b)
            if case .rollout = inner {
                throw StoreError(code: .corruptData, message: "a rollout override's \"base\" cannot be another rollout")
            }
            self.base = inner
        } else {
            self.base = nil
        }
    }
}

extension RolloutSplit {
    /// `2%`, `0.5%`.
    public static func percentText(_ x: Double) -> String {
        let r = (x * 100).rounded() / 100
        return (r == r.rounded() ? String(Int(r)) : String(r)) + "%"
    }
}

/// A runtime override as stored in the overrides hash: the override, who set it, why, and when.
///
/// JSON: the override's fields (see ``FlagOverride``) plus
/// `"actor":"…","reason":"…","at":UNIX_SECONDS,"revision":N`.
public struct OverrideRecord: Sendable, Hashable {
    public var override: FlagOverride
    public var actor: String
    public var reason: String?
    /// Unix seconds.
    public var at: Int64
    /// The revision that set it.
    public var revision: Int64

    public init(override: FlagOverride, actor: String, reason: String?, at: Int64, revision: Int64) {
        self.override = override
        self.actor = actor
        self.reason = reason
        self.at = at
        self.revision = revision
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["actor": .string(actor), "at": .int(at), "revision": .int(revision)]
        if let reason { o["reason"] = .string(reason) }
        for (k, v) in override.jsonFields { o[k] = v }
        return .object(o)
    }

    /// Reads a stored override; a clear error names what is wrong with it.
    public init(json: JSONValue) throws(StoreError) {
        guard case .object(let o) = json else {
            throw StoreError(code: .corruptData, message: "an override must be a JSON object, found \(json.typeName)")
        }
        override = try FlagOverride(fields: o)
        actor = o["actor"]?.stringValue ?? "unknown"
        reason = o["reason"]?.stringValue
        at = Int64(o["at"]?.numberValue ?? 0)
        revision = Int64(o["revision"]?.numberValue ?? 0)
    }
}

/// A pin: an automatic revert put the flag back and no routine sync may undo that.
///
/// JSON: `{"by":"…","reason":"…","at":UNIX_SECONDS,"revision":N,"rollout":"…"}`. The reverted
/// state itself is the flag's override.
public struct PinRecord: Sendable, Hashable {
    public var by: String
    public var reason: String
    public var at: Int64
    public var revision: Int64
    /// The rollout whose revert set the pin, if any.
    public var rollout: String?

    public init(by: String, reason: String, at: Int64, revision: Int64, rollout: String? = nil) {
        self.by = by
        self.reason = reason
        self.at = at
        self.revision = revision
        self.rollout = rollout
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["by": .string(by), "reason": .string(reason), "at": .int(at), "revision": .int(revision)]
        if let rollout { o["rollout"] = .string(rollout) }
        return .object(o)
    }

    public init(json: JSONValue) throws(StoreError) {
        guard case .object(let o) = json, let by = o["by"]?.stringValue else {
            throw StoreError(code: .corruptData, message: "a pin must be a JSON object with \"by\"")
        }
        self.by = by
        reason = o["reason"]?.stringValue ?? ""
        at = Int64(o["at"]?.numberValue ?? 0)
        revision = Int64(o["revision"]?.numberValue ?? 0)
        rollout = o["rollout"]?.stringValue
    }
}
