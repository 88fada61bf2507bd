import FlagpoleCore

/// What application code needs to read flags and report how the work went: the seam between your
/// code and ``FlagpoleClient``.
///
/// Write code against `some FlagEvaluator` (or `any FlagEvaluator`) and give it the
/// ``FlagpoleClient`` in production and `InMemoryFlags` (the `FlagpoleTestKit` product) in tests:
/// the same engine evaluates both, so a test exercises the targeting your files define.
public protocol FlagEvaluator: Sendable {
    func bool(_ key: String, default defaultValue: Bool, context: EvaluationContext) -> Bool
    func boolDetails(_ key: String, default defaultValue: Bool, context: EvaluationContext) -> EvaluationDetails<Bool>
    func string(_ key: String, default defaultValue: String, context: EvaluationContext) -> String
    func stringDetails(_ key: String, default defaultValue: String, context: EvaluationContext) -> EvaluationDetails<String>
    func integer(_ key: String, default defaultValue: Int, context: EvaluationContext) -> Int
    func integerDetails(_ key: String, default defaultValue: Int, context: EvaluationContext) -> EvaluationDetails<Int>
    func double(_ key: String, default defaultValue: Double, context: EvaluationContext) -> Double
    func doubleDetails(_ key: String, default defaultValue: Double, context: EvaluationContext) -> EvaluationDetails<Double>
    func object(_ key: String, default defaultValue: JSONValue, context: EvaluationContext) -> JSONValue
    func objectDetails(_ key: String, default defaultValue: JSONValue, context: EvaluationContext) -> EvaluationDetails<JSONValue>
    /// Records how work done under a flag's evaluation went (see
    /// ``FlagpoleClient/recordOutcome(flag:variant:success:duration:)``).
    func recordOutcome(flag: String, variant: String?, success: Bool, duration: Duration?)
    /// A handle on a boolean flag: `key` resolved once, then evaluated with the handle's
    /// `value(for:)` and `details(for:)` (see ``FlagHandle``). The default implementation
    /// evaluates through this evaluator's key-based accessors; ``FlagpoleClient`` reads the flag
    /// by position.
    func flag(_ key: String, default defaultValue: Bool) -> FlagHandle<Bool>
    /// A handle on a string flag.
    func flag(_ key: String, default defaultValue: String) -> FlagHandle<String>
    /// A handle on an integer flag.
    func flag(_ key: String, default defaultValue: Int) -> FlagHandle<Int>
    /// A handle on a number flag.
    func flag(_ key: String, default defaultValue: Double) -> FlagHandle<Double>
    /// A handle on an object flag.
    func flag(_ key: String, default defaultValue: JSONValue) -> FlagHandle<JSONValue>
}

extension FlagEvaluator {
    @inlinable public func bool(_ key: String, default defaultValue: Bool) -> Bool { bool(key, default: defaultValue, context: .empty) }
    @inlinable public func string(_ key: String, default defaultValue: String) -> String { string(key, default: defaultValue, context: .empty) }
    @inlinable public func integer(_ key: String, default defaultValue: Int) -> Int { integer(key, default: defaultValue, context: .empty) }
    @inlinable public func double(_ key: String, default defaultValue: Double) -> Double { double(key, default: defaultValue, context: .empty) }

    /// Records how work done under an evaluation went: its flag key and variant.
    public func recordOutcome<Value>(of details: EvaluationDetails<Value>, success: Bool, duration: Duration? = nil) {
        recordOutcome(flag: details.flagKey, variant: details.variant, success: success, duration: duration)
    }
}

extension FlagEvaluator {
    public func flag(_ key: String, default defaultValue: Bool) -> FlagHandle<Bool> {
        FlagHandle(key: key, defaultValue: defaultValue, evaluator: self)
    }
    public func flag(_ key: String, default defaultValue: String) -> FlagHandle<String> {
        FlagHandle(key: key, defaultValue: defaultValue, evaluator: self)
    }
    public func flag(_ key: String, default defaultValue: Int) -> FlagHandle<Int> {
        FlagHandle(key: key, defaultValue: defaultValue, evaluator: self)
    }
    public func flag(_ key: String, default defaultValue: Double) -> FlagHandle<Double> {
        FlagHandle(key: key, defaultValue: defaultValue, evaluator: self)
    }
    public func flag(_ key: String, default defaultValue: JSONValue) -> FlagHandle<JSONValue> {
        FlagHandle(key: key, defaultValue: defaultValue, evaluator: self)
    }
}

extension FlagpoleClient: FlagEvaluator {}

extension FlagpoleClient {
    /// A client that serves a flag document from memory and never connects to Redis: what
    /// `InMemoryFlags` (FlagpoleTestKit) evaluates with, so that tests run the production engine.
    package static func inMemory(environment: String, document: JSONValue, algorithm: FractionalAlgorithm) -> FlagpoleClient {
        var configuration = FlagpoleClient.Configuration(
            redis: RedisConfiguration(endpoint: .unix(path: "/nonexistent/flagpole-in-memory.sock")), environment: environment,
            application: "in-memory")
        configuration.snapshotPath = nil
        configuration.outcomes.isEnabled = false
        configuration.heartbeat.isEnabled = false
        let client = FlagpoleClient(configuration: configuration)
        client.serve(document: document, algorithm: algorithm)
        client.readiness.open()
        return client
    }

    /// Compiles `document` (a flag set: `flags`, `$evaluators`, `metadata`) and serves it, as the
    /// flag files are served; returns the flags that could not be used, each with why.
    @discardableResult
    package func serve(document: JSONValue, algorithm: FractionalAlgorithm) -> [(key: String, reason: String)] {
        let (snapshot, malformed) = SnapshotBuilder.document(document, algorithm: algorithm, source: .files, revision: nil, time: WallClock.now())
        install(snapshot)
        return malformed
    }
}
