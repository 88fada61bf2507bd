/// A whole flagd flag set, compiled once and then evaluated any number of times, from any thread.
///
/// Build it from the merged flag document
/// (`{"flags": {…}, "$evaluators": {…}, "metadata": {…}}`). Compiling never fails: a flag whose
/// definition is unusable evaluates to ERROR / PARSE_ERROR, and a flag set that is not an object is
/// empty. Evaluation follows flagd exactly (NOTES.md §3): it never throws, never parses JSON, and
/// for flags without targeting allocates nothing.
///
/// ```swift
/// let flags = CompiledFlagSet(try JSONParser.parse(text))
/// let details = flags.bool("new-checkout", default: false,
///                          context: EvaluationContext(targetingKey: "user-42"))
/// ```
public final class CompiledFlagSet: Sendable {
    /// How a flag set is compiled and evaluated.
    public struct Options: Sendable {
        /// How `fractional` hashes. Default: ``FractionalAlgorithm/v3``.
        public var fractionalAlgorithm: FractionalAlgorithm
        /// The clock `$flagd.timestamp` reads, in Unix seconds. Default: the system wall clock.
        public var clock: @Sendable () -> Int64

        /// The system wall clock in Unix seconds: the default ``clock``.
        public static let systemClock: @Sendable () -> Int64 = { UnixTime.now() }

        /// Options; every parameter has the default stated on its property.
        public init(
            fractionalAlgorithm: FractionalAlgorithm = .v3,
            clock: @escaping @Sendable () -> Int64 = Options.systemClock
        ) {
            self.fractionalAlgorithm = fractionalAlgorithm
            self.clock = clock
        }
    }

    /// The options the set was compiled with.
    public let options: Options
    /// The flag-set metadata (`metadata` of the document), without null values.
    public let metadata: [String: JSONValue]
    /// The shared rules (`$evaluators` of the document) that `$ref` names.
    public let evaluators: [String: JSONValue]
    /// Every flag key, sorted.
    public let flagKeys: [String]
    @usableFromInline let flags: FlagTable

    /// Compiles a flag document.
    ///
    /// `flags` may be an object of flag definitions or, as flagd's daemon configuration allows, an
    /// array of definitions each with a `"key"`.
    public convenience init(_ document: JSONValue, options: Options = Options()) {
        var metadata: [String: JSONValue] = [:]
        if case .object(let m)? = document["metadata"] {
            metadata = m.filter { !$0.value.isNull }
        }
        var evaluators: [String: JSONValue] = [:]
        if case .object(let e)? = document["$evaluators"] { evaluators = e }
        var definitions: [(String, JSONValue)] = []
        switch document["flags"] {
        case .object(let o)?:
            definitions = o.map { ($0.key, $0.value) }
        case .array(let a)?:
            for item in a {
                if case .string(let key)? = item["key"] { definitions.append((key, item)) }
            }
        default:
            break
        }
        let compiled = definitions.map { key, definition in
            CompiledFlag(
                key: key, definition: definition, evaluators: evaluators, flagSetMetadata: metadata,
                fractionalAlgorithm: options.fractionalAlgorithm)
        }
        self.init(flags: compiled, metadata: metadata, evaluators: evaluators, options: options)
    }

    /// A flag set from flags compiled separately (a later flag with the same key wins).
    ///
    /// The flags should have been compiled with the same `metadata`, `evaluators` and fractional
    /// algorithm; ``compileFlag(key:definition:)`` does that.
    public init(
        flags: [CompiledFlag],
        metadata: [String: JSONValue] = [:],
        evaluators: [String: JSONValue] = [:],
        options: Options = Options()
    ) {
        let table = FlagTable(flags)
        self.flags = table
        self.flagKeys = table.all.map(\.key).sorted()
        self.metadata = metadata
        self.evaluators = evaluators
        self.options = options
    }

    /// Compiles one flag definition against this set's evaluators, metadata and options, ready for
    /// ``replacing(_:)``.
    public func compileFlag(key: String, definition: JSONValue) -> CompiledFlag {
        CompiledFlag(
            key: key, definition: definition, evaluators: evaluators, flagSetMetadata: metadata,
            fractionalAlgorithm: options.fractionalAlgorithm)
    }

    /// A copy of this set with `flag` added, or swapped in for the flag with its key. Other flags
    /// are shared, not recompiled.
    public func replacing(_ flag: CompiledFlag) -> CompiledFlagSet {
        CompiledFlagSet(flags: flags.all + [flag], metadata: metadata, evaluators: evaluators, options: options)
    }

    /// A copy of this set without the flag `key`.
    public func removing(_ key: String) -> CompiledFlagSet {
        CompiledFlagSet(
            flags: flags.all.filter { $0.key != key }, metadata: metadata, evaluators: evaluators, options: options)
    }

