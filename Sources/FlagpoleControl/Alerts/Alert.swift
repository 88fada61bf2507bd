import FlagpoleCore

/// Something a person should hear about: a revert, a rollout that stopped because someone changed
/// the flag meanwhile, a rollout that completed.
public struct Alert: Sendable, Hashable {
    public enum Severity: String, Sendable, Hashable {
        case info, warning, critical
    }

    public var severity: Severity
    /// One line, e.g. `prod: new-checkout reverted`.
    public var title: String
    /// What happened and why, for people, a few lines at most.
    public var text: String
    public var environment: String
    public var flag: String?
    public var rolloutID: String?
    /// The evidence (counts, rates, statistic, threshold), sent as JSON to the generic webhook.
    public var details: JSONValue
    /// Unix seconds.
    public var at: Int64

    public init(
        severity: Severity, title: String, text: String, environment: String, flag: String? = nil,
        rolloutID: String? = nil, details: JSONValue = .object([:]), at: Int64
    ) {
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
public protocol AlertSink: Sendable {
    func send(_ alert: Alert)
}
