import FlagpoleCore

/// What a runtime override does to a flag's definition.
public enum FlagOverride: Sendable, Hashable {
    /// Serve this variant to everyone (`flagctl set`): targeting is ignored and the flag is enabled.
    case variant(String)
    /// Force the flag's state: `false` is the kill switch (`flagctl disable`), `true` turns a flag
    /// that the files disable on (`flagctl enable`).
    case enabled(Bool)

    /// The flag definition with the override applied.
    public func apply(to definition: JSONValue) -> JSONValue {
        guard case .object(var flag) = definition else { return definition }
        switch self {
        case .variant(let name):
            flag["state"] = "ENABLED"
            flag["defaultVariant"] = .string(name)
            flag["targeting"] = nil
        case .enabled(let on):
            flag["state"] = .string(on ? "ENABLED" : "DISABLED")
        }
        return .object(flag)
    }

    /// Words for people: `variant "on"`, `disabled`, `enabled`.
    public var summary: String {
        switch self {
        case .variant(let v): return "variant \"\(v)\""
        case .enabled(let on): return on ? "enabled" : "disabled"
        }
    }
}

/// A runtime override as stored in the overrides hash: the override, who set it, why, and when.
///
/// JSON: `{"variant":"on"|"state":"ENABLED"|"DISABLED","actor":"…","reason":"…","at":UNIX_SECONDS,"revision":N}`
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
        switch override {
        case .variant(let v): o["variant"] = .string(v)
        case .enabled(let on): o["state"] = .string(on ? "ENABLED" : "DISABLED")
        }
        return .object(o)
    }

    /// Reads a stored override; a clear error names what is wrong with it.
    public init(json: JSONValue) throws(StoreError) {
        guard case .object(let o) = json else {
            throw StoreError(code: .corruptData, message: "an override must be a JSON object, found \(json.typeName)")
        }
        if let v = o["variant"]?.stringValue {
            override = .variant(v)
        } else if let s = o["state"]?.stringValue, s == "ENABLED" || s == "DISABLED" {
            override = .enabled(s == "ENABLED")
        } else {
            throw StoreError(
                code: .corruptData,
                message: "an override needs \"variant\" (a string) or \"state\" (ENABLED or DISABLED); written by a newer Flagpole?")
        }
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

    public init(by: String, reason: String, at: Int64, revision: Int64) {
        self.by = by
        self.reason = reason
        self.at = at
        self.revision = revision
    }

    public var json: JSONValue {
        ["by": .string(by), "reason": .string(reason), "at": .int(at), "revision": .int(revision)]
    }

    public init(json: JSONValue) throws(StoreError) {
        guard case .object(let o) = json, let by = o["by"]?.stringValue else {
            throw StoreError(code: .corruptData, message: "a pin must be a JSON object with \"by\"")
        }
        self.by = by
        reason = o["reason"]?.stringValue ?? ""
        at = Int64(o["at"]?.numberValue ?? 0)
        revision = Int64(o["revision"]?.numberValue ?? 0)
    }
}