    /// The compiled flag `key`, if the set has it.
    public func flag(_ key: String) -> CompiledFlag? {
        flags[key]
    }

    // MARK: - Evaluation

    /// Evaluates a flag, untyped: the value is nil when the caller's code default applies.
    ///
    /// With a `type`, a value of another type gives ERROR / TYPE_MISMATCH (NOTES.md §3 step 6):
    /// integers satisfy `.float` (and come back as doubles), floats never satisfy `.integer`, and
    /// `.object` accepts objects and arrays, as `openfeature-flagd-core` does. Without a type the
    /// value is returned as the flag defines it.
    public func evaluate(_ key: String, type: FlagValueType? = nil, context: EvaluationContext = .empty) -> EvaluationResult {
        guard let flag = flags[key] else {
            return .error(.flagNotFound, CompiledFlagSet.notFoundMessage, flagKey: key, metadata: metadata)
        }
        let prepared = flag.resolve(context: context, clock: options.clock)
        guard let type, let value = prepared.result.value else { return prepared.result }
        switch (type, value) {
        case (.boolean, .bool), (.string, .string), (.integer, .int), (.float, .double), (.object, .object),
            (.object, .array):
            return prepared.result
        case (.float, .int(let i)):
            var result = prepared.result
            result.value = .double(Double(i))
            return result
        default:
            return .error(.typeMismatch, CompiledFlagSet.mismatchMessage(type), flagKey: key, metadata: flag.metadata)
        }
    }

    /// Evaluates every flag (with no type check), in key order: the bulk answer OFREP gives.
    public func evaluateAll(context: EvaluationContext = .empty) -> [EvaluationResult] {
        flagKeys.map { evaluate($0, context: context) }
    }

    // The typed accessors are named after the Swift type they return, as the client's are
    // (`bool`, `string`, `integer`, `double`, `object`); `integer` gives `Int64` here and `Int` in
    // the client. `boolean` and `float` are the old names, kept deprecated for one release.

    /// Evaluates a boolean flag; `defaultValue` is returned whenever the flag gives no boolean.
    @inlinable
    public func bool(_ key: String, default defaultValue: Bool, context: EvaluationContext = .empty) -> EvaluationDetails<Bool> {
        details(key, .boolean, defaultValue, context) { if case .bool(let b) = $0 { b } else { nil } }
    }

    /// Evaluates a string flag; `defaultValue` is returned whenever the flag gives no string.
    @inlinable
    public func string(_ key: String, default defaultValue: String, context: EvaluationContext = .empty) -> EvaluationDetails<String> {
        details(key, .string, defaultValue, context) { if case .string(let s) = $0 { s } else { nil } }
    }

    /// Evaluates an integer flag; `defaultValue` is returned whenever the flag gives no integer (a
    /// float variant, even `10.0`, is a TYPE_MISMATCH, as in `openfeature-flagd-core`).
    @inlinable
    public func integer(_ key: String, default defaultValue: Int64, context: EvaluationContext = .empty) -> EvaluationDetails<Int64> {
        details(key, .integer, defaultValue, context) { if case .int(let i) = $0 { i } else { nil } }
    }

    /// Evaluates a number flag (a float flag); integer variants are returned as doubles.
    @inlinable
    public func double(_ key: String, default defaultValue: Double, context: EvaluationContext = .empty) -> EvaluationDetails<Double> {
        details(key, .float, defaultValue, context) { $0.numberValue }
    }

    /// Evaluates an object flag (a JSON object, or an array); `defaultValue` is returned whenever
    /// the flag gives neither.
    @inlinable
    public func object(_ key: String, default defaultValue: JSONValue, context: EvaluationContext = .empty) -> EvaluationDetails<JSONValue> {
        details(key, .object, defaultValue, context) { v in
            switch v {
            case .object, .array: v
            default: nil
            }
        }
    }

    /// Evaluates a boolean flag: the old name of ``bool(_:default:context:)``.
    @available(*, deprecated, renamed: "bool(_:default:context:)")
    @inlinable
    public func boolean(_ key: String, default defaultValue: Bool, context: EvaluationContext = .empty) -> EvaluationDetails<Bool> {
        bool(key, default: defaultValue, context: context)
    }

    /// Evaluates a number flag: the old name of ``double(_:default:context:)``.
    @available(*, deprecated, renamed: "double(_:default:context:)")
    @inlinable
    public func float(_ key: String, default defaultValue: Double, context: EvaluationContext = .empty) -> EvaluationDetails<Double> {
        double(key, default: defaultValue, context: context)
    }

