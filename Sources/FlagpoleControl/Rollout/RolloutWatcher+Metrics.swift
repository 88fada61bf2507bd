import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Prometheus
import Synchronization

extension RolloutWatcher {
    /// The watcher's series in a Prometheus registry, brought up to date from ``snapshot`` by
    /// ``update()`` (the daemon calls it before every `/metrics` answer):
    ///
    /// | series | kind | meaning |
    /// |---|---|---|
    /// | `flagpole_rollouts{environment,state}` | gauge | rollouts by state at the last tick |
    /// | `flagpole_rollout_decisions_total{environment,verdict}` | counter | decisions by verdict since start |
    /// | `flagpole_rollout_reverts_total{environment}` | counter | reverts since start |
    /// | `flagpole_rollout_last_decision_timestamp_seconds{environment}` | gauge | Unix time of the last decision (0: none yet) |
    /// | `flagpole_watcher_data_age_seconds{environment}` | gauge | seconds since the watcher last read Redis (-1: not yet) |
    /// | `flagpole_watcher_leader{environment}` | gauge | 1 while this watcher holds the lease |
    /// | `flagpole_watcher_tick_errors_total{environment}` | counter | ticks that failed |
    package final class Metrics: Sendable {
        private let watcher: RolloutWatcher
        private let rollouts: [(state: RolloutRecord.Status, gauge: Gauge)]
        private let decisions: [(verdict: RolloutVerdict, counter: Counter)]
        private let reverts: Counter
        private let lastDecision: Gauge
        private let dataAge: Gauge
        private let leader: Gauge
        private let tickErrors: Counter
        /// What the counters already hold, so that an update adds only what is new.
        private let exported = Mutex<(decisions: [RolloutVerdict: Int], reverts: Int, tickErrors: Int)>(([:], 0, 0))

        private static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: nil, subsystem: nil, metricName: name, unitName: "", helpText: help)
        }

        /// Registers the watcher's series in `registry`.
        package init(watcher: RolloutWatcher, registry: PrometheusCollectorRegistry) {
            self.watcher = watcher
            let env = [("environment", watcher.configuration.environment)]
            func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
                registry.makeGauge(descriptor: Self.name(name, help), labels: env + labels)
            }
            func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
                registry.makeCounter(descriptor: Self.name(name, help), labels: env + labels)
            }
            rollouts = RolloutRecord.Status.allCases.map {
                ($0, gauge("flagpole_rollouts", "Rollouts by state at the watcher's last tick.", [("state", $0.rawValue)]))
            }
            decisions = RolloutVerdict.allCases.map {
                (
                    $0,
                    counter("flagpole_rollout_decisions_total", "Decisions by verdict since the watcher started.", [("verdict", $0.rawValue)])
                )
            }
            reverts = counter("flagpole_rollout_reverts_total", "Rollouts the watcher reverted since it started.")
            lastDecision = gauge("flagpole_rollout_last_decision_timestamp_seconds", "Unix time of the watcher's last decision (0: none yet).")
            dataAge = gauge("flagpole_watcher_data_age_seconds", "Time since the watcher last read Redis successfully (-1: not yet).")
            leader = gauge("flagpole_watcher_leader", "1 while this watcher holds the environment's lease.")
            tickErrors = counter("flagpole_watcher_tick_errors_total", "Watcher ticks that failed.")
        }

        /// Sets the gauges from the watcher's counters and adds to the counters what happened
        /// since the last update.
        package func update() {
            let s = watcher.snapshot
            for (state, gauge) in rollouts { gauge.set(to: Double(s.rolloutsByState[state] ?? 0)) }
            lastDecision.set(to: Double(s.lastDecisionAt) / 1000)
            let now = watcher.clock.nowMilliseconds()
            dataAge.set(to: s.lastSuccessfulTickAt == 0 ? -1 : Double(now - s.lastSuccessfulTickAt) / 1000)
            leader.set(to: s.isLeader ? 1 : 0)
            exported.withLock { e in
                for (verdict, counter) in decisions {
                    let total = s.decisionsByVerdict[verdict] ?? 0
                    if total > e.decisions[verdict] ?? 0 { counter.increment(by: Int64(total - (e.decisions[verdict] ?? 0))) }
                    e.decisions[verdict] = total
                }
                if s.reverts > e.reverts { reverts.increment(by: Int64(s.reverts - e.reverts)) }
                e.reverts = s.reverts
                if s.tickErrors > e.tickErrors { tickErrors.increment(by: Int64(s.tickErrors - e.tickErrors)) }
                e.tickErrors = s.tickErrors
            }
        }
    }
}
