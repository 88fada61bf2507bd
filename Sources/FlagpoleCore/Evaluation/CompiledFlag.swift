/// One flag of a flagd flag set, compiled for evaluation: structure checked, `$ref`s substituted,
/// targeting compiled, and every possible result built in advance, so evaluating a flag without
/// targeting returns a prepared value and allocates nothing.
///
/// A definition that cannot be used (not an object, no variants, an invalid `state`, a broken
/// rule) still compiles: it evaluates to ERROR / PARSE_ERROR with the caller's default.
///
/// Immutable; a reference type so that flag sets share compiled flags instead of copying them.
public final class CompiledFlag: Sendable {
    /// The flag key.
    public let key: String
    /// The flag-set metadata with this flag's metadata merged over it.
    public let metadata: [String: JSONValue]
    /// The result when it never changes (disabled, no targeting, unusable definition); else nil.
    @usableFromInline let fixed: PreparedResult?
    /// The targeting when there is some to evaluate.
    let targeting: Targeting?

    /// What compiling a definition gives.
    private enum Body {
        /// The same result every time: disabled, no targeting, or an unusable definition.
        case fixed(PreparedResult)
        case targeted(Targeting)
    }

    /// A result built once and handed out by reference, so returning it costs one retain.
    @usableFromInline
    final class PreparedResult: Sendable {
        @usableFromInline let result: EvaluationResult

        init(_ result: EvaluationResult) {
            self.result = result
        }
    }

    final class Targeting: Sendable {
        let rule: RuleProgram
        /// Variant name → index into `matches`.
        let variantIndex: [String: Int32]
        /// The TARGETING_MATCH result for each variant (an error for a variant whose value is null).
        let matches: [PreparedResult]
        /// What a null targeting result gives: the default variant, or the code default.
        let fallback: PreparedResult

        init(rule: RuleProgram, variantIndex: [String: Int32], matches: [PreparedResult], fallback: PreparedResult) {
            self.rule = rule
            self.variantIndex = variantIndex
            self.matches = matches
            self.fallback = fallback
        }
    }

    /// Compiles one flag definition.
    ///
    /// - Parameters:
    ///   - key: The flag key.
    ///   - definition: The flag's JSON (`state`, `variants`, `defaultVariant`, `targeting`, `metadata`).
    ///   - evaluators: The flag set's `$evaluators`, for `$ref` substitution.
    ///   - flagSetMetadata: The flag set's `metadata`, merged under the flag's own.
    ///   - fractionalAlgorithm: How `fractional` hashes (default v3).
    public init(
        key: String,
        definition: JSONValue,
        evaluators: [String: JSONValue] = [:],
        flagSetMetadata: [String: JSONValue] = [:],
        fractionalAlgorithm: FractionalAlgorithm = .v3
    ) {
        self.key = key
        var merged = flagSetMetadata.filter { !$0.value.isNull }
        if case .object(let own)? = definition["metadata"] {
            for (k, v) in own where !v.isNull { merged[k] = v }
        }
        metadata = merged
        switch CompiledFlag.compileBody(
            key: key, definition: definition, evaluators: evaluators, metadata: merged, algorithm: fractionalAlgorithm)
        {
        case .fixed(let result):
            fixed = result
            targeting = nil
        case .targeted(let t):
            fixed = nil
            targeting = t
        }
    }

