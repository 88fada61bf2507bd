/// The outcome of evaluating a flag, untyped: what OFREP and tools need.
///
/// `value == nil` means "use the caller's code default": the flag is disabled, has no default
/// variant to fall back on, or the evaluation failed (see ``errorCode``).
public struct EvaluationResult: Sendable, Hashable {
    /// The flag that was evaluated.
    public var flagKey: String
    /// The resolved value, or nil for the caller's code default.
    public var value: JSONValue?
    /// The variant that was chosen; nil when the value is the code default.
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

    /// A result from its parts.
    public init(
        flagKey: String,
        value: JSONValue?,
        variant: String?,
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

    /// An ERROR result: the code default, no variant.
    static func error(
        _ code: EvaluationErrorCode, _ message: String, flagKey: String, metadata: [String: JSONValue]
    ) -> EvaluationResult {
        EvaluationResult(
            flagKey: flagKey, value: nil, variant: nil, reason: .error, errorCode: code, errorMessage: message,
            metadata: metadata)
    }
}

/// The outcome of a typed flag evaluation, as OpenFeature's evaluation details: the value (the
/// caller's default whenever the flag gave none, or the wrong type) and why.
public struct EvaluationDetails<Value: Sendable>: Sendable {
    /// The flag that was evaluated.
    public var flagKey: String
    /// The flag's value, or the caller's default.
    public var value: Value
    /// The variant that was chosen; nil when the value is the caller's default.
    public var variant: String?
    /// Why this value.
    public var reason: EvaluationReason
    /// What went wrong when ``reason`` is ERROR.
    public var errorCode: EvaluationErrorCode?
    /// A human-readable explanation of the error.
    public var errorMessage: String?
    /// Flag-set metadata with the flag's metadata merged over it.
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
