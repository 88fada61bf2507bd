import FlagpoleCore
import FlagpoleStore
import Synchronization

/// One immutable view of an environment's flags: compiled for evaluation, with the effective
/// definitions (overrides applied) they were compiled from, the revision, and where and when the
/// data came from. A client swaps whole snapshots; nobody changes one.
final class FlagSnapshot: Sendable {
    /// The compiled flags evaluations read.
    let flags: CompiledFlagSet
    /// Flag key → effective definition (override applied), for diffs and the disk copy.
    let definitions: [String: JSONValue]
    /// The store revision the data reflects; nil for code defaults and flag files.
    let revision: Int64?
    /// Where the data came from.
    let source: FlagpoleClient.Source
    /// When the data was last known to be current (Unix seconds): read from Redis, saved to disk,
    /// or loaded from files.
    let asOf: Double
    /// This snapshot's number, unique in the process (never 0), as flag handles tag the position
    /// they resolved: ``FlagHandle`` keeps it in 40 bits, so it counts modulo 2^40 - 1 (a
    /// handle would have to sit unused through that many snapshots for a tag to repeat).
    let tag: UInt64
    /// Which flags were evaluated since the marks were last collected, by position in ``flags``.
    let marks: EvaluationMarks

    private static let nextSerial = Atomic<UInt64>(0)

    init(flags: CompiledFlagSet, definitions: [String: JSONValue], revision: Int64?, source: FlagpoleClient.Source, asOf: Double) {
        self.flags = flags
        self.definitions = definitions
        self.revision = revision
        self.source = source
        self.asOf = asOf
        tag = Self.nextSerial.wrappingAdd(1, ordering: .relaxed).oldValue % FlagHandleCache.tagLimit + 1
        marks = EvaluationMarks(count: flags.flagCount)
    }

    // MARK: - Evaluation (every typed evaluation of the client goes through here)

    /// The typed details of the flag `key`: found by key, then evaluated (and marked) by position.
    @inline(__always)
    func details<Value>(
        _ key: String, _ type: FlagValueType, _ defaultValue: Value, _ context: EvaluationContext, _ extract: (JSONValue) -> Value?
    ) -> EvaluationDetails<Value> {
        guard let position = flags.position(of: key) else { return notFound(key, defaultValue) }
        return details(at: position, key: key, type, defaultValue, context, extract)
    }

    /// The typed details of the flag at `position` (from this snapshot's flags), marked evaluated.
    @inline(__always)
    func details<Value>(
        at position: Int, key: String, _ type: FlagValueType, _ defaultValue: Value, _ context: EvaluationContext,
        _ extract: (JSONValue) -> Value?
    ) -> EvaluationDetails<Value> {
        marks.mark(position)
        return flags.details(at: position, key: key, type, defaultValue, context, extract)
    }

    /// The value and reason only of the flag at `position`, marked evaluated.
    @inline(__always)
    func value<Value>(
        at position: Int, _ defaultValue: Value, _ context: EvaluationContext, _ extract: (JSONValue) -> Value?
    ) -> (value: Value, reason: EvaluationReason) {
        marks.mark(position)
        return flags.value(at: position, defaultValue, context, extract)
    }

    /// What an evaluation of a flag this snapshot does not have gives: the default, FLAG_NOT_FOUND.
    func notFound<Value>(_ key: String, _ defaultValue: Value) -> EvaluationDetails<Value> {
        EvaluationDetails(
            flagKey: key, value: defaultValue, reason: .error, errorCode: .flagNotFound, errorMessage: CompiledFlagSet.notFoundMessage,
            metadata: flags.metadata)
    }

    /// Marks the flag `key` evaluated, when this snapshot has it (an untyped evaluation: OFREP).
    func markEvaluated(_ key: String) {
        if let position = flags.position(of: key) { marks.mark(position) }
    }

    /// The keys of the flags evaluated since the last collection, each mark cleared as it is taken.
    func takeEvaluated() -> [String] {
        marks.take().map { flags.key(at: $0) }
    }

    /// No flags: every evaluation gives the caller's code default.
    static let empty = FlagSnapshot(flags: CompiledFlagSet(flags: []), definitions: [:], revision: nil, source: .defaults, asOf: 0)

    var fractionalAlgorithm: FractionalAlgorithm { flags.options.fractionalAlgorithm }

    /// Why an outcome of `flag` under `variant` is not evidence about this environment: the flag
    /// is not served, or has no such variant. Nil when it is (a nil variant, the code default, is
    /// always accepted for a served flag).
    func outcomeProblem(flag: String, variant: String?) -> OutcomeProblem? {
        guard let definition = definitions[flag] else { return .unknownFlag }
        guard let variant else { return nil }
        guard case .object(let variants)? = definition["variants"] else { return .unknownVariant(known: []) }
        return variants[variant] == nil ? .unknownVariant(known: variants.keys.sorted()) : nil
    }

