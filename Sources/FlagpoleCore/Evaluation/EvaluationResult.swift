/// The outcome of a flag evaluation, as OpenFeature's evaluation details: the value and why.
///
/// Typed accessors (``CompiledFlagSet/bool(_:default:context:)`` and the others) return the
/// flag's value or the caller's default. Untyped evaluation returns an ``EvaluationResult``.
public struct EvaluationDetails<Value: Sendable>: Sendable {
    /// The flag that was evaluated.
    public var flagKey: String
    /// The flag's value, or the caller's default.
    public var value: Value
    /// The variant that was chosen; nil when the value is the caller's default.
    public var variant: String?
    /// Why this value: STATIC, TARGETING_MATCH, DEFAULT, DISABLED or ERROR.
    public var reason: EvaluationReason
    /// What went wrong when ``reason`` is ERROR.
    public var errorCode: EvaluationErrorCode?
    /// A human-readable explanation of the error.
    public var errorMessage: String?
    /// The flag-set metadata with the flag's own metadata merged over it (returned on errors too,
    /// on a best-effort basis).
    public var metadata: [String: JSONValue]

    /// Details from their parts.
    public init(
        flagKey: String,
        value: Value,
        variant: String? = nil,
        reason: EvaluationReason,
        errorCode: EvaluationErrorCode? = nil,
        errorMessage: String? = nil,
        metadata: [String: JSONValue] = [:]
    ) {
        self.flagKey = flagKey
        self.value = value
        self.variant = variant
        self.reason = reason
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.metadata = metadata
    }
}

extension EvaluationDetails: Equatable where Value: Equatable {}
extension EvaluationDetails: Hashable where Value: Hashable {}

/// The outcome of evaluating a flag, untyped: what OFREP and tools need.
///
/// `value == nil` means "use the caller's code default": the flag is disabled, has no default
/// variant to fall back on, or the evaluation failed (see ``EvaluationDetails/errorCode``).
public typealias EvaluationResult = EvaluationDetails<JSONValue?>

extension EvaluationDetails where Value == JSONValue? {
    /// An ERROR result: the code default, no variant.
    static func error(
        _ code: EvaluationErrorCode, _ message: String, flagKey: String, metadata: [String: JSONValue]
    ) -> EvaluationResult {
        EvaluationResult(
            flagKey: flagKey, value: nil, reason: .error, errorCode: code, errorMessage: message, metadata: metadata)
    }
}
