import FlagpoleCore
import Synchronization

/// One flag of a client, its key resolved once: evaluating it reads the flag by position in the
/// current snapshot, with no hashing of the key and no lookup.
///
/// Make handles once (at start, or as static properties) and evaluate them anywhere:
///
/// ```swift
/// let checkout = flags.flag("new-checkout", default: false)
/// if checkout.value(for: EvaluationContext(targetingKey: userID)) { … }
/// let details = checkout.details(for: context)   // value, variant, reason, error code, metadata
/// ```
///
/// A handle gives exactly what the key-based accessors give (``FlagpoleClient/bool(_:default:context:)``
/// and the others) for the same flag, default and context, hooks and staleness included; it only
/// skips finding the flag. It stays valid for the life of the client, whatever updates do: after
/// an update the first evaluation finds the flag in the new snapshot once (one lookup, shared by
/// every thread), and later ones read it by position again. A flag that is removed gives the
/// default with `FLAG_NOT_FOUND`, as its key would; a flag added later, or added back, is found.
///
/// Handles made from a ``FlagEvaluator`` other than the client (the protocol's default
/// `flag(_:default:)`) evaluate through that evaluator's key-based accessors.
public final class FlagHandle<Value: Sendable>: Sendable {
    /// The flag key.
    public let key: String
    /// The code default: what the handle gives when the flag is missing, disabled, of another
    /// type, or fails to evaluate.
    public let defaultValue: Value
    /// The client that evaluates, by position; nil for a handle of another ``FlagEvaluator``.
    /// (Two optionals rather than an enum: reading a class reference out of an enum whose other
    /// case holds an existential copies, and so retains, it on every evaluation.)
    let client: FlagpoleClient?
    /// The evaluator whose key-based accessors evaluate, when `client` is nil.
    let evaluator: (any FlagEvaluator)?
    /// Where the flag was in the last snapshot the handle looked in: that snapshot's
    /// ``FlagSnapshot/tag`` in the high 40 bits, the position + 1 in the low 24 (0: not there).
    /// 0 before the first look (no snapshot has tag 0). Written by whichever thread looks first;
    /// every thread that looks in the same snapshot computes the same word, so relaxed loads and
    /// stores suffice.
    let cache = Atomic<UInt64>(0)

    init(key: String, defaultValue: Value, client: FlagpoleClient) {
        self.key = key
        self.defaultValue = defaultValue
        self.client = client
        self.evaluator = nil
    }

    init(key: String, defaultValue: Value, evaluator: any FlagEvaluator) {
        self.key = key
        self.defaultValue = defaultValue
        self.client = nil
        self.evaluator = evaluator
    }

    /// The flag's position in `snapshot`'s flags, or nil when it has no such flag.
    @inline(__always)
    func position(in snapshot: FlagSnapshot) -> Int? {
        let word = cache.load(ordering: .relaxed)
        if word >> FlagHandleCache.positionBits == snapshot.tag {
            let p = Int(truncatingIfNeeded: word & FlagHandleCache.positionMask)
            return p == 0 ? nil : p &- 1
        }
        return resolve(in: snapshot)
    }

    /// Finds the flag in `snapshot` by key (hashing it) and remembers where.
    @inline(never)
    func resolve(in snapshot: FlagSnapshot) -> Int? {
        let position = snapshot.flags.position(of: key)
        let stored: UInt64
        if let position {
            // Sets of 16,777,215 flags or more: positions past the field are not remembered
            // (each evaluation of such a flag finds it by key).
            guard position < Int(FlagHandleCache.positionMask) else { return position }
            stored = UInt64(position) + 1
        } else {
            stored = 0
        }
        cache.store(snapshot.tag << FlagHandleCache.positionBits | stored, ordering: .relaxed)
        return position
    }

    /// The flag's typed details in `snapshot` (no hooks, staleness or counting: the caller's).
    @inline(__always)
    func evaluate(in snapshot: FlagSnapshot, _ context: EvaluationContext) -> EvaluationDetails<Value> where Value: FlagHandleValue {
        guard let position = position(in: snapshot) else { return snapshot.notFound(key, defaultValue) }
        return snapshot.details(at: position, key: key, Value.valueType, defaultValue, context, Value.extract)
    }
}