    /// The variants a served flag has, sorted; empty for a flag not served (or without variants).
    func variantNames(of flag: String) -> [String] {
        guard case .object(let variants)? = definitions[flag]?["variants"] else { return [] }
        return variants.keys.sorted()
    }
}

/// Why an outcome cannot be recorded (see ``FlagpoleClient/outcomeProblem(flag:variant:)``).
package enum OutcomeProblem: Sendable, Hashable {
    /// The client serves no flag of that key.
    case unknownFlag
    /// The flag has no variant of that name; `known` are the ones it has, sorted.
    case unknownVariant(known: [String])
}

/// A new snapshot and what changed on the way to it.
struct SnapshotUpdate {
    var snapshot: FlagSnapshot
    /// Flags whose effective definition (or flag-set metadata) changed, added and removed ones too.
    var changed: Set<String>
    /// Flags that could not be used, each with why; each kept its last good version if it had one.
    var malformed: [(key: String, reason: String)]
}

/// Builds snapshots: from a full store read, from a change event, or from a flag document (the
/// disk copy, flag files). A malformed flag keeps its last good version; the others update.
enum SnapshotBuilder {
    /// The result of compiling one definition.
    enum Compiled {
        case good(CompiledFlag)
        /// Unusable: it would evaluate to PARSE_ERROR for everyone.
        case malformed(CompiledFlag, String)
    }

    /// Compiles one effective definition against a template set's metadata and options, and checks
    /// that it is usable (an object whose evaluation is not a PARSE_ERROR).
    static func compile(key: String, definition: JSONValue, template: CompiledFlagSet) -> Compiled {
        let flag = template.compileFlag(key: key, definition: definition)
        guard case .object = definition else { return .malformed(flag, "the definition is not a JSON object") }
        let probe = CompiledFlagSet(flags: [flag], metadata: template.metadata, options: template.options).evaluate(key)
        if probe.errorCode == .parseError { return .malformed(flag, probe.errorMessage ?? "unusable definition") }
        return .good(flag)
    }

    /// Everything, from one atomic read of the store.
    static func full(from store: StoreSnapshot, layout: StoreLayout, previous: FlagSnapshot, time: Double) -> SnapshotUpdate {
        let algorithm = store.meta["fractionalAlgorithm"].flatMap(FractionalAlgorithm.init(rawValue:)) ?? .v3
        let metadata = store.flagSetMetadata
        let sameShape = previous.flags.metadata == metadata && previous.fractionalAlgorithm == algorithm
        let template = CompiledFlagSet(flags: [], metadata: metadata, options: CompiledFlagSet.Options(fractionalAlgorithm: algorithm))

        // Entries the store could not read, by flag key.
        var problems: [String: String] = [:]
        for problem in store.problems {
            for hash in [layout.flags, layout.overrides] {
                if let key = problemField(problem.message, hash: hash) { problems[key] = problem.message }
            }
        }

        var flags: [CompiledFlag] = []
        var definitions: [String: JSONValue] = [:]
        var malformed: [(key: String, reason: String)] = []
        /// Keeps the last good version of `key`; false when there is none.
        func keepPrevious(_ key: String) -> Bool {
            guard let old = previous.definitions[key] else { return false }
            if sameShape, let compiled = previous.flags.flag(key) {
                flags.append(compiled)
            } else {
                flags.append(template.compileFlag(key: key, definition: old))
            }
            definitions[key] = old
            return true
        }

        for key in Set(store.definitions.keys).union(problems.keys).sorted() {
            if let problem = problems[key] {
                malformed.append((key, problem))
                if !keepPrevious(key), let definition = store.definitions[key] {
                    // An unreadable override and no earlier version: serve the definition alone.
                    flags.append(template.compileFlag(key: key, definition: definition))
                    definitions[key] = definition
                }
                continue
            }
            guard let effective = store.effectiveDefinition(of: key) else { continue }
            if sameShape, previous.definitions[key] == effective, let compiled = previous.flags.flag(key) {
                flags.append(compiled)
                definitions[key] = effective
                continue
            }
            switch compile(key: key, definition: effective, template: template) {
            case .good(let compiled):
                flags.append(compiled)
                definitions[key] = effective
            case .malformed(let compiled, let reason):
                malformed.append((key, reason))
                if !keepPrevious(key) {
                    flags.append(compiled)
                    definitions[key] = effective
                }
            }
        }

        var changed: Set<String> = []
        if sameShape {
            for (key, definition) in definitions where previous.definitions[key] != definition { changed.insert(key) }
            for key in previous.definitions.keys where definitions[key] == nil { changed.insert(key) }
        } else {
            changed = Set(definitions.keys).union(previous.definitions.keys)
        }
        let set = CompiledFlagSet(flags: flags, metadata: metadata, options: template.options)
        return SnapshotUpdate(
            snapshot: FlagSnapshot(flags: set, definitions: definitions, revision: store.revision, source: .redis, asOf: time),
            changed: changed, malformed: malformed)
    }

