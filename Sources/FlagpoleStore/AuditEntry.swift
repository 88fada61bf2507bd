import FlagpoleCore

/// One entry of an environment's audit stream.
///
/// Stream fields: `revision`, `action` (`sync`, `set`, `enable`, `disable`, `clear`, `restore`,
/// `unpin`; rollouts: `rollout-start`, `rollout-pause`, `rollout-resume`, `rollout-abort`,
/// `rollout-promote`, and the watcher's `rollout-advance`, `rollout-complete`, `rollout-revert`,
/// `rollout-stop`, `rollout-would-revert` and sampled `rollout-hold`), `actor`, `reason` (optional), `at` (unix seconds),
/// `flags` (a JSON array of the flag keys it touched) and `details` (JSON: before and after for
/// each flag, and for automatic decisions the evidence).
package struct AuditEntry: Sendable, Hashable {
    /// The stream entry id (`1700000000000-0`); empty before it is written.
    package var id: String
    package var revision: Int64
    package var action: String
    package var actor: String
    package var reason: String?
    /// Unix seconds.
    package var at: Int64
    package var flags: [String]
    package var details: JSONValue

    package init(
        id: String = "", revision: Int64 = 0, action: String, actor: String, reason: String? = nil, at: Int64, flags: [String],
        details: JSONValue = .object([:])
    ) {
        self.id = id
        self.revision = revision
        self.action = action
        self.actor = actor
        self.reason = reason
        self.at = at
        self.flags = flags
        self.details = details
    }

    /// The fields to write (the script adds `revision`).
    var fields: [(String, String)] {
        var f: [(String, String)] = [
            ("action", action), ("actor", actor), ("at", String(at)),
            ("flags", JSONValue.array(flags.map { .string($0) }).jsonString), ("details", details.jsonString),
        ]
        if let reason { f.append(("reason", reason)) }
        return f
    }

    /// Reads an entry from an `XRANGE`/`XREVRANGE` reply element.
    init(reply: RedisReplyEntry) throws(StoreError) {
        let f = reply.fields
        id = reply.id
        guard let action = f["action"] else {
            throw StoreError(code: .corruptData, message: "audit entry \(reply.id) has no action")
        }
        self.action = action
        revision = Int64(f["revision"] ?? "") ?? 0
        actor = f["actor"] ?? "unknown"
        reason = f["reason"]
        at = Int64(f["at"] ?? "") ?? 0
        flags = (try? JSONParser.parse(f["flags"] ?? "[]"))?.arrayValue?.compactMap(\.stringValue) ?? []
        details = (try? JSONParser.parse(f["details"] ?? "{}")) ?? .object([:])
    }
}

/// A stream entry: its id and fields.
struct RedisReplyEntry {
    var id: String
    var fields: [String: String]
}
