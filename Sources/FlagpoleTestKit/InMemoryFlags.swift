import Flagpole
import FlagpoleCore
import FlagpoleStore
import Synchronization

/// Flags for tests: flagd definitions held in memory, evaluated by the same engine as
/// ``Flagpole/FlagpoleClient`` (a real client that never connects to Redis), changeable from the
/// test, with every outcome recorded for assertions.
///
/// ```swift
/// import FlagpoleTestKit
///
/// let flags = try InMemoryFlags(yaml: """
///     flags:
///       new-checkout:
///         state: ENABLED
///         variants: {"on": true, "off": false}
///         defaultVariant: "off"
///     """)
/// #expect(try checkout(user: "ann", flags: flags) == "classic checkout for ann\n")
/// try flags.set("new-checkout", variant: "on")                 // as `flagctl set` would
/// #expect(try checkout(user: "ann", flags: flags) == "new checkout for ann\n")
/// #expect(flags.outcomes.last == .init(flag: "new-checkout", variant: "on", success: true))
/// ```
///
/// Overrides behave as their `flagctl` counterparts: ``set(_:variant:)`` serves one variant to
/// everyone, ``disable(_:)`` is the kill switch (code defaults), ``clearOverride(_:)`` goes back to
/// the definition. ``update(_:)`` replaces or adds definitions, as a sync would.
public final class InMemoryFlags: FlagEvaluator, Sendable {
    /// One outcome the code under test recorded.
    public struct Outcome: Sendable, Hashable {
        public var flag: String
        public var variant: String?
        public var success: Bool
        public var duration: Duration?

        public init(flag: String, variant: String?, success: Bool, duration: Duration? = nil) {
            self.flag = flag
            self.variant = variant
            self.success = success
            self.duration = duration
        }
    }

    private struct State {
        var document: [String: JSONValue]
        var overrides: [String: FlagOverride] = [:]
        var outcomes: [Outcome] = []
    }

    /// The client whose engine evaluates; it never connects anywhere.
    public let client: FlagpoleClient
    private let algorithm: FractionalAlgorithm
    private let state: Mutex<State>

    /// Flags from a flag-set document: `{"flags": {…}, "$evaluators": {…}, "metadata": {…}}`.
    ///
    /// - Throws: ``InMemoryFlagsError`` naming each flag that does not compile.
    public init(document: JSONValue, environment: String = "test", fractionalAlgorithm: FractionalAlgorithm = .v3) throws(InMemoryFlagsError) {
        guard case .object(let object) = document, case .object? = object["flags"] else {
            throw InMemoryFlagsError("a flag set is an object with \"flags\": {\"KEY\": {\"state\", \"variants\", \"defaultVariant\"}}")
        }
        algorithm = fractionalAlgorithm
        client = FlagpoleClient.inMemory(environment: environment, document: .object([:]), algorithm: fractionalAlgorithm)
        state = Mutex(State(document: object))
        try serve()
    }

    /// Flags from their definitions, by key.
    public convenience init(flags: [String: JSONValue], environment: String = "test") throws(InMemoryFlagsError) {
        try self.init(document: ["flags": .object(flags)], environment: environment)
    }

    /// Flags from the text of a flag file in YAML (as under `flags/<env>/`).
    public convenience init(yaml: String, environment: String = "test") throws(InMemoryFlagsError) {
        try self.init(document: Self.load(path: "flags.yaml", text: yaml), environment: environment)
    }

    /// Flags from the text of a flag file in JSON.
    public convenience init(json: String, environment: String = "test") throws(InMemoryFlagsError) {
        try self.init(document: Self.load(path: "flags.json", text: json), environment: environment)
    }

    /// The flags of `environment` in a flag folder (`directory/<environment>/*.yaml|json`, with the
    /// project config's fractional algorithm), as `flagctl` reads them.
    public convenience init(directory: String, environment: String) throws(InMemoryFlagsError) {
        guard let loaded = FlagpoleClient.FlagFiles(directory: directory).load(environment: environment) else {
            throw InMemoryFlagsError("no flag files for environment '\(environment)' in \(directory)/\(environment)")
        }
        if let first = loaded.errors.first {
            throw InMemoryFlagsError(
                "\(directory)/\(environment): \(first)" + (loaded.errors.count > 1 ? " (and \(loaded.errors.count - 1) more)" : ""))
        }
        try self.init(document: loaded.document, environment: environment, fractionalAlgorithm: loaded.algorithm)
    }

