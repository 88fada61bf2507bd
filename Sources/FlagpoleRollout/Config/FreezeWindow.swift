import FlagpoleCore

/// A time when rollouts must not start unless forced ("never on Friday evening"), and during which
/// the watcher does not advance a running rollout (a revert is always allowed).
///
/// Written in the project config as a `from`/`to` pair whose form picks the kind:
/// `"fri 16:00"`/`"mon 08:00"` (weekly), `"22:00"`/`"06:00"` (daily), or RFC 3339 timestamps
/// (`"2026-12-20T00:00:00Z"`, one absolute range). Weekly and daily windows are in the local
/// wall-clock time of `timezone`: an IANA zone (`Europe/Berlin`, daylight saving included) or a
/// fixed UTC offset (`UTC`, `+01:00`); the end is exclusive, and an end before the start wraps around.
///
/// Local times that a daylight-saving change skips or repeats:
/// - a time that does not exist (clocks spring forward over it) stands for the moment of the jump:
///   a window from 02:30 starts at 03:00 that night, and one that lies wholly inside the skipped
///   hour does not occur that night;
/// - a time that occurs twice (clocks go back) is taken as its earlier occurrence for a window's
///   start and its later occurrence for its end, so the window never has a hole and covers at least
///   the wall-clock time written.
package struct FreezeWindow: Sendable, Hashable {
    /// When the window is closed to rollouts.
    package enum Schedule: Sendable, Hashable {
        /// Every week from `start` to `end`, in minutes since Monday 00:00 local time in `zone`;
        /// wraps past Sunday when `end <= start`.
        case weekly(start: Int, end: Int, zone: ZoneRules)
        /// Every day from `start` to `end`, in minutes since local midnight in `zone`; wraps past
        /// midnight when `end <= start`.
        case daily(start: Int, end: Int, zone: ZoneRules)
        /// Once, from `start` to `end`, in Unix seconds.
        case between(start: Int64, end: Int64)
    }

    /// The window's name, shown when it refuses a rollout.
    package var name: String
    /// When it applies.
    package var schedule: Schedule
    /// The environments it applies to; nil means every environment.
    package var environments: [String]?
    /// Why the window exists, shown with the refusal.
    package var reason: String?

    /// Creates a window.
    package init(name: String, schedule: Schedule, environments: [String]? = nil, reason: String? = nil) {
        self.name = name
        self.schedule = schedule
        self.environments = environments
        self.reason = reason
    }

    /// Whether the window covers an instant, given in Unix seconds.
    package func contains(unixTime: Int64) -> Bool {
        guard let o = occurrence(endingAfter: unixTime) else { return false }
        return o.start <= unixTime
    }

    /// The zone the window's times are in (UTC for an absolute range).
    package var zone: ZoneRules {
        switch schedule {
        case .weekly(_, _, let zone), .daily(_, _, let zone): zone
        case .between: .utc
        }
    }

    /// The first occurrence of the window that ends after `unixTime` (Unix seconds, `[start, end)`):
    /// the one in force at that instant, or else the next; nil when there is none (an absolute
    /// range that is over).
    package func occurrence(endingAfter unixTime: Int64) -> (start: Int64, end: Int64)? {
        let period: Int64, start: Int64, length: Int64, zone: ZoneRules
        switch schedule {
        case .between(let s, let e):
            return e > unixTime ? (s, e) : nil
        case .weekly(let s, let e, let z):
            period = 7 * 86_400
            start = Int64(s) * 60
            length = CivilTime.floorMod(Int64(e - s), 7 * 1_440) * 60
            zone = z
        case .daily(let s, let e, let z):
            period = 86_400
            start = Int64(s) * 60
            length = CivilTime.floorMod(Int64(e - s), 1_440) * 60
            zone = z
        }
        // Weeks start on Monday: 1970-01-05 (local day 4) was one.
        let base: Int64 = period == 86_400 ? 0 : 4 * 86_400
        let k = CivilTime.floorDiv(zone.local(unixTime) - base, period)
        // The occurrence that began in the period before may still run; a period holds one.
        for n in (k - 1)...(k + 2) {
            let localStart = base + n * period + start
            let from = zone.instant(local: localStart, .earlier)
            let to = zone.instant(local: localStart + length, .later)
            if to > unixTime && to > from { return (from, to) }
        }
        return nil
    }

    /// Whether the window applies to an environment.
    package func applies(toEnvironment environment: String) -> Bool {
        environments?.contains(environment) ?? true
    }
}

extension FreezeWindow {
    /// When the window applies, in words: `every week from Fri 16:00 to Mon 08:00 (Europe/Berlin)`,
    /// `every day from 22:00 to 06:00 (UTC)`, `once, from Thu 2026-12-24 00:00 UTC to Sun 2026-12-27 00:00 UTC`.
    package var scheduleText: String {
        func clock(_ minute: Int) -> String {
            let h = minute / 60, m = minute % 60
            return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
        }
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        switch schedule {
        case .weekly(let start, let end, let zone):
            return "every week from \(days[start / 1_440]) \(clock(start % 1_440)) to \(days[end / 1_440]) \(clock(end % 1_440)) (\(zone.name))"
        case .daily(let start, let end, let zone):
            return "every day from \(clock(start)) to \(clock(end)) (\(zone.name))"
        case .between(let start, let end):
            return "once, from \(ZoneRules.utc.localText(start)) to \(ZoneRules.utc.localText(end))"
        }
    }
}
