import FlagpoleCore
import FlagpoleStore
import Metrics
import Synchronization

/// The client's swift-metrics instruments. Every metric has the dimension `environment`.
///
/// | label | kind | dimensions | meaning |
/// |---|---|---|---|
/// | `flagpole_evaluations_total` | counter | `reason` | evaluations, by OpenFeature reason (STATIC, TARGETING_MATCH, DEFAULT, DISABLED, ERROR, STALE) |
/// | `flagpole_cache_updates_total` | counter | `kind` | snapshot swaps: `event` (from the event itself), `fetch` (event plus one `HMGET`), `full` (everything read again) |
/// | `flagpole_reconnects_total` | counter | | subscriptions re-established after a lost connection |
/// | `flagpole_data_age_seconds` | gauge | | how old the served data is (0 while in sync) |
/// | `flagpole_applied_revision` | gauge | | the revision applied |
/// | `flagpole_malformed_flags` | gauge | | flags in Redis that could not be used in the last update |
/// | `flagpole_outcomes_dropped_total` | counter | | outcomes dropped to keep memory bounded, or refused by Redis |
/// | `flagpole_outcomes_unknown_total` | counter | | outcomes of flags the client does not serve (or of variants they lack): never written |
/// | `flagpole_in_sync` | gauge | | 1 while the client follows Redis (subscribed and caught up) |
/// | `flagpole_stale` | gauge | | 1 while evaluations report STALE (out of sync past the freshness bound) |
/// | `flagpole_source` | gauge | `source` | 1 for where the served flags come from (`redis`, `disk`, `files`, `defaults`), 0 for the others |
/// | `flagpole_outcomes_total` | counter | `flag`, `variant`, `result` | outcomes recorded, counted when flushed: `result` is `success` or `failure`, `variant` empty for the code default |
/// | `flagpole_outcome_duration_seconds_bucket` | counter | `flag`, `variant`, `le` | timed outcomes at most `le` seconds long (cumulative, the built-in latency buckets' bounds) |
/// | `flagpole_outcome_duration_seconds_sum` | counter | `flag`, `variant` | their summed duration, in seconds |
/// | `flagpole_outcome_duration_seconds_count` | counter | `flag`, `variant` | how many outcomes carried a duration |
///
/// The outcome series are counted per flag and variant at each flush (``OutcomeMetrics``), never
/// per recorded outcome, and only for flags the client serves and their variants.
struct ClientMetrics: Sendable {
    let evaluations: [Counter]
    let updatesFromEvent: Counter
    let updatesWithFetch: Counter
    let updatesFull: Counter
    let reconnects: Counter
    let dataAge: Gauge
    let revision: Gauge
    let malformed: Gauge
    let outcomesDropped: Counter
    let outcomesUnknown: Counter
    let inSync: Gauge
    let stale: Gauge
    /// One gauge per ``FlagpoleClient/Source``, in `allCases` order.
    let sources: [(source: FlagpoleClient.Source, gauge: Gauge)]
    let outcomes: OutcomeMetrics

