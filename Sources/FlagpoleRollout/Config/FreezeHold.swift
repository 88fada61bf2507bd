import FlagpoleCore

/// Why an environment is frozen at an instant, and until when: what the watcher says while it
/// holds a rollout in a freeze window ("frozen until Mon 2026-03-30 08:00 CEST (weekend)").
package struct FreezeHold: Sendable, Hashable, CustomStringConvertible {
    /// The window whose end ends the freeze (when windows overlap or follow each other, the last).
    package var window: String
    /// Every window in force at the instant asked about, in config order.
    package var windows: [String]
    /// When rollouts may advance again: the first instant no window covers (Unix seconds).
    package var until: Int64
    /// ``until`` as local time in the zone of ``window``, e.g. `Mon 2026-03-30 08:00 CEST`.
    package var untilText: String
    /// The reason the window gives, if any.
    package var reason: String?

    /// Creates a hold.
    package init(window: String, windows: [String], until: Int64, untilText: String, reason: String? = nil) {
        self.window = window
        self.windows = windows
        self.until = until
        self.untilText = untilText
        self.reason = reason
    }

    /// `frozen until Mon 2026-03-30 08:00 CEST (weekend: nobody watches)`.
    package var description: String {
        "frozen until \(untilText) (\(window)\(reason.map { ": \($0)" } ?? ""))"
    }

    /// How many windows that follow each other are chained at most before the search gives up
    /// (windows that cover all time would chain forever).
    static let maxChain = 64

    /// The freeze in force for an environment at a Unix time, from the windows that apply to it;
    /// nil when none covers the instant. Windows that overlap or touch are chained: the freeze
    /// lasts until no window covers the time.
    package static func at(_ unixTime: Int64, environment: String, windows: [FreezeWindow]) -> FreezeHold? {
        let applicable = windows.filter { $0.applies(toEnvironment: environment) }
        let active = applicable.filter { $0.contains(unixTime: unixTime) }
        guard !active.isEmpty else { return nil }
        var until = unixTime
        var last = active[0]
        for _ in 0..<maxChain {
            var next: (window: FreezeWindow, end: Int64)?
            for w in applicable {
                guard let o = w.occurrence(endingAfter: until), o.start <= until else { continue }
                if next == nil || o.end > next!.end { next = (w, o.end) }
            }
            guard let next else { break }
            until = next.end
            last = next.window
        }
        return FreezeHold(
            window: last.name, windows: active.map(\.name), until: until, untilText: last.zone.localText(until), reason: last.reason)
    }
}

extension ProjectConfig {
    /// The freeze in force for an environment at a Unix time (nil when none): see ``FreezeHold/at(_:environment:windows:)``.
    package func freeze(environment: String, unixTime: Int64) -> FreezeHold? {
        FreezeHold.at(unixTime, environment: environment, windows: freezeWindows)
    }
}