    /// The typed path: reads the prepared result in place instead of copying it. Inlinable, so
    /// that a caller that reads only the value does not pay for the details' other members.
    @inlinable @inline(__always)
    func details<Value>(
        _ key: String, _ type: FlagValueType, _ defaultValue: Value, _ context: EvaluationContext,
        _ extract: (JSONValue) -> Value?
    ) -> EvaluationDetails<Value> {
        guard let flag = flags[key] else {
            return EvaluationDetails(
                flagKey: key, value: defaultValue, reason: .error, errorCode: .flagNotFound,
                errorMessage: CompiledFlagSet.notFoundMessage, metadata: metadata)
        }
        if let fixed = flag.fixed {
            // No targeting: read the prepared result where it is, without handing it out.
            return CompiledFlagSet.typed(key, type, defaultValue, fixed.result, flag, extract)
        }
        let prepared = flag.resolve(context: context, clock: options.clock)
        return CompiledFlagSet.typed(key, type, defaultValue, prepared.result, flag, extract)
    }

    /// Typed details from a flag's result. `key` is the flag's key (the caller's copy of it).
    @inlinable @inline(__always)
    static func typed<Value>(
        _ key: String, _ type: FlagValueType, _ defaultValue: Value, _ result: borrowing EvaluationResult,
        _ flag: CompiledFlag, _ extract: (JSONValue) -> Value?
    ) -> EvaluationDetails<Value> {
        guard let value = result.value else {
            return EvaluationDetails(
                flagKey: key, value: defaultValue, variant: nil, reason: result.reason,
                errorCode: result.errorCode, errorMessage: result.errorMessage, metadata: result.metadata)
        }
        guard let typed = extract(value) else {
            return EvaluationDetails(
                flagKey: key, value: defaultValue, reason: .error, errorCode: .typeMismatch,
                errorMessage: CompiledFlagSet.mismatchMessage(type), metadata: flag.metadata)
        }
        return EvaluationDetails(
            flagKey: key, value: typed, variant: result.variant, reason: result.reason, metadata: result.metadata)
    }

    // MARK: - By position (the client's flag handles)

    /// How many flags the set has: positions run from 0 to `flagCount - 1`.
    package var flagCount: Int { flags.flags.count }

    /// The position of the flag `key` in this set (valid for this set only), or nil: the lookup
    /// the key-based accessors make, so finding a position and evaluating there costs what
    /// evaluating by key does.
    @inlinable @inline(__always)
    package func position(of key: String) -> Int? {
        flags.position(of: key)
    }

    /// The key of the flag at `position` (from ``position(of:)`` on this set).
    package func key(at position: Int) -> String {
        flags.flags[position].key
    }

    /// ``bool(_:default:context:)`` and the others, for the flag at `position` (from
    /// ``position(of:)`` on this set): no hashing, no lookup. `key` is the caller's copy of the
    /// flag's key, for the details.
    @inlinable @inline(__always)
    package func details<Value>(
        at position: Int, key: String, _ type: FlagValueType, _ defaultValue: Value, _ context: EvaluationContext,
        _ extract: (JSONValue) -> Value?
    ) -> EvaluationDetails<Value> {
        let flag = flags.flags[position]
        if let fixed = flag.fixed {
            return CompiledFlagSet.typed(key, type, defaultValue, fixed.result, flag, extract)
        }
        let prepared = flag.resolve(context: context, clock: options.clock)
        return CompiledFlagSet.typed(key, type, defaultValue, prepared.result, flag, extract)
    }

    /// The value and reason only of ``details(at:key:_:_:_:_:)``: what a caller that reads only
    /// the value needs, without building (and releasing) the details' strings and metadata.
    @inlinable @inline(__always)
    package func value<Value>(
        at position: Int, _ defaultValue: Value, _ context: EvaluationContext, _ extract: (JSONValue) -> Value?
    ) -> (value: Value, reason: EvaluationReason) {
        let flag = flags.flags[position]
        if let fixed = flag.fixed {
            return CompiledFlagSet.typedValue(defaultValue, fixed.result, extract)
        }
        let prepared = flag.resolve(context: context, clock: options.clock)
        return CompiledFlagSet.typedValue(defaultValue, prepared.result, extract)
    }

    /// The value and reason of a flag's result, typed: the default (with ERROR) on a mismatch.
    @inlinable @inline(__always)
    static func typedValue<Value>(
        _ defaultValue: Value, _ result: borrowing EvaluationResult, _ extract: (JSONValue) -> Value?
    ) -> (value: Value, reason: EvaluationReason) {
        guard let value = result.value else { return (defaultValue, result.reason) }
        guard let typed = extract(value) else { return (defaultValue, .error) }
        return (typed, result.reason)
    }

    @usableFromInline package static let notFoundMessage = "flag not found"

    @usableFromInline static func mismatchMessage(_ type: FlagValueType) -> String {
        switch type {
        case .boolean: return "flag value is not a boolean"
        case .string: return "flag value is not a string"
        case .integer: return "flag value is not an integer"
        case .float: return "flag value is not a number"
        case .object: return "flag value is not an object"
        }
    }
}
