import FlagpoleCore

/// The rules of one time zone: which UTC offset applies at every instant. A value, evaluated
/// purely; the I/O that obtains it (reading a TZif file of the system's tz database) happens at the
/// edge, in the config loader's caller (see ``ZoneRules/parseTZif(_:name:)``).
///
/// A zone is either a fixed offset (`UTC`, `+01:00`) or an IANA zone (`Europe/Berlin`): its
/// transitions as recorded in the tz database, then, after the last one, the POSIX TZ rule the
/// file ends with (`CET-1CEST,M3.5.0,M10.5.0/3`), so years past the table stay DST-correct.
package struct ZoneRules: Sendable, Hashable {
    /// A UTC offset in force, and its abbreviation (`CET`, `CEST`, `+01:00`).
    package struct LocalTimeType: Sendable, Hashable {
        /// Seconds east of UTC.
        package var offset: Int
        /// The abbreviation, e.g. `CEST`.
        package var abbreviation: String
        /// Whether it is daylight-saving time.
        package var isDST: Bool

        /// Creates a type.
        package init(offset: Int, abbreviation: String, isDST: Bool) {
            self.offset = offset
            self.abbreviation = abbreviation
            self.isDST = isDST
        }
    }

    /// The zone's name as written (`Europe/Berlin`, `+01:00`, `UTC`).
    package var name: String
    /// The type in force before the first transition (and always, for a fixed offset).
    package var initial: LocalTimeType
    /// A change of the local time type: from `at` (Unix seconds) on, `type` applies.
    package struct Transition: Sendable, Hashable {
        package var at: Int64
        package var type: LocalTimeType

        /// Creates a transition.
        package init(at: Int64, type: LocalTimeType) {
            self.at = at
            self.type = type
        }
    }

    /// The transitions, ascending by time.
    package private(set) var transitions: [Transition]
    /// The rule after the last transition (the TZif footer), if any.
    package var rule: PosixRule?

    /// Whether the zone is a fixed offset (no transitions, no rule).
    package var isFixed: Bool { transitions.isEmpty && rule == nil }

    /// A zone from its parts; `transitions` must ascend.
    package init(name: String, initial: LocalTimeType, transitions: [Transition] = [], rule: PosixRule? = nil) {
        self.name = name
        self.initial = initial
        self.transitions = transitions
        self.rule = rule
    }

    /// A fixed offset, `seconds` east of UTC, named `UTC` or `+01:00`.
    package static func fixed(_ seconds: Int) -> ZoneRules {
        let name = seconds == 0 ? "UTC" : offsetText(seconds)
        return ZoneRules(name: name, initial: LocalTimeType(offset: seconds, abbreviation: name, isDST: false))
    }

    /// UTC.
    package static let utc = ZoneRules.fixed(0)

    /// `+01:00`, `-05:30`, `+00:00` for an offset in seconds.
    package static func offsetText(_ seconds: Int) -> String {
        let a = abs(seconds)
        let h = a / 3600, m = (a % 3600) / 60
        return (seconds < 0 ? "-" : "+") + (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
    }

    /// The local time type at a Unix time.
    package func type(at unixTime: Int64) -> LocalTimeType {
        guard let first = transitions.first, unixTime >= first.at else {
            // Before the first transition (or with none), the rule when there is no table at all.
            if transitions.isEmpty, let rule { return rule.type(at: unixTime) }
            return initial
        }
        // The last transition at or before unixTime.
        var lo = 0, hi = transitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if transitions[mid].at <= unixTime { lo = mid } else { hi = mid - 1 }
        }
        if lo == transitions.count - 1, let rule { return rule.type(at: unixTime) }
        return transitions[lo].type
    }

    /// Seconds east of UTC at a Unix time.
    package func offset(at unixTime: Int64) -> Int { type(at: unixTime).offset }

    /// Local wall-clock seconds (Unix time plus the offset) at a Unix time.
    package func local(_ unixTime: Int64) -> Int64 { unixTime + Int64(offset(at: unixTime)) }

    /// Which instant to take when a local time occurs twice (the hour repeated when clocks go back).
    package enum Ambiguity: Sendable {
        case earlier, later
    }

    /// The instant at which the wall clock shows `localSeconds` (local seconds since 1970-01-01 00:00).
    ///
    /// - A local time that occurs twice (clocks go back) gives the `earlier` or `later` instant.
    /// - A local time that does not exist (clocks spring forward over it) gives the instant of the
    ///   jump: the first instant whose wall time is later than it.
    package func instant(local localSeconds: Int64, _ ambiguity: Ambiguity) -> Int64 {
        if isFixed { return localSeconds - Int64(initial.offset) }
        // Offsets in force a day around: a transition moves them by less than a day.
        let around = [offset(at: localSeconds - 86_400), offset(at: localSeconds), offset(at: localSeconds + 86_400)]
        var candidates = Set(around)
        for o in around { candidates.insert(offset(at: localSeconds - Int64(o))) }
        let valid = candidates.map { localSeconds - Int64($0) }.filter { offset(at: $0) == Int(localSeconds - $0) }
        if let pick = ambiguity == .earlier ? valid.min() : valid.max() { return pick }
        // A gap: before the jump the wall clock is behind localSeconds, after it ahead. Find the jump.
        var lo = localSeconds - Int64(candidates.max()!) - 1, hi = localSeconds - Int64(candidates.min()!) + 1
        guard self.local(lo) < localSeconds, self.local(hi) > localSeconds else { return localSeconds - Int64(around[1]) }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            if self.local(mid) < localSeconds { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// `Fri 2026-03-27 16:00 CET` for a Unix time in this zone.
    package func localText(_ unixTime: Int64) -> String {
        let t = type(at: unixTime)
        return Self.civilText(unixTime + Int64(t.offset)) + " " + t.abbreviation
    }

    /// `Fri 2026-03-27 16:00` for local seconds since 1970-01-01 00:00.
    package static func civilText(_ local: Int64) -> String {
        let day = CivilTime.floorDiv(local, 86_400)
        let (y, m, d) = CivilTime.civil(days: day)
        let second = CivilTime.floorMod(local, 86_400)
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let weekday = names[Int(CivilTime.floorMod(day + 3, 7))]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(weekday) \(y)-\(two(m))-\(two(d)) \(two(second / 3600)):\(two(second % 3600 / 60))"
    }
}

/// A POSIX TZ rule (the footer of a TZif file), e.g. `CET-1CEST,M3.5.0,M10.5.0/3`: a standard
/// offset, and optionally a daylight-saving offset with the yearly dates and times it starts and ends.
package struct PosixRule: Sendable, Hashable {
    /// A day of the year in a rule.
    package enum Day: Sendable, Hashable {
        /// `Jn`: day 1…365, February 29 never counted.
        case julian(Int)
        /// `n`: day 0…365, February 29 counted in leap years.
        case zeroBased(Int)
        /// `Mm.w.d`: weekday `d` (0 = Sunday) of week `w` (1…4, 5 = the last) of month `m`.
        case monthWeekDay(month: Int, week: Int, weekday: Int)
    }

    /// Daylight-saving time and when it applies.
    package struct Daylight: Sendable, Hashable {
        /// The daylight-saving type.
        package var type: ZoneRules.LocalTimeType
        /// The day it starts, and the local time (seconds after midnight, in standard time; may
        /// exceed a day or be negative).
        package var start: Day
        package var startTime: Int
        /// The day it ends, and the local time (in daylight-saving time).
        package var end: Day
        package var endTime: Int

        /// Creates the daylight-saving part.
        package init(type: ZoneRules.LocalTimeType, start: Day, startTime: Int, end: Day, endTime: Int) {
            self.type = type
            self.start = start
            self.startTime = startTime
            self.end = end
            self.endTime = endTime
        }
    }

    /// The standard time.
    package var standard: ZoneRules.LocalTimeType
    /// Daylight-saving time; nil when the zone has none.
    package var daylight: Daylight?

    /// Creates a rule.
    package init(standard: ZoneRules.LocalTimeType, daylight: Daylight? = nil) {
        self.standard = standard
        self.daylight = daylight
    }

    /// The local time type at a Unix time.
    package func type(at unixTime: Int64) -> ZoneRules.LocalTimeType {
        guard let dst = daylight else { return standard }
        let year = CivilTime.civil(days: CivilTime.floorDiv(unixTime + Int64(standard.offset), 86_400)).year
        // Both changes are written in the local time in force before them.
        let start = Self.days(dst.start, year: year) * 86_400 + Int64(dst.startTime) - Int64(standard.offset)
        let end = Self.days(dst.end, year: year) * 86_400 + Int64(dst.endTime) - Int64(dst.type.offset)
        let inDST = start < end ? (unixTime >= start && unixTime < end) : !(unixTime >= end && unixTime < start)
        return inDST ? dst.type : standard
    }

    /// Days from 1970-01-01 to a rule's day in a year.
    static func days(_ day: Day, year: Int64) -> Int64 {
        let jan1 = CivilTime.days(year: year, month: 1, day: 1)
        switch day {
        case .julian(let n):
            // Day n of a 365-day year: from March on, a leap year's February 29 is skipped.
            let n = Int64(n)
            return jan1 + n - 1 + (CivilTime.isLeap(year) && n >= 60 ? 1 : 0)
        case .zeroBased(let n):
            return jan1 + Int64(n)
        case .monthWeekDay(let month, let week, let weekday):
            let first = CivilTime.days(year: year, month: Int64(month), day: 1)
            let firstWeekday = CivilTime.floorMod(first + 4, 7)  // 1970-01-01 was a Thursday (4, Sunday = 0)
            var day = first + CivilTime.floorMod(Int64(weekday) - firstWeekday, 7) + Int64(week - 1) * 7
            let length = CivilTime.daysIn(month: Int64(month), year: year)
            while day >= first + length { day -= 7 }
            return day
        }
    }
}

extension ZoneRules {
    /// Why a zone name could not be resolved: what is wrong, and how to fix it.
    package struct LookupFailure: Error, Sendable, Hashable {
        /// What is wrong, e.g. `"Europe/Berln" is not a zone of the tz database (/usr/share/zoneinfo)`.
        package var message: String
        /// How to fix it.
        package var hint: String?

        /// Creates a failure.
        package init(message: String, hint: String? = nil) {
            self.message = message
            self.hint = hint
        }
    }

    /// Finds the rules of an IANA zone by name (`Europe/Berlin`). The config loader is pure: its
    /// caller passes a resolver that reads the system's tz database (FlagpoleControl's
    /// `SystemZoneDatabase`), tests may pass rules of their own.
    package typealias Resolver = @Sendable (String) -> Result<ZoneRules, LookupFailure>

    /// A resolver without a tz database: every zone name fails (fixed offsets need none).
    package static let noDatabase: Resolver = { name in
        .failure(
            LookupFailure(
                message: "time zone \"\(name)\" cannot be looked up here (no tz database was given)",
                hint: "flagctl reads zones from /usr/share/zoneinfo; or write a UTC offset like +01:00"))
    }

    /// Whether a name has the shape of an IANA zone name: `Area/Location` parts of letters, digits,
    /// `_`, `-`, `+`, no `.` part, no leading `/` (so it stays inside the tz database's folder).
    package static func isZoneName(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return !name.isEmpty && name.utf8.count <= 255
            && parts.allSatisfy { part in
                !part.isEmpty && part != "." && part != ".."
                    && part.unicodeScalars.allSatisfy {
                        $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-+".unicodeScalars.contains($0))
                    }
            }
    }
}