/// The layout of ``FlagHandle/cache``.
enum FlagHandleCache {
    static let positionBits: UInt64 = 24
    static let positionMask: UInt64 = (1 << positionBits) - 1
    /// Snapshot tags run from 1 to this (40 bits).
    static let tagLimit: UInt64 = (1 << (64 - positionBits)) - 1
}

// MARK: - Evaluation, by type

extension FlagHandle where Value == Bool {
    /// The flag's value for `context` (see ``FlagpoleClient/bool(_:default:context:)``).
    public func value(for context: EvaluationContext = .empty) -> Bool {
        if let client { return client.handleValue(self, context) }
        return evaluator!.bool(key, default: defaultValue, context: context)
    }

    /// The flag's value with the variant, reason, error code and metadata (see
    /// ``FlagpoleClient/boolDetails(_:default:context:)``).
    public func details(for context: EvaluationContext = .empty) -> EvaluationDetails<Bool> {
        if let client { return client.handleDetails(self, context) }
        return evaluator!.boolDetails(key, default: defaultValue, context: context)
    }
}

extension FlagHandle where Value == String {
    /// The flag's value for `context` (see ``FlagpoleClient/string(_:default:context:)``).
    public func value(for context: EvaluationContext = .empty) -> String {
        if let client { return client.handleValue(self, context) }
        return evaluator!.string(key, default: defaultValue, context: context)
    }

    /// The flag's value with the variant, reason, error code and metadata.
    public func details(for context: EvaluationContext = .empty) -> EvaluationDetails<String> {
        if let client { return client.handleDetails(self, context) }
        return evaluator!.stringDetails(key, default: defaultValue, context: context)
    }
}

extension FlagHandle where Value == Int {
    /// The flag's value for `context` (see ``FlagpoleClient/integer(_:default:context:)``).
    public func value(for context: EvaluationContext = .empty) -> Int {
        if let client { return client.handleValue(self, context) }
        return evaluator!.integer(key, default: defaultValue, context: context)
    }

    /// The flag's value with the variant, reason, error code and metadata.
    public func details(for context: EvaluationContext = .empty) -> EvaluationDetails<Int> {
        if let client { return client.handleDetails(self, context) }
        return evaluator!.integerDetails(key, default: defaultValue, context: context)
    }
}

extension FlagHandle where Value == Double {
    /// The flag's value for `context` (see ``FlagpoleClient/double(_:default:context:)``).
    public func value(for context: EvaluationContext = .empty) -> Double {
        if let client { return client.handleValue(self, context) }
        return evaluator!.double(key, default: defaultValue, context: context)
    }

    /// The flag's value with the variant, reason, error code and metadata.
    public func details(for context: EvaluationContext = .empty) -> EvaluationDetails<Double> {
        if let client { return client.handleDetails(self, context) }
        return evaluator!.doubleDetails(key, default: defaultValue, context: context)
    }
}

extension FlagHandle where Value == JSONValue {
    /// The flag's value for `context` (see ``FlagpoleClient/object(_:default:context:)``).
    public func value(for context: EvaluationContext = .empty) -> JSONValue {
        if let client { return client.handleValue(self, context) }
        return evaluator!.object(key, default: defaultValue, context: context)
    }

    /// The flag's value with the variant, reason, error code and metadata.
    public func details(for context: EvaluationContext = .empty) -> EvaluationDetails<JSONValue> {
        if let client { return client.handleDetails(self, context) }
        return evaluator!.objectDetails(key, default: defaultValue, context: context)
    }
}

/// The types a handle can have, with what each accepts of a flag's value: the engine's rules
/// (CompiledFlagSet's typed accessors), so that a handle and a key agree. Static, so that each
/// handle type's evaluation is compiled on its own, with its extraction inlined.
protocol FlagHandleValue: Sendable {
    static var valueType: FlagValueType { get }
    static func extract(_ value: JSONValue) -> Self?
    /// The value as hooks see it.
    var json: JSONValue { get }
}

