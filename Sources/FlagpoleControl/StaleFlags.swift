import FlagpoleCore
import FlagpoleStore

/// The flags that outlived their purpose, for `flagctl list --stale`: flags past their
/// `metadata.expires`, and flags no client has reported evaluating for some days (or ever).
/// Pure: the live definitions, the stored evaluation times and `now` in, rows out.
package enum StaleFlags {
    /// What the evaluation record says about one flag.
    package enum Evaluation: Sendable, Hashable {
        /// Last evaluated at this Unix second, `days` whole days ago: within the threshold.
        case recent(at: Int64, days: Int64)
        /// Last evaluated at this Unix second, `days` whole days ago: more than the threshold.
        case old(at: Int64, days: Int64)
        /// No client ever reported evaluating it (or not since clients record evaluations).
        case never
        /// The stored value is not a time Flagpole could have written; it is not trusted.
        case unreadable(String)

        /// Stable name for JSON: `recent`, `old`, `none`, `unreadable`.
        package var name: String {
            switch self {
            case .recent: "recent"
            case .old: "old"
            case .never: "none"
            case .unreadable: "unreadable"
            }
        }
    }

    /// One listed flag.
    package struct Row: Sendable, Hashable {
        /// The flag key.
        package var flag: String
        /// `metadata.owner`, when the flag names one.
        package var owner: String?
        /// `metadata.expires` as written, when valid.
        package var expires: String?
        /// Whole days since the expiry took effect (0 on its first day); nil when not expired.
        package var expiredDaysAgo: Int64?
        /// What the evaluation record says.
        package var evaluation: Evaluation

        /// Whether the flag is past its expiry.
        package var isExpired: Bool { expiredDaysAgo != nil }

        /// Whether the evaluation record alone lists the flag (old, none, or unreadable).
        package var isUnused: Bool {
            if case .recent = evaluation { return false }
            return true
        }

        /// `expired 12 days ago`, or `-`.
        package var expiryText: String {
            guard let days = expiredDaysAgo else { return "-" }
            return "expired " + StaleFlags.ago(days)
        }

        /// `last evaluated 41 days ago`, `no evaluation recorded`, `unreadable evaluation time '…'`,
        /// or `evaluated 2 days ago`.
        package var evaluationText: String {
            switch evaluation {
            case .recent(_, let days): "evaluated " + StaleFlags.ago(days)
            case .old(_, let days): "last evaluated " + StaleFlags.ago(days)
            case .never: "no evaluation recorded"
            case .unreadable(let value): "unreadable evaluation time '\(StaleFlags.clip(value))' (not trusted)"
            }
        }

        /// The row as JSON (the shape `flagctl list --stale --json` documents).
        package var json: JSONValue {
            var lastEvaluated: JSONValue = .null
            var lastEvaluatedDaysAgo: JSONValue = .null
            var unreadable: JSONValue = .null
            switch evaluation {
            case .recent(let at, let days):
                lastEvaluated = .int(at)
                lastEvaluatedDaysAgo = .int(days)
            case .old(let at, let days):
                lastEvaluated = .int(at)
                lastEvaluatedDaysAgo = .int(days)
            case .never:
                break
            case .unreadable(let value):
                unreadable = .string(value)
            }
            return [
                "flag": .string(flag), "owner": owner.map { .string($0) } ?? .null, "expires": expires.map { .string($0) } ?? .null,
                "expired": .bool(isExpired), "expiredDaysAgo": expiredDaysAgo.map { .int($0) } ?? .null,
                "evaluation": .string(evaluation.name), "lastEvaluated": lastEvaluated, "lastEvaluatedDaysAgo": lastEvaluatedDaysAgo,
                "unreadableValue": unreadable,
            ]
        }
    }

    /// The flags to list, sorted by key: every flag past its expiry, and every flag whose last
    /// recorded evaluation is more than `days` days before `now` (or missing, or unreadable).
    ///
    /// - Parameters:
    ///   - definitions: The live flags: key → effective definition (its `metadata` gives
    ///     `expires` and `owner`, read by ``FlagLifecycle``).
    ///   - evaluated: The `evaluated` hash as stored: key → value (Unix seconds as text); each value
    ///     is checked with ``StoreLayout/parseEvaluationTime(_:now:)``. Keys of flags not live are ignored.
    ///   - days: The threshold in days (at least 1).
    ///   - now: Unix seconds.
    package static func rows(definitions: [String: JSONValue], evaluated: [String: String], days: Int64, now: Int64) -> [Row] {
        let threshold = days.saturatingMultiplied(by: 86_400)
        var rows: [Row] = []
        for key in definitions.keys.sorted() {
            let lifecycle = FlagLifecycle(metadata: definitions[key]?["metadata"])
            let evaluation: Evaluation
            if let text = evaluated[key] {
                if let at = StoreLayout.parseEvaluationTime(text, now: now) {
                    let age = max(0, now - at)
                    evaluation = age > threshold ? .old(at: at, days: age / 86_400) : .recent(at: at, days: age / 86_400)
                } else {
                    evaluation = .unreadable(text)
                }
            } else {
                evaluation = .never
            }
            let row = Row(
                flag: key, owner: lifecycle.owner, expires: lifecycle.expiresAt == nil ? nil : lifecycle.expiresText,
                expiredDaysAgo: lifecycle.daysExpired(at: now), evaluation: evaluation)
            if row.isExpired || row.isUnused { rows.append(row) }
        }
        return rows
    }

    /// `today`, `1 day ago`, `12 days ago`.
    static func ago(_ days: Int64) -> String {
        days == 0 ? "today" : days == 1 ? "1 day ago" : "\(days) days ago"
    }

    /// A stored value cut to 40 characters for a table cell.
    static func clip(_ value: String) -> String {
        value.count <= 40 ? value : String(value.prefix(40)) + "…"
    }
}
