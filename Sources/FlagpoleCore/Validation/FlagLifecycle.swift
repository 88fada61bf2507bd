/// A flag's lifecycle metadata: `expires` (when the flag should be gone) and `owner` (who removes
/// it). Plain flagd metadata keys, so the files stay valid flagd files:
///
/// ```yaml
/// metadata:
///   expires: 2027-01-31          # a date (expired from the next day, 00:00 UTC) or an RFC 3339 time
///   owner: "team-payments"
/// ```
package struct FlagLifecycle: Sendable, Hashable {
    /// The metadata key of the expiry.
    package static let expiresKey = "expires"
    /// The metadata key of the owner.
    package static let ownerKey = "owner"

    /// How the loader checks lifecycle metadata (``FlagSetLoader/Options/lifecycle``).
    package struct Check: Sendable, Hashable {
        /// The time to compare expiries with (Unix seconds); nil checks only their form.
        package var now: Int64?

        /// Creates a check; `now` nil checks only the form of `expires` and `owner`.
        package init(now: Int64? = nil) { self.now = now }
    }

    /// The first instant at which the flag is expired (Unix seconds), or nil when it has no valid expiry.
    package var expiresAt: Int64?
    /// `expires` as written.
    package var expiresText: String?
    /// The owner, if the flag names one.
    package var owner: String?

    /// The lifecycle a flag's `metadata` gives; values that are not valid are left out (validation reports them).
    package init(metadata: JSONValue?) {
        if case .string(let s)? = metadata?[Self.expiresKey] {
            expiresText = s
            expiresAt = Self.parseExpiry(s)
        }
        if case .string(let s)? = metadata?[Self.ownerKey], !s.trimmingSpaces().isEmpty { owner = s }
    }

    /// The instant an expiry takes effect: a date `2027-01-31` expires at the start of the next day
    /// (UTC), so the flag may live through the whole day written; an RFC 3339 time at that instant.
    package static func parseExpiry(_ text: String) -> Int64? {
        if let day = CivilTime.parseDate(text) { return (day + 1) * 86_400 }
        return CivilTime.parseTimestamp(text)
    }

    /// Whether the flag is expired at `now` (Unix seconds).
    package func isExpired(at now: Int64) -> Bool { expiresAt.map { now >= $0 } ?? false }

    /// Whole days since the expiry took effect (0 on the first day), at `now`.
    package func daysExpired(at now: Int64) -> Int64? {
        guard let expiresAt, now >= expiresAt else { return nil }
        return (now - expiresAt) / 86_400
    }

    /// `expired 11 days ago (expires: 2027-01-31; owner: team-payments)`, for messages: days counted
    /// from the moment the expiry took effect (for a date, the start of the next day, UTC).
    package func expiredText(at now: Int64) -> String {
        let days = daysExpired(at: now) ?? 0
        let ago = days == 0 ? "today" : days == 1 ? "1 day ago" : "\(days) days ago"
        return "expired \(ago) (expires: \(expiresText ?? "?"); owner: \(owner ?? "none named"))"
    }
}
