import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Testing

/// The rows of `flagctl list --stale`, from definitions, the stored evaluation times and `now`.
@Suite("Stale flags: expired, not evaluated for N days, never evaluated, unreadable times")
struct StaleFlagsTests {
    /// 2027-02-12T10:00:00Z.
    static let now: Int64 = CivilTime.parseTimestamp("2027-02-12T10:00:00Z")!
    static let day: Int64 = 86_400

    static func flag(expires: String? = nil, owner: String? = nil) -> JSONValue {
        var metadata: [String: JSONValue] = [:]
        if let expires { metadata["expires"] = .string(expires) }
        if let owner { metadata["owner"] = .string(owner) }
        return ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off", "metadata": .object(metadata)]
    }

    @Test("an expired flag evaluated yesterday is listed as expired, with its owner; a fresh one is not listed")
    func expired() throws {
        let rows = StaleFlags.rows(
            definitions: ["old-checkout": Self.flag(expires: "2027-01-31", owner: "team-payments"), "fresh": Self.flag(owner: "web")],
            evaluated: ["old-checkout": "\(Self.now - Self.day)", "fresh": "\(Self.now - 3600)"], days: 30, now: Self.now)
        #expect(rows.map(\.flag) == ["old-checkout"])
        let row = try #require(rows.first)
        #expect(row.owner == "team-payments" && row.expires == "2027-01-31")
        // 2027-01-31 expires at 2027-02-01T00:00Z: 11 days and 10 hours before now.
        #expect(row.expiredDaysAgo == 11 && row.expiryText == "expired 11 days ago")
        #expect(row.evaluation == .recent(at: Self.now - Self.day, days: 1) && !row.isUnused)
        #expect(row.json["expired"] == .bool(true) && row.json["evaluation"] == "recent" && row.json["owner"] == "team-payments")
    }

    @Test("last evaluated more than N days ago is listed; exactly N days ago is not")
    func old() throws {
        let rows = StaleFlags.rows(
            definitions: ["a": Self.flag(), "b": Self.flag(owner: "ops")],
            evaluated: ["a": "\(Self.now - 41 * Self.day - 5)", "b": "\(Self.now - 30 * Self.day)"], days: 30, now: Self.now)
        #expect(rows.map(\.flag) == ["a"])
        let row = try #require(rows.first)
        #expect(row.evaluation == .old(at: Self.now - 41 * Self.day - 5, days: 41))
        #expect(row.evaluationText == "last evaluated 41 days ago" && row.owner == nil && row.expiryText == "-")
        #expect(row.json["lastEvaluatedDaysAgo"] == .int(41) && row.json["evaluation"] == "old" && row.json["owner"] == .null)
        // The threshold moves with --days.
        #expect(StaleFlags.rows(definitions: ["b": Self.flag()], evaluated: ["b": "\(Self.now - 30 * Self.day)"], days: 7, now: Self.now).count == 1)
    }

    @Test("a flag with no evaluation recorded is listed; fields of flags no longer live are ignored")
    func never() throws {
        let rows = StaleFlags.rows(
            definitions: ["new-banner": Self.flag(owner: "growth")], evaluated: ["removed-flag": "\(Self.now)"], days: 30, now: Self.now)
        let row = try #require(rows.first)
        #expect(rows.count == 1 && row.flag == "new-banner" && row.evaluation == .never)
        #expect(row.evaluationText == "no evaluation recorded" && row.json["evaluation"] == "none" && row.json["lastEvaluated"] == .null)
    }

    @Test(
        "a stored value that is not a time a client could write is unreadable, listed and never trusted",
        arguments: ["", "abc", "-5", "+1767225600", "1767225600.5", " 1767225600", "1577836799", "99999999999999999999", "0x10"])
    func unreadable(value: String) throws {
        let rows = StaleFlags.rows(definitions: ["f": Self.flag()], evaluated: ["f": value], days: 30, now: Self.now)
        let row = try #require(rows.first)
        #expect(row.evaluation == .unreadable(value))
        #expect(row.json["unreadableValue"] == .string(value) && row.json["lastEvaluated"] == .null)
    }

    @Test("a time more than a day in the future is unreadable; up to a day ahead (clock skew) is accepted")
    func future() {
        let ahead = StaleFlags.rows(definitions: ["f": Self.flag()], evaluated: ["f": "\(Self.now + Self.day + 1)"], days: 30, now: Self.now)
        #expect(ahead.first?.evaluation == .unreadable("\(Self.now + Self.day + 1)"))
        #expect(StaleFlags.rows(definitions: ["f": Self.flag()], evaluated: ["f": "\(Self.now + Self.day)"], days: 30, now: Self.now).isEmpty)
        #expect(StoreLayout.parseEvaluationTime("1577836800", now: Self.now) == 1_577_836_800)
    }

    @Test("an expiry that is not a date is not an expiry (validate reports it); the owner still shows")
    func badExpiry() throws {
        let rows = StaleFlags.rows(
            definitions: ["f": Self.flag(expires: "soon", owner: "ops")], evaluated: [:], days: 30, now: Self.now)
        let row = try #require(rows.first)
        #expect(row.expires == nil && !row.isExpired && row.owner == "ops" && row.evaluation == .never)
    }
}
