import FlagpoleCore

/// How many outcomes each token may report: a token bucket per token (one shared bucket when
/// the daemon runs without tokens), refilled at ``perSecond`` up to ``burst``.
///
/// Pure: time comes in as an argument (seconds on any monotonic clock), so tests drive it
/// without waiting. ``DaemonServer`` keeps one behind a lock and answers 429 with `Retry-After`
/// when ``take(_:for:now:)`` refuses.
package struct OutcomeRateLimit: Sendable, Hashable {
    /// Outcomes a token may report per second, on average. Default: 10,000.
    package var perSecond: Int
    /// Outcomes a token may report at once (the bucket's size; also the most one request may
    /// record). Default: 2 × ``perSecond``.
    package var burst: Int

    /// A limit of `perSecond` outcomes a second, with a burst of `burst` (default: two seconds' worth).
    package init(perSecond: Int = 10_000, burst: Int? = nil) {
        self.perSecond = max(1, perSecond)
        self.burst = max(1, burst ?? self.perSecond.saturatingMultiplied(by: 2))
    }

    /// What ``take(_:for:now:)`` decided.
    package enum Decision: Sendable, Hashable {
        /// Within the limit: record them.
        case allowed
        /// Over it: answer 429 and ask the caller to wait this many whole seconds (at least 1).
        case retryAfter(seconds: Int)
        /// More than ``burst`` in one request: it can never pass; answer 400.
        case tooMany(limit: Int)
    }

    /// The buckets, per token index (nil: the daemon runs without tokens). Bounded by the number
    /// of configured tokens plus one.
    package struct Buckets: Sendable {
        private var levels: [Int?: (tokens: Double, at: Double)] = [:]
        package let limit: OutcomeRateLimit

        package init(limit: OutcomeRateLimit) {
            self.limit = limit
        }

        /// Takes `count` outcomes from `token`'s bucket at time `now` (seconds), or says how long
        /// to wait. A refused request takes nothing.
        package mutating func take(_ count: Int, for token: Int?, now: Double) -> Decision {
            guard count <= limit.burst else { return .tooMany(limit: limit.burst) }
            let rate = Double(limit.perSecond)
            let capacity = Double(limit.burst)
            var level = levels[token] ?? (capacity, now)
            // A clock that went backwards refills nothing.
            level.tokens = min(capacity, level.tokens + max(0, now - level.at) * rate)
            level.at = max(level.at, now)
            let needed = Double(count)
            guard level.tokens >= needed else {
                levels[token] = level
                let wait = (needed - level.tokens) / rate
                return .retryAfter(seconds: max(1, Int(wait.rounded(.up))))
            }
            level.tokens -= needed
            levels[token] = level
            return .allowed
        }
    }
}
