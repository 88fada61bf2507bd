import FlagpoleCore

/// Something a person should hear about: a revert, a rollout that stopped because someone changed
/// the flag meanwhile, a rollout that completed.
package struct Alert: Sendable, Hashable {
    package enum Severity: String, Sendable, Hashable {
        case info, warning, critical
    }

    package var severity: Severity
    /// One line, e.g. `prod: new-checkout reverted`.
    package var title: String
    /// What happened and why, for people, a few lines at most.
    package var text: String
    package var environment: String
    package var flag: String?
    package var rolloutID: String?
    /// The evidence (counts, rates, statistic, threshold), sent as JSON to the generic webhook.
    package var details: JSONValue
    /// Unix seconds.
    package var at: Int64
    /// The audit action that records the same event (`rollout-revert`, …), when there is one. A
    /// target that announces every change of the environment (its `notify`) gets the event from
    /// the audit stream instead, once (``AlertDispatcher/send(_:)`` skips it there). Default: nil.
    package var auditedAction: String?

    package init(
        severity: Severity, title: String, text: String, environment: String, flag: String? = nil,
        rolloutID: String? = nil, details: JSONValue = .object([:]), at: Int64, auditedAction: String? = nil
    ) {
        self.auditedAction = auditedAction
        self.severity = severity
        self.title = title
        self.text = text
        self.environment = environment
        self.flag = flag
        self.rolloutID = rolloutID
        self.details = details
        self.at = at
    }
}

/// Takes alerts without ever blocking the caller (the watcher's control loop): an implementation
/// queues them and sends them elsewhere, retrying with backoff.
package protocol AlertSink: Sendable {
    func send(_ alert: Alert)
}