    private static func load(path: String, text: String) throws(InMemoryFlagsError) -> JSONValue {
        let load = FlagSetLoader.load(path: path, text: text)
        if load.hasErrors {
            let errors = load.diagnostics.filter { $0.severity == .error }.map { "\($0)" }
            throw InMemoryFlagsError("the flags do not load:\n  " + errors.joined(separator: "\n  "))
        }
        return load.document
    }

    // MARK: - Changing flags

    /// Serves `variant` to everyone, as `flagctl set` does.
    public func set(_ flag: String, variant: String) throws(InMemoryFlagsError) {
        let definition = try definition(flag)
        guard definition["variants"]?.objectValue?[variant] != nil else {
            let known = definition["variants"]?.objectValue?.keys.sorted().joined(separator: ", ") ?? "none"
            throw InMemoryFlagsError("'\(variant)' is not a variant of '\(flag)' (its variants: \(known))")
        }
        try override(flag, .variant(variant))
    }

    /// The kill switch, as `flagctl disable` does: evaluations give the code default.
    public func disable(_ flag: String) throws(InMemoryFlagsError) {
        _ = try definition(flag)
        try override(flag, .enabled(false))
    }

    /// Turns on a flag the definition disables, as `flagctl enable` does.
    public func enable(_ flag: String) throws(InMemoryFlagsError) {
        _ = try definition(flag)
        try override(flag, .enabled(true))
    }

    /// Back to the definition, as `flagctl override clear` does.
    public func clearOverride(_ flag: String) throws(InMemoryFlagsError) {
        state.withLock { _ = $0.overrides.removeValue(forKey: flag) }
        try serve()
    }

    /// Replaces or adds definitions (others are kept), as a sync of changed files would.
    public func update(_ definitions: [String: JSONValue]) throws(InMemoryFlagsError) {
        state.withLock { s in
            var flags = s.document["flags"]?.objectValue ?? [:]
            for (key, definition) in definitions { flags[key] = definition }
            s.document["flags"] = .object(flags)
        }
        try serve()
    }

    /// Removes a flag, as a sync with `--prune` would: evaluations give FLAG_NOT_FOUND.
    public func remove(_ flag: String) throws(InMemoryFlagsError) {
        state.withLock { s in
            var flags = s.document["flags"]?.objectValue ?? [:]
            flags[flag] = nil
            s.document["flags"] = .object(flags)
            s.overrides[flag] = nil
        }
        try serve()
    }

    // MARK: - Outcomes

    /// Every outcome recorded, in order.
    public var outcomes: [Outcome] { state.withLock { $0.outcomes } }

    /// Forgets the outcomes recorded so far.
    public func resetOutcomes() {
        state.withLock { $0.outcomes.removeAll() }
    }

    // MARK: - Hooks

    /// Runs `hook` around every evaluation, exactly as ``Flagpole/FlagpoleClient/addHook(_:)``
    /// does (the same code: these flags are a client's), so a test sees what production's hooks
    /// see.
    @discardableResult
    public func addHook(_ hook: some FlagHook) -> FlagHookRegistration {
        client.addHook(hook)
    }

    /// Stops running a hook; false when it was not registered.
    @discardableResult
    public func removeHook(_ registration: FlagHookRegistration) -> Bool {
        client.removeHook(registration)
    }

    /// Removes every hook.
    public func removeAllHooks() {
        client.removeAllHooks()
    }

    // MARK: - FlagEvaluator