    init(environment: String, factory: (any MetricsFactory)?) {
        let factory = factory ?? MetricsSystem.factory
        let env = ("environment", environment)
        evaluations = EvaluationReason.allCases.map {
            Counter(label: "flagpole_evaluations_total", dimensions: [env, ("reason", $0.rawValue)], factory: factory)
        }
        updatesFromEvent = Counter(label: "flagpole_cache_updates_total", dimensions: [env, ("kind", "event")], factory: factory)
        updatesWithFetch = Counter(label: "flagpole_cache_updates_total", dimensions: [env, ("kind", "fetch")], factory: factory)
        updatesFull = Counter(label: "flagpole_cache_updates_total", dimensions: [env, ("kind", "full")], factory: factory)
        reconnects = Counter(label: "flagpole_reconnects_total", dimensions: [env], factory: factory)
        dataAge = Gauge(label: "flagpole_data_age_seconds", dimensions: [env], factory: factory)
        revision = Gauge(label: "flagpole_applied_revision", dimensions: [env], factory: factory)
        malformed = Gauge(label: "flagpole_malformed_flags", dimensions: [env], factory: factory)
        outcomesDropped = Counter(label: "flagpole_outcomes_dropped_total", dimensions: [env], factory: factory)
        outcomesUnknown = Counter(label: "flagpole_outcomes_unknown_total", dimensions: [env], factory: factory)
        inSync = Gauge(label: "flagpole_in_sync", dimensions: [env], factory: factory)
        stale = Gauge(label: "flagpole_stale", dimensions: [env], factory: factory)
        sources = FlagpoleClient.Source.allCases.map {
            ($0, Gauge(label: "flagpole_source", dimensions: [env, ("source", $0.rawValue)], factory: factory))
        }
        outcomes = OutcomeMetrics(environment: environment, factory: factory)
    }

    /// Sets the freshness gauges: data age, in sync, STALE, and the source.
    func record(freshness f: FlagpoleClient.Freshness) {
        dataAge.record(f.age.map(\.seconds) ?? 0)
        inSync.record(f.isInSync ? 1 : 0)
        stale.record(f.isStale ? 1 : 0)
        for (source, gauge) in sources { gauge.record(source == f.source ? 1 : 0) }
    }

    /// The index of a reason in ``evaluations`` and in the striped counters.
    @inline(__always)
    static func index(_ reason: EvaluationReason) -> Int {
        switch reason {
        case .staticValue: 0
        case .targetingMatch: 1
        case .defaultValue: 2
        case .disabled: 3
        case .error: 4
        case .stale: 5
        }
    }
}

/// The per-flag, per-variant outcome series: `flagpole_outcomes_total{flag,variant,result}` and the
/// latency histogram `flagpole_outcome_duration_seconds{flag,variant}`, made on first use.
///
/// Counted by the reporter at each flush, once per drained flag/variant entry (never on the
/// recording path). Cardinality is bounded by what the client serves: unknown flags and variants
/// never get here (the reporter drops them first), the first outcome of a flag creates both
/// results' counters for every variant the flag has (at zero, so that a query's `increase()`
/// sees a variant's first outcomes), and a flag or variant that leaves the served flags has its
/// series removed at the next flush. The histogram's buckets are the built-in latency buckets
/// (``LatencyHistogram``, 39 bounds from 128 µs to 67.1 s, plus `+Inf`), counted from the same
/// bucket counts the client writes to Redis, so `histogram_quantile` over them gives what the
/// built-in metric source computes. It is exposed as counters named like a Prometheus histogram's
/// series (`_bucket` with `le`, `_sum`, `_count`), since swift-metrics has no way to add a
/// bucket's count in one step.
final class OutcomeMetrics: Sendable {
    private struct Pair: Hashable {
        var flag: String
        var variant: String?
    }

    private struct Instruments {
        var success: Counter
        var failure: Counter
        /// Made with the pair's first timed outcome.
        var latency: Latency?
    }

    private struct Latency {
        /// One per ``LatencyHistogram`` bucket: `le` = the bucket's upper bound (the last: `+Inf`).
        var buckets: [Counter]
        var sum: FloatingPointCounter
        var count: Counter
    }

    private struct State {
        var pairs: [Pair: Instruments] = [:]
        /// The snapshot generation the pairs were last checked against.
        var checkedRevision: Int64?
        var checkedSource: FlagpoleClient.Source?
    }

    /// The `le` labels of the latency buckets, in seconds.
    static let bucketBounds: [String] = (0..<LatencyHistogram.bucketCount).map { k in
        let upper = LatencyHistogram.upperBound(k)
        return upper.isFinite ? "\(upper / 1_000_000)" : "+Inf"
    }

