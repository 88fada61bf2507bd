import FlagpoleCore

/// A time when rollouts must not start unless forced ("never on Friday evening").
///
/// Written in the project config as a `from`/`to` pair whose form picks the kind:
/// `"fri 16:00"`/`"mon 08:00"` (weekly), `"22:00"`/`"06:00"` (daily), or RFC 3339 timestamps
/// (`"2026-12-20T00:00:00Z"`, one absolute range). Weekly and daily windows use `timezone`, a fixed
/// UTC offset (`UTC`, `+01:00`); the end is exclusive, and an end before the start wraps around.
package struct FreezeWindow: Sendable, Hashable {
    /// When the window is closed to rollouts.
    package enum Schedule: Sendable, Hashable {
        /// Every week from `start` to `end`, in minutes since Monday 00:00 local time
        /// (`utcOffset` seconds east of UTC); wraps past Sunday when `end <= start`.
        case weekly(start: Int, end: Int, utcOffset: Int)
        /// Every day from `start` to `end`, in minutes since local midnight; wraps past midnight
        /// when `end <= start`.
        case daily(start: Int, end: Int, utcOffset: Int)
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
        switch schedule {
        case .between(let start, let end):
            return unixTime >= start && unixTime < end
        case .weekly(let start, let end, let offset):
            let m = CivilTime.minuteOfWeek(unixTime: unixTime, utcOffset: offset)
            return start < end ? (m >= start && m < end) : (m >= start || m < end)
        case .daily(let start, let end, let offset):
            let m = CivilTime.minuteOfWeek(unixTime: unixTime, utcOffset: offset) % 1_440
            return start < end ? (m >= start && m < end) : (m >= start || m < end)
        }
    }

    /// Whether the window applies to an environment.
    package func applies(toEnvironment environment: String) -> Bool {
        environments?.contains(environment) ?? true
    }
}