    /// The flags one change event names, applied to `previous` (same metadata and options).
    static func incremental(
        states: [String: ChangeEvent.FlagState], changed keys: [String], removed: [String], revision: Int64,
        previous: FlagSnapshot, time: Double
    ) -> SnapshotUpdate {
        let template = previous.flags
        var definitions = previous.definitions
        var replaced: [String: CompiledFlag] = [:]
        var changed: Set<String> = []
        var malformed: [(key: String, reason: String)] = []
        for key in keys {
            guard let state = states[key] else {
                malformed.append((key, "its definition in Redis is missing or is not valid JSON"))
                continue
            }
            var effective = state.definition
            if let override = state.override {
                do {
                    effective = try OverrideRecord(json: override).override.apply(to: effective)
                } catch {
                    malformed.append((key, "its override in Redis is unreadable: \(error.message)"))
                    continue
                }
            }
            if definitions[key] == effective, template.flag(key) != nil { continue }
            switch compile(key: key, definition: effective, template: template) {
            case .good(let compiled):
                replaced[key] = compiled
                definitions[key] = effective
                changed.insert(key)
            case .malformed(let compiled, let reason):
                malformed.append((key, reason))
                if definitions[key] == nil {
                    replaced[key] = compiled
                    definitions[key] = effective
                    changed.insert(key)
                }
            }
        }
        var gone: Set<String> = []
        for key in removed where definitions.removeValue(forKey: key) != nil {
            gone.insert(key)
            changed.insert(key)
        }
        let set: CompiledFlagSet
        if replaced.isEmpty && gone.isEmpty {
            set = template
        } else {
            var flags: [CompiledFlag] = []
            flags.reserveCapacity(template.flagKeys.count + replaced.count)
            for key in template.flagKeys where replaced[key] == nil && !gone.contains(key) {
                if let f = template.flag(key) { flags.append(f) }
            }
            flags.append(contentsOf: replaced.values)
            set = CompiledFlagSet(flags: flags, metadata: template.metadata, options: template.options)
        }
        return SnapshotUpdate(
            snapshot: FlagSnapshot(flags: set, definitions: definitions, revision: revision, source: .redis, asOf: time),
            changed: changed, malformed: malformed)
    }

    /// A snapshot of a flag document (`{"flags": …, "metadata": …}`) with `$ref`s resolved or
    /// `$evaluators` present: the disk copy or the flag files. Malformed flags stay in (they
    /// evaluate to the caller's default) and are reported.
    static func document(
        _ document: JSONValue, algorithm: FractionalAlgorithm, source: FlagpoleClient.Source, revision: Int64?, time: Double
    ) -> (FlagSnapshot, malformed: [(key: String, reason: String)]) {
        let metadata = (document["metadata"]?.objectValue ?? [:]).filter { !$0.value.isNull }
        let evaluators = document["$evaluators"]?.objectValue ?? [:]
        let options = CompiledFlagSet.Options(fractionalAlgorithm: algorithm)
        let template = CompiledFlagSet(flags: [], metadata: metadata, evaluators: evaluators, options: options)
        var flags: [CompiledFlag] = []
        var definitions: [String: JSONValue] = [:]
        var malformed: [(key: String, reason: String)] = []
        for (key, definition) in document["flags"]?.objectValue ?? [:] {
            switch compile(key: key, definition: definition, template: template) {
            case .good(let f):
                flags.append(f)
            case .malformed(let f, let reason):
                flags.append(f)
                malformed.append((key, reason))
            }
            definitions[key] = definition
        }
        let set = CompiledFlagSet(flags: flags, metadata: metadata, evaluators: evaluators, options: options)
        return (FlagSnapshot(flags: set, definitions: definitions, revision: revision, source: source, asOf: time), malformed)
    }

    /// The field a store problem names (`<hash> field '<key>': …`), when it is about `hash`.
    static func problemField(_ message: String, hash: String) -> String? {
        let prefix = hash + " field '"
        guard message.hasPrefix(prefix) else { return nil }
        let rest = message.dropFirst(prefix.count)
        guard let end = rest.range(of: "': ") else { return nil }
        return String(rest[..<end.lowerBound])
    }
}
