import FlagpoleCore
import Metrics

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
