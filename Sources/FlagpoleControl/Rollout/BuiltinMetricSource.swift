import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import Foundation

/// Cohort counts from the client library's outcome counters in Redis: the minute hashes
/// `flagpole:{ENV}:outcomes:<unixMinute>:<flag>` (see ``StoreLayout/outcomes(flag:minute:)``).
///
/// One query reads every minute that overlaps `[from, to)` in one pipelined round trip of
/// `HGETALL`s, and adds up `ok`, `err` and the latency buckets (`h<k>`) of the variants the cohort
/// selects; the p95 comes from the summed buckets (``LatencyHistogram/quantile(_:)``).
///
/// **Partial minutes are pro-rated.** Counts are kept per minute, so a window that starts or ends
/// inside a minute takes that minute's counts times the share of the minute inside the window — the
/// share of the part of the minute that has *happened*: for the minute now running, the part up to
/// now, so a window ending now takes all of it. This assumes outcomes spread evenly over a minute;
/// the error is at most one minute's counts at each end of the window (the counts of a minute also
/// land up to one client flush interval, 1 s by default, late). The assumption fails across the
/// start of a rollout step, so the watcher starts its windows at the minute a step began in (see
/// ``RolloutWatcher``). Set ``Configuration/proRatePartialMinutes`` to false to count every
/// overlapping minute whole.
package struct BuiltinMetricSource: RolloutMetricSource {
    /// How the source reads the counters.
    package struct Configuration: Sendable {
        /// Whether a minute only partly inside the window counts by the share inside it (true), or
        /// whole (false). Default: true.
        package var proRatePartialMinutes = true
        /// The longest window read, in minutes; a longer one is an error (the counters are kept 6
        /// hours by default, see ``StoreLayout/defaultOutcomeRetention``). Default: 10,080 (7 days).
        package var maxMinutes = 10_080

        /// The defaults.
        package init() {}
    }

    package var name: String { "builtin" }

    /// The Redis connection (the reader ACL user is enough: `HGETALL` only).
    package let client: RedisClient
    /// How the counters are read.
    package let configuration: Configuration
    private let now: @Sendable () -> Int64

    /// A source reading through `client`.
    ///
    /// - Parameters:
    ///   - client: Redis; needs `HGETALL` on the outcome keys.
    ///   - configuration: see ``Configuration``.
    ///   - now: the current Unix second, for pro-rating the running minute. Default: the wall clock.
    package init(client: RedisClient, configuration: Configuration = Configuration(), now: @escaping @Sendable () -> Int64 = UnixClock.now) {
        self.client = client
        self.configuration = configuration
        self.now = now
    }

    /// The cohort's successes, failures and p95 latency over `[query.from, query.to)`.
    ///
    /// A window with no outcomes gives zero counts (which the watcher treats as "no data": hold).
    /// Throws ``MetricSourceError`` when Redis fails or a key holds something else.
    package func counts(_ query: CohortQuery) async throws -> CohortCounts {
        try await reading(query).total
    }

    /// The cohort's counts over `[query.from, query.to)` and per minute (each minute's counts times
    /// its share of the window, as for the total), read in the same round trip.
    package func reading(_ query: CohortQuery) async throws -> CohortReading {
        try await readings([query])[0]
    }

    /// Several cohorts of one flag (the watcher's treatment and control): every minute either
    /// window touches is read once, in one pipelined round trip, and parsed once.
    package func readings(_ queries: [CohortQuery]) async throws -> [CohortReading] {
        let live = queries.filter { $0.to > $0.from }
        guard let head = live.first else { return queries.map { _ in CohortReading(total: CohortCounts(), minutes: []) } }
        guard live.allSatisfy({ $0.environment == head.environment && $0.flag == head.flag }) else {
            var out: [CohortReading] = []
            for q in queries { out.append(try await readings([q])[0]) }
            return out
        }
        let layout: StoreLayout
        do {
            layout = try StoreLayout(environment: head.environment)
        } catch {
            throw MetricSourceError(code: .configuration, message: "builtin metric source: \(error.message)", underlying: error)
        }
        for q in live {
            let span = StoreLayout.unixMinute(q.to - 1) - StoreLayout.unixMinute(q.from) + 1
            guard span <= Int64(configuration.maxMinutes) else {
                throw MetricSourceError(
                    code: .configuration,
                    message: "builtin metric source: the window \(q.from)..<\(q.to) spans \(span) minutes, more than the "
                        + "\(configuration.maxMinutes) read at most; watch shorter steps (outcome counters are kept 6 hours by default)")
            }
        }
        let minutesToRead = Set(live.flatMap { StoreLayout.unixMinute($0.from)...StoreLayout.unixMinute($0.to - 1) }).sorted()
        let keys = minutesToRead.map { layout.outcomes(flag: head.flag, minute: $0) }
        let replies: [RedisReply]
        do {
            replies = try await client.pipeline(keys.map { ["HGETALL", RedisArgument($0)] })
        } catch {
            throw MetricSourceError(
                code: .redis,
                message: "builtin metric source: reading \(keys.count) outcome minute(s) of flag \"\(head.flag)\" in \(head.environment) "
                    + "(\(keys[0])…) failed: \(error)",
                underlying: error)
        }
        // Each minute's counts by variant (nil: the code default), parsed once.
        struct Parsed {
            var ok = 0.0, err = 0.0
            var buckets: [Int: Double] = [:]
        }
        var parsed: [Int64: [String?: Parsed]] = [:]
        for (i, reply) in replies.enumerated() {
            if let message = reply.errorMessage {
                throw MetricSourceError(
                    code: .redis,
                    message: "builtin metric source: \(keys[i]) is not an outcome hash (\(message)); it is not Flagpole's or was written by hand")
            }
            guard let fields = reply.dictionary, !fields.isEmpty else { continue }
            var byVariant: [String?: Parsed] = [:]
            for (field, value) in fields {
                guard let n = value.integer else { continue }
                if let (variant, metric) = StoreLayout.parseOutcomeField(field) {
                    switch metric {
                    case .ok: byVariant[variant, default: Parsed()].ok += Double(n)
                    case .err: byVariant[variant, default: Parsed()].err += Double(n)
                    case .micros, .timed: break
                    }
                } else if let (variant, bucket) = StoreLayout.parseLatencyField(field) {
                    byVariant[variant, default: Parsed()].buckets[bucket, default: 0] += Double(n)
                }
            }
            parsed[minutesToRead[i]] = byVariant
        }
        let now = self.now()
        return queries.map { query in
            guard query.to > query.from else { return CohortReading(total: CohortCounts(), minutes: []) }
            let first = StoreLayout.unixMinute(query.from), last = StoreLayout.unixMinute(query.to - 1)
            var total = CohortCounts()
            var buckets = [Double](repeating: 0, count: LatencyHistogram.bucketCount)
            var minutes: [CohortReading.Minute] = []
            for m in first...last {
                var counts = CohortCounts()
                let weight = self.weight(minute: m, from: query.from, to: query.to, now: now)
                if weight > 0, let byVariant = parsed[m] {
                    for (variant, p) in byVariant where query.cohort.contains(variant: variant) {
                        counts.successes += p.ok * weight
                        counts.failures += p.err * weight
                        for (bucket, n) in p.buckets where bucket >= 0 && bucket < buckets.count { buckets[bucket] += n * weight }
                    }
                }
                total.add(counts)
                minutes.append(CohortReading.Minute(minute: m, counts: counts))
            }
            total.p95LatencyMicros = LatencyHistogram.quantile(0.95, of: buckets)
            return CohortReading(total: total, minutes: minutes)
        }
    }

    /// The share of minute `m`'s counts that falls in `[from, to)`: the overlap over the part of the
    /// minute that has happened by `now` (1 for whole minutes in the window, 0 for future ones).
    func weight(minute m: Int64, from: Int64, to: Int64, now: Int64) -> Double {
        guard configuration.proRatePartialMinutes else { return 1 }
        let start = m * 60
        let happenedEnd = min(start + 60, max(now, start))
        guard happenedEnd > start else {
            // The minute has not begun by the clock (clocks differ): take what is there whole.
            return 1
        }
        let overlap = min(to, happenedEnd) - max(from, start)
        guard overlap > 0 else { return 0 }
        return min(1, Double(overlap) / Double(happenedEnd - start))
    }
}

/// The wall clock in Unix seconds, for the metric sources and alerts.
package enum UnixClock {
    /// Now, in whole Unix seconds.
    @Sendable package static func now() -> Int64 {
        Int64(Date().timeIntervalSince1970.rounded(.down))
    }
}