    private static func compileBody(
        key: String, definition: JSONValue, evaluators: [String: JSONValue], metadata: [String: JSONValue],
        algorithm: FractionalAlgorithm
    ) -> Body {
        func parseError(_ message: String) -> Body {
            .fixed(PreparedResult(.error(.parseError, message, flagKey: key, metadata: metadata)))
        }
        guard case .object(let flag) = definition else { return parseError("flag definition is not an object") }
        let enabled: Bool
        switch flag["state"] {
        case .string("ENABLED")?: enabled = true
        case .string("DISABLED")?: enabled = false
        default: return parseError("flag state must be \"ENABLED\" or \"DISABLED\"")
        }
        guard case .object(let variants)? = flag["variants"], !variants.isEmpty else {
            return parseError("flag variants must be a non-empty object")
        }
        let defaultVariant: String?
        switch flag["defaultVariant"] {
        case nil, .null?, .string("")?: defaultVariant = nil
        case .string(let name)?: defaultVariant = name
        case .bool(let b)?: defaultVariant = b ? "true" : "false"
        default: return parseError("defaultVariant must be a variant name or null")
        }
        guard enabled else {
            return .fixed(
                PreparedResult(EvaluationResult(flagKey: key, value: nil, variant: nil, reason: .disabled, metadata: metadata)))
        }

        func resolved(_ name: String, _ reason: EvaluationReason) -> EvaluationResult {
            guard let value = variants[name], !value.isNull else {
                return .error(.general, "variant \"\(name)\" is not defined", flagKey: key, metadata: metadata)
            }
            return EvaluationResult(flagKey: key, value: value, variant: name, reason: reason, metadata: metadata)
        }
        func fallback(_ reason: EvaluationReason) -> EvaluationResult {
            guard let defaultVariant else {
                return EvaluationResult(flagKey: key, value: nil, variant: nil, reason: .defaultValue, metadata: metadata)
            }
            return resolved(defaultVariant, reason)
        }

        let targeting = flag["targeting"] ?? .null
        guard targeting.isPresentTargeting else { return .fixed(PreparedResult(fallback(.staticValue))) }
        guard case .object = targeting else { return parseError("targeting must be a JsonLogic object") }

        let names = variants.keys.sorted()
        var index: [String: Int32] = [:]
        index.reserveCapacity(names.count)
        for (i, n) in names.enumerated() { index[n] = Int32(i) }
        let rule: RuleProgram
        do {
            let substituted = try EvaluatorReferences.resolve(targeting, evaluators: evaluators)
            rule = try RuleProgram(compiling: substituted, flagKey: key, algorithm: algorithm) { value in
                CompiledFlag.variantName(value).flatMap { index[$0] }
            }
        } catch {
            return parseError(error.message)
        }
        return .targeted(
            Targeting(
                rule: rule,
                variantIndex: index,
                matches: names.map { PreparedResult(resolved($0, .targetingMatch)) },
                fallback: PreparedResult(fallback(.defaultValue))))
    }

    /// The variant a targeting result names: strings as they are, booleans as "true"/"false",
    /// numbers as JavaScript prints them, arrays and objects as JSON; null names none.
    static func variantName(_ value: JSONValue) -> String? {
        switch value {
        case .null: return nil
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return s
        case .int, .double: return value.jsString
        case .array, .object: return value.jsonString
        }
    }

    /// Evaluates the flag (without any type check). Errors found while evaluating (an unknown
    /// operator, a variant that does not exist) are the only results built on the spot.
    @usableFromInline
    func resolve(context: EvaluationContext, clock: @Sendable () -> Int64) -> PreparedResult {
        if let fixed { return fixed }
        // Exactly one of `fixed` and `targeting` is set.
        let t = targeting.unsafelyUnwrapped
        let rule = t.rule
        do {
            switch try rule.evaluateResult(context, timestamp: rule.readsTimestamp ? clock() : 0) {
            case .variant(let i):
                return t.matches[Int(i)]
            case .value(let value):
                guard let name = CompiledFlag.variantName(value) else { return t.fallback }
                guard let i = t.variantIndex[name] else {
                    return PreparedResult(
                        .error(
                            .general, "targeting chose variant \"\(name)\", which is not defined", flagKey: key,
                            metadata: metadata))
                }
                return t.matches[Int(i)]
            }
        } catch {
            return PreparedResult(.error(.parseError, error.message, flagKey: key, metadata: metadata))
        }
    }
}

extension JSONValue {
    /// Whether a `targeting` member means "evaluate a rule": absent, null, `{}` and other empty or
    /// false values mean "no targeting", as in the reference evaluators.
    fileprivate var isPresentTargeting: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }
}