    public func bool(_ key: String, default defaultValue: Bool, context: EvaluationContext) -> Bool {
        client.bool(key, default: defaultValue, context: context)
    }
    public func boolDetails(_ key: String, default defaultValue: Bool, context: EvaluationContext) -> EvaluationDetails<Bool> {
        client.boolDetails(key, default: defaultValue, context: context)
    }
    public func string(_ key: String, default defaultValue: String, context: EvaluationContext) -> String {
        client.string(key, default: defaultValue, context: context)
    }
    public func stringDetails(_ key: String, default defaultValue: String, context: EvaluationContext) -> EvaluationDetails<String> {
        client.stringDetails(key, default: defaultValue, context: context)
    }
    public func integer(_ key: String, default defaultValue: Int, context: EvaluationContext) -> Int {
        client.integer(key, default: defaultValue, context: context)
    }
    public func integerDetails(_ key: String, default defaultValue: Int, context: EvaluationContext) -> EvaluationDetails<Int> {
        client.integerDetails(key, default: defaultValue, context: context)
    }
    public func double(_ key: String, default defaultValue: Double, context: EvaluationContext) -> Double {
        client.double(key, default: defaultValue, context: context)
    }
    public func doubleDetails(_ key: String, default defaultValue: Double, context: EvaluationContext) -> EvaluationDetails<Double> {
        client.doubleDetails(key, default: defaultValue, context: context)
    }
    public func object(_ key: String, default defaultValue: JSONValue, context: EvaluationContext) -> JSONValue {
        client.object(key, default: defaultValue, context: context)
    }
    public func objectDetails(_ key: String, default defaultValue: JSONValue, context: EvaluationContext) -> EvaluationDetails<JSONValue> {
        client.objectDetails(key, default: defaultValue, context: context)
    }
    /// A handle on a boolean flag, evaluated by ``client`` by position (see `FlagHandle`); it
    /// follows ``set(_:variant:)``, ``update(_:)``, ``remove(_:)`` and the others.
    public func flag(_ key: String, default defaultValue: Bool) -> FlagHandle<Bool> { client.flag(key, default: defaultValue) }
    /// A handle on a string flag, evaluated by ``client``.
    public func flag(_ key: String, default defaultValue: String) -> FlagHandle<String> { client.flag(key, default: defaultValue) }
    /// A handle on an integer flag, evaluated by ``client``.
    public func flag(_ key: String, default defaultValue: Int) -> FlagHandle<Int> { client.flag(key, default: defaultValue) }
    /// A handle on a number flag, evaluated by ``client``.
    public func flag(_ key: String, default defaultValue: Double) -> FlagHandle<Double> { client.flag(key, default: defaultValue) }
    /// A handle on an object flag, evaluated by ``client``.
    public func flag(_ key: String, default defaultValue: JSONValue) -> FlagHandle<JSONValue> { client.flag(key, default: defaultValue) }
    public func recordOutcome(flag: String, variant: String?, success: Bool, duration: Duration?) {
        state.withLock { $0.outcomes.append(Outcome(flag: flag, variant: variant, success: success, duration: duration)) }
    }

    // MARK: - Serving

    private func definition(_ flag: String) throws(InMemoryFlagsError) -> JSONValue {
        let flags = state.withLock { $0.document["flags"]?.objectValue ?? [:] }
        guard let definition = flags[flag] else {
            throw InMemoryFlagsError("no flag '\(flag)' (the flags: \(flags.keys.sorted().joined(separator: ", ")))")
        }
        return definition
    }

    private func override(_ flag: String, _ change: FlagOverride) throws(InMemoryFlagsError) {
        state.withLock { $0.overrides[flag] = change }
        try serve()
    }

    /// Applies the overrides to the definitions (the store's own override semantics) and serves
    /// the result through the client.
    private func serve() throws(InMemoryFlagsError) {
        let effective = state.withLock { s -> JSONValue in
            var document = s.document
            var flags = document["flags"]?.objectValue ?? [:]
            for (key, change) in s.overrides { if let d = flags[key] { flags[key] = change.apply(to: d) } }
            document["flags"] = .object(flags)
            return .object(document)
        }
        let malformed = client.serve(document: effective, algorithm: algorithm)
        if !malformed.isEmpty {
            throw InMemoryFlagsError(malformed.map { "\($0.key): \($0.reason)" }.sorted().joined(separator: "\n"))
        }
    }
}

/// Flags for ``InMemoryFlags`` that cannot be used, or a change that names a flag or variant that
/// does not exist: what is wrong and where.
public struct InMemoryFlagsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
