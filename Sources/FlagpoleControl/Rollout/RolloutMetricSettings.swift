import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore

extension RolloutRecord.MetricSettings {
    /// The settings as a guard policy's metric fields (what ``makeMetricSource(policy:environment:client:prometheusTimeout:)`` reads).
    package var policy: GuardPolicy {
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
    /// Prometheus server a rollout's settings name. `now` is the current Unix second the counters'
    /// running minute is pro-rated by; default: the wall clock (a watcher on a ``ManualRolloutClock``
    /// passes that clock's, so that the counters and the watcher agree on the time).
    package static func standardMetricSources(
        environment: String, client: RedisClient, now: @escaping @Sendable () -> Int64 = UnixClock.now
    ) -> MetricSourceFactory {
        { settings in try makeMetricSource(policy: settings.policy, environment: environment, client: client, now: now) }
    }
}