extension Bool: FlagHandleValue {
    static var valueType: FlagValueType { .boolean }
    @inline(__always) static func extract(_ v: JSONValue) -> Bool? { if case .bool(let b) = v { b } else { nil } }
    var json: JSONValue { .bool(self) }
}

extension String: FlagHandleValue {
    static var valueType: FlagValueType { .string }
    @inline(__always) static func extract(_ v: JSONValue) -> String? { if case .string(let s) = v { s } else { nil } }
    var json: JSONValue { .string(self) }
}

extension Int: FlagHandleValue {
    static var valueType: FlagValueType { .integer }
    @inline(__always) static func extract(_ v: JSONValue) -> Int? { if case .int(let i) = v { Int(truncatingIfNeeded: i) } else { nil } }
    var json: JSONValue { .int(Int64(self)) }
}

extension Double: FlagHandleValue {
    static var valueType: FlagValueType { .float }
    @inline(__always) static func extract(_ v: JSONValue) -> Double? { v.numberValue }
    var json: JSONValue { .double(self) }
}

extension JSONValue: FlagHandleValue {
    static var valueType: FlagValueType { .object }
    @inline(__always) static func extract(_ v: JSONValue) -> JSONValue? {
        switch v {
        case .object, .array: v
        default: nil
        }
    }
    var json: JSONValue { self }
}

// MARK: - Making handles

extension FlagpoleClient {
    /// A handle on the boolean flag `key`: evaluating it skips finding the flag (see ``FlagHandle``).
    ///
    /// - Parameters:
    ///   - key: The flag key.
    ///   - defaultValue: The code default.
    public func flag(_ key: String, default defaultValue: Bool) -> FlagHandle<Bool> { makeHandle(key, defaultValue) }
    /// A handle on the string flag `key` (see ``FlagHandle``).
    public func flag(_ key: String, default defaultValue: String) -> FlagHandle<String> { makeHandle(key, defaultValue) }
    /// A handle on the integer flag `key` (see ``FlagHandle``).
    public func flag(_ key: String, default defaultValue: Int) -> FlagHandle<Int> { makeHandle(key, defaultValue) }
    /// A handle on the number flag `key` (see ``FlagHandle``).
    public func flag(_ key: String, default defaultValue: Double) -> FlagHandle<Double> { makeHandle(key, defaultValue) }
    /// A handle on the object flag `key` (see ``FlagHandle``).
    public func flag(_ key: String, default defaultValue: JSONValue) -> FlagHandle<JSONValue> { makeHandle(key, defaultValue) }

    /// A handle, resolved in the current snapshot already.
    private func makeHandle<Value>(_ key: String, _ defaultValue: Value) -> FlagHandle<Value> {
        let handle = FlagHandle(key: key, defaultValue: defaultValue, client: self)
        _ = handle.resolve(in: snapshot)
        return handle
    }

    /// A handle's value: ``boolDetails(_:default:context:)``'s path without building the details.
    @inline(__always)
    func handleValue<Value: FlagHandleValue>(_ handle: FlagHandle<Value>, _ context: EvaluationContext) -> Value {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, handle.key, Value.valueType, handle.defaultValue, context, [], { $0.json }) { handle.evaluate(in: $0, $1) }
                    .value
            }
            var value = handle.defaultValue
            var reason = EvaluationReason.error
            if let position = handle.position(in: s) {
                (value, reason) = s.value(at: position, handle.defaultValue, context, Value.extract)
            }
            if reason != .error, staleFlag.load(ordering: .relaxed) { reason = .stale }
            evaluationCounts.add(at: ClientMetrics.index(reason), stripe: slot.stripe, exclusive: slot.ownsStripe)
            return value
        }
    }

    /// A handle's details, hooks run as for a key.
    @inline(__always)
    func handleDetails<Value: FlagHandleValue>(_ handle: FlagHandle<Value>, _ context: EvaluationContext) -> EvaluationDetails<Value> {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, handle.key, Value.valueType, handle.defaultValue, context, [], { $0.json }) { handle.evaluate(in: $0, $1) }
            }
            var details = handle.evaluate(in: s, context)
            finish(&details, slot: slot)
            return details
        }
    }
}
