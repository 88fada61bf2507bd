import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore

extension RolloutRecord.MetricSettings {
    /// The settings as a guard policy's metric fields (what ``makeMetricSource(policy:environment:client:prometheusTimeout:)`` reads).
    public var policy: GuardPolicy {
        var p = GuardPolicy()
        p.metric = GuardPolicy.Metric(rawValue: source) ?? .builtin
        p.prometheusURL = prometheusURL
        p.prometheusQuery = prometheusQuery
        p.prometheusRequestsQuery = prometheusRequestsQuery
        return p
    }
}

extension RolloutWatcher {
    /// The metric sources a daemon uses: the built-in counters in `client`'s Redis, or the
    /// Prometheus server a rollout's settings name.
    public static func standardMetricSources(environment: String, client: RedisClient) -> MetricSourceFactory {
        { settings in try makeMetricSource(policy: settings.policy, environment: environment, client: client) }
    }
}
