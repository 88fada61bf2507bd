/// Why an evaluation produced its value (the OpenFeature reasons flagd uses).
public enum EvaluationReason: String, Sendable, Hashable, CaseIterable {
    /// No targeting: the default variant.
    case staticValue = "STATIC"
    /// Targeting chose a variant (fractional splits included; flagd never emits SPLIT).
    case targetingMatch = "TARGETING_MATCH"
    /// Targeting gave null, or there is no default variant: the default variant or the code default.
    case defaultValue = "DEFAULT"
    /// The flag is disabled: the caller's code default, no variant.
    case disabled = "DISABLED"
    /// Something went wrong; see the error code.
    case error = "ERROR"
    /// The value comes from data older than the configured freshness bound (client library).
    case stale = "STALE"
}

/// What went wrong in an evaluation (the OpenFeature error codes).
public enum EvaluationErrorCode: String, Sendable, Hashable, CaseIterable {
    case flagNotFound = "FLAG_NOT_FOUND"
    case typeMismatch = "TYPE_MISMATCH"
    case parseError = "PARSE_ERROR"
    case targetingKeyMissing = "TARGETING_KEY_MISSING"
    case invalidContext = "INVALID_CONTEXT"
    case general = "GENERAL"
}

/// The value type an accessor asks for.
public enum FlagValueType: String, Sendable, Hashable, CaseIterable {
    case boolean, string, integer, float, object
}

/// The bucketing algorithm of `fractional` (NOTES.md §4.1).
public enum FractionalAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// MurmurHash3 over `flagKey + targetingKey` (or the bucketing string): flagd Go today.
    case v2
    /// MurmurHash3 over deterministic CBOR of the bucketing value (or `[flagKey, targetingKey]`):
    /// the accepted design and `openfeature-flagd-core` 2.0.0. The default.
    case v3
}

/// The operator names of the JsonLogic dialect flagd accepts (schema `targeting.json`).
public enum JsonLogicOperators {
    /// Standard JsonLogic operators the flagd schema lists.
    public static let standard: Set<String> = [
        "var", "missing", "missing_some", "if",
        "==", "===", "!=", "!==", ">", ">=", "<", "<=",
        "!", "!!", "or", "and",
        "+", "-", "*", "/", "%", "max", "min",
        "map", "filter", "reduce", "all", "none", "some", "merge", "in", "cat", "substr",
    ]
    /// flagd's custom operators.
    public static let custom: Set<String> = ["fractional", "sem_ver", "starts_with", "ends_with"]
    /// Every operator a rule may use.
    public static let all: Set<String> = standard.union(custom)
}

/// The comparison operators `sem_ver` accepts.
public enum SemVerOperator: String, Sendable, Hashable, CaseIterable {
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    /// Same major and minor version.
    case tilde = "~"
    /// Same major version.
    case caret = "^"
}