    private let environment: String
    private let factory: any MetricsFactory
    private let state = Mutex(State())

    init(environment: String, factory: any MetricsFactory) {
        self.environment = environment
        self.factory = factory
    }

    /// Counts one flushed entry (a flag and variant the snapshot serves).
    func count(flag: String, variant: String?, totals: OutcomeTotals, snapshot: FlagSnapshot) {
        let instruments = state.withLock { s -> Instruments in
            let pair = Pair(flag: flag, variant: variant)
            if s.pairs[pair] == nil {
                // The flag's first outcome: every variant it has starts at zero, both results.
                if !s.pairs.keys.contains(where: { $0.flag == flag }) {
                    for v in snapshot.variantNames(of: flag) where s.pairs[Pair(flag: flag, variant: v)] == nil {
                        s.pairs[Pair(flag: flag, variant: v)] = makeInstruments(flag: flag, variant: v)
                    }
                }
                if s.pairs[pair] == nil { s.pairs[pair] = makeInstruments(flag: flag, variant: variant) }
            }
            if !totals.latency.isEmpty, s.pairs[pair]!.latency == nil {
                s.pairs[pair]!.latency = makeLatency(flag: flag, variant: variant)
            }
            return s.pairs[pair]!
        }
        let c = totals.counts
        if c.succeeded > 0 { instruments.success.increment(by: c.succeeded) }
        if c.failed > 0 { instruments.failure.increment(by: c.failed) }
        if let latency = instruments.latency, !totals.latency.isEmpty {
            var cumulative: Int64 = 0
            for (k, counter) in latency.buckets.enumerated() {
                cumulative.saturatingAdd(totals.latency[k])
                if cumulative > 0 { counter.increment(by: cumulative) }
            }
            latency.sum.increment(by: Double(c.totalMicroseconds) / 1_000_000)
            latency.count.increment(by: c.timed)
        }
    }

    /// Removes the series of flags and variants the snapshot no longer serves (checked once per
    /// snapshot revision and source).
    func prune(keeping snapshot: FlagSnapshot) {
        let gone = state.withLock { s -> [Instruments] in
            guard s.checkedRevision != snapshot.revision || s.checkedSource != snapshot.source else { return [] }
            s.checkedRevision = snapshot.revision
            s.checkedSource = snapshot.source
            var gone: [Instruments] = []
            for (pair, instruments) in s.pairs where snapshot.outcomeProblem(flag: pair.flag, variant: pair.variant) != nil {
                gone.append(instruments)
                s.pairs[pair] = nil
            }
            return gone
        }
        for instruments in gone {
            instruments.success.destroy()
            instruments.failure.destroy()
            if let latency = instruments.latency {
                for counter in latency.buckets { counter.destroy() }
                latency.sum.destroy()
                latency.count.destroy()
            }
        }
    }

    private func dimensions(_ flag: String, _ variant: String?) -> [(String, String)] {
        [("environment", environment), ("flag", flag), ("variant", variant ?? "")]
    }

    private func makeInstruments(flag: String, variant: String?) -> Instruments {
        let d = dimensions(flag, variant)
        return Instruments(
            success: Counter(label: "flagpole_outcomes_total", dimensions: d + [("result", "success")], factory: factory),
            failure: Counter(label: "flagpole_outcomes_total", dimensions: d + [("result", "failure")], factory: factory))
    }

    private func makeLatency(flag: String, variant: String?) -> Latency {
        let d = dimensions(flag, variant)
        return Latency(
            buckets: Self.bucketBounds.map {
                Counter(label: "flagpole_outcome_duration_seconds_bucket", dimensions: d + [("le", $0)], factory: factory)
            },
            sum: FloatingPointCounter(label: "flagpole_outcome_duration_seconds_sum", dimensions: d, factory: factory),
            count: Counter(label: "flagpole_outcome_duration_seconds_count", dimensions: d, factory: factory))
    }
}
