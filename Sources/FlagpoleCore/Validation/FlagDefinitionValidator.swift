/// Checks the flags, evaluators and metadata of one parsed flag file.
///
/// Severity follows flagd (NOTES.md §2): what flagd refuses to load — a wrong-typed field Go cannot
/// decode, a missing required field, a `defaultVariant` that names no variant — is an error; what
/// flagd loads in spite of its schema is a warning, so validation agrees with evaluation. Two of
/// Flagpole's own rules are errors too: a `state` other than `ENABLED`/`DISABLED` (flagd would
/// silently treat a misspelt `DISABLED` as enabled) and, when the loader is given its rules,
/// invalid guard-policy metadata (the watcher could not honour it).
struct FlagDefinitionValidator {
    let evaluators: [String: JSONValue]
    let algorithm: FractionalAlgorithm
    /// Metadata vocabularies to check (see ``FlagMetadataRules``); none by default.
    var metadataRules: [FlagMetadataRules] = []
    /// How `expires` and `owner` are checked (see ``FlagLifecycle``); nil: not at all.
    var lifecycle: FlagLifecycle.Check? = nil

    static let flagProperties: Set<String> = ["state", "variants", "defaultVariant", "targeting", "metadata"]

    /// Checks one flag definition.
    ///
    /// Most flags have nothing to report: a first pass checks without building any locations, and
    /// only when it finds something does the flag get checked again with them.
    func checkFlag(key: String, value: JSONValue, at pointer: LazyPointer, into sink: inout DiagnosticSink) {
        var probe = DiagnosticSink(document: sink.document)
        checkDefinition(key: key, value: value, at: NoPointer(), into: &probe)
        guard !probe.diagnostics.isEmpty else { return }
        checkDefinition(key: key, value: value, at: pointer, into: &sink)
    }

    private func checkDefinition<P: PointerPath>(key: String, value: JSONValue, at pointer: P, into sink: inout DiagnosticSink) {
        if key.isEmpty {
            sink.warning(at: pointer, atKey: true, flag: key, "a flag key must not be empty")
        }
        guard case .object(let flag) = value else {
            sink.error(
                at: pointer, flag: key, "a flag must be an object with state and variants, not \(value.typeName)",
                hint: "flagd refuses to load the flag set")
            return
        }
        if flag.keys.contains(where: { !Self.flagProperties.contains($0) }) {
            for property in flag.keys.sorted() where !Self.flagProperties.contains(property) {
                var hint = "a flag has state, variants, defaultVariant, targeting and metadata"
                if let s = MessageText.suggestion(for: property, among: Self.flagProperties) { hint = "did you mean \"\(s)\"?" }
                sink.warning(
                    at: pointer.child(property), atKey: true, flag: key,
                    "unknown property \"\(property)\" is ignored", hint: hint)
            }
        }
        checkState(flag["state"], flag: key, at: pointer, into: &sink)
        let variantNames = checkVariants(flag["variants"], flag: key, at: pointer, into: &sink)
        checkDefaultVariant(flag["defaultVariant"], variants: variantNames, flag: key, at: pointer, into: &sink)
        if let targeting = flag["targeting"] {
            checkTargeting(targeting, variants: variantNames, flag: key, at: pointer.child("targeting"), into: &sink)
        }
        if let metadata = flag["metadata"] {
            checkMetadata(metadata, flag: key, at: pointer.child("metadata"), into: &sink)
        }
    }

    private func checkState<P: PointerPath>(_ state: JSONValue?, flag: String, at pointer: P, into sink: inout DiagnosticSink) {
        let p = pointer.child("state")
        guard let state else {
            sink.error(at: pointer, atKey: true, flag: flag, "missing \"state\"", hint: "add state: ENABLED or state: DISABLED")
            return
        }
        guard case .string(let s) = state else {
            sink.error(
                at: p, flag: flag, "state must be the string ENABLED or DISABLED, not \(MessageText.literal(state))",
                hint: "flagd refuses to load the flag set")
            return
        }
        guard s == "ENABLED" || s == "DISABLED" else {
            var hint = "flagd would treat it as ENABLED"
            if ["ENABLED", "DISABLED"].contains(s.uppercased()) { hint = "write it in capitals: \(s.uppercased())" }
            sink.error(at: p, flag: flag, "state must be ENABLED or DISABLED, not \"\(s)\"", hint: hint)
            return
        }
    }

    /// Checks the variants and returns their names (nil when there are none to check against).
    private func checkVariants<P: PointerPath>(_ variants: JSONValue?, flag: String, at pointer: P, into sink: inout DiagnosticSink) -> Set<String>? {
        let p = pointer.child("variants")
        guard let variants else {
            sink.error(
                at: pointer, atKey: true, flag: flag, "missing \"variants\"",
                hint: "add variants, e.g. variants: {\"on\": true, \"off\": false}")
            return nil
        }
        guard case .object(let map) = variants else {
            sink.error(
                at: p, flag: flag, "variants must be an object of name: value, not \(variants.typeName)",
                hint: "flagd refuses to load the flag set")
            return nil
        }
        if map.isEmpty {
            sink.warning(
                at: p, flag: flag, "the flag has no variants: it can only return the caller's default",
                hint: "add at least one variant")
            return []
        }
        if !Self.needsNameCheck(map) { return Set(map.keys) }
        var kinds: [String: [String]] = [:]
        for name in map.keys.sorted() {
            let value = map[name]!
            let vp = p.child(name)
            if name.isEmpty { sink.warning(at: vp, atKey: true, flag: flag, "a variant name must not be empty") }
            switch value {
            case .array:
                sink.warning(
                    at: vp, flag: flag, "variant \"\(name)\" is an array; flag values are booleans, strings, numbers or objects",
                    hint: "wrap it in an object: {\"items\": [...]}")
            case .null:
                sink.warning(
                    at: vp, flag: flag, "variant \"\(name)\" is null: selecting it gives the caller's default",
                    hint: "give it a value, or remove it")
            default:
                kinds[value.typeName, default: []].append(name)
            }
        }
        if kinds.count > 1 {
            let described = kinds.keys.sorted().map { "\($0) (\(MessageText.quotedList(kinds[$0]!, limit: 4)))" }
            sink.warning(
                at: p, flag: flag, "variants mix value types: \(described.joined(separator: ", "))",
                hint: "give every variant the same type; a typed read of the others answers TYPE_MISMATCH")
        }
        return Set(map.keys)
    }

    /// Whether variants need a closer look: an empty name, an array or null value, or values of
    /// more than one type. Without any, the per-name checks find nothing to report.
    private static func needsNameCheck(_ variants: [String: JSONValue]) -> Bool {
        var type: String?
        for (name, value) in variants {
            if name.isEmpty { return true }
            switch value {
            case .array, .null:
                return true
            default:
                let t = value.typeName
                if let type, type != t { return true }
                type = t
            }
        }
        return false
    }

    private func checkDefaultVariant<P: PointerPath>(
        _ value: JSONValue?, variants: Set<String>?, flag: String, at pointer: P, into sink: inout DiagnosticSink
    ) {
        let p = pointer.child("defaultVariant")
        switch value {
        case nil, .null?, .string("")?:
            return
        case .string(let name)?:
            guard let variants, !variants.contains(name) else { return }
            var hint = "flagd refuses to load a flag set whose defaultVariant names no variant"
            if let s = MessageText.suggestion(for: name, among: variants) { hint = "did you mean \"\(s)\"? " + hint }
            sink.error(
                at: p, flag: flag,
                "defaultVariant \"\(name)\" is not one of the variants (\(MessageText.quotedList(variants.sorted())))",
                hint: hint)
        case .bool(let b)? where variants?.contains(String(b)) == true:
            sink.error(
                at: p, flag: flag, "defaultVariant must be a variant name (a string), not the boolean \(b)",
                hint: "quote it: defaultVariant: \"\(b)\"; flagd refuses to load the flag set")
        case let other?:
            sink.error(
                at: p, flag: flag,
                "defaultVariant must be a variant name (a string) or null, not \(other.typeName) \(MessageText.literal(other))",
                hint: "flagd refuses to load the flag set")
        }
    }

    private func checkTargeting<P: PointerPath>(
        _ targeting: JSONValue, variants: Set<String>?, flag: String, at pointer: P, into sink: inout DiagnosticSink
    ) {
        switch targeting {
        case .null:
            return
        case .object:
            let analyzer = TargetingAnalyzer(evaluators: evaluators, algorithm: algorithm, flagKey: flag, evaluatorName: nil)
            analyzer.checkRule(targeting, at: pointer, into: &sink)
            if let variants, !variants.isEmpty {
                analyzer.checkResults(targeting, at: pointer, variants: variants, into: &sink)
            }
        default:
            sink.warning(
                at: pointer, flag: flag,
                "targeting should be a JsonLogic rule (an object), not \(targeting.typeName): flagd evaluates \(MessageText.literal(targeting)) as a constant",
                hint: "use defaultVariant for a fixed answer, or write a rule like {\"if\": [...]}")
        }
    }

    /// Checks one evaluator of `$evaluators`.
    func checkEvaluator<P: PointerPath>(name: String, body: JSONValue, at pointer: P, into sink: inout DiagnosticSink) {
        let analyzer = TargetingAnalyzer(evaluators: evaluators, algorithm: algorithm, flagKey: nil, evaluatorName: name)
        switch body {
        case .object(let o) where o.count == 1:
            analyzer.checkRule(body, at: pointer, into: &sink)
        default:
            sink.warning(
                at: pointer, flag: nil,
                "evaluator \"\(name)\" should be one JsonLogic operation (an object with one key), not \(MessageText.literal(body))",
                hint: "e.g. {\"in\": [\"@example.com\", {\"var\": \"email\"}]}")
        }
    }

    /// Checks flag or flag-set metadata: scalar values, and `rollout.*` guard-policy keys on flags.
    func checkMetadata<P: PointerPath>(_ metadata: JSONValue, flag: String?, at pointer: P, into sink: inout DiagnosticSink) {
        guard case .object(let map) = metadata else {
            sink.error(
                at: pointer, flag: flag,
                "metadata must be an object of string, number or boolean values, not \(metadata.typeName)",
                hint: "flagd refuses to load the flag set")
            return
        }
        for key in map.keys.sorted() {
            let value = map[key]!
            let p = pointer.child(key)
            switch value {
            case .string, .int, .double, .bool: break
            default:
                sink.warning(
                    at: p, flag: flag, "metadata \"\(key)\" is \(value.typeName); metadata values are strings, numbers or booleans",
                    hint: "flatten it into scalar keys, e.g. \"\(key).name\": \"…\"")
                continue
            }
            if let flag, let lifecycle, key == FlagLifecycle.expiresKey || key == FlagLifecycle.ownerKey {
                checkLifecycle(key, value, metadata: metadata, flag: flag, check: lifecycle, at: p, into: &sink)
                continue
            }
            guard let flag, let rules = metadataRules.first(where: { key.hasPrefix($0.prefix) }) else { continue }
            let name = String(key.dropFirst(rules.prefix.count))
            guard rules.names.contains(name) else {
                var hint = "\(rules.name) keys are " + rules.names.map { rules.prefix + $0 }.joined(separator: ", ")
                if let s = MessageText.suggestion(for: name, among: rules.names) {
                    hint = "did you mean \"\(rules.prefix)\(s)\"?"
                }
                sink.warning(at: p, atKey: true, flag: flag, "unknown \(rules.name) key \"\(key)\" is ignored", hint: hint)
                continue
            }
            if let problem = rules.check(name, value) {
                sink.error(at: p, flag: flag, rules.prefix + problem.message, hint: problem.hint)
            }
        }
    }

    /// `expires` must be a date or an RFC 3339 time (an error otherwise), and past it the flag is
    /// stale (a warning, so `validate --strict` fails); `owner` must be a non-empty string.
    private func checkLifecycle<P: PointerPath>(
        _ key: String, _ value: JSONValue, metadata: JSONValue, flag: String, check: FlagLifecycle.Check, at pointer: P,
        into sink: inout DiagnosticSink
    ) {
        guard key == FlagLifecycle.expiresKey else {
            guard case .string(let owner) = value, !owner.trimmingSpaces().isEmpty else {
                sink.error(
                    at: pointer, flag: flag, "metadata owner must be a team or a person, not \(MessageText.literal(value))",
                    hint: "e.g. owner: \"team-payments\"")
                return
            }
            return
        }
        guard case .string(let text) = value, FlagLifecycle.parseExpiry(text) != nil else {
            sink.error(
                at: pointer, flag: flag, "metadata expires must be a date or an RFC 3339 time, not \(MessageText.literal(value))",
                hint: "e.g. expires: 2027-01-31 (the flag may live through that day, UTC) or expires: 2027-01-31T18:00:00+01:00")
            return
        }
        let lifecycle = FlagLifecycle(metadata: metadata)
        guard let now = check.now, lifecycle.isExpired(at: now) else { return }
        sink.warning(
            at: pointer, flag: flag, "flag \"\(flag)\" \(lifecycle.expiredText(at: now))",
            hint: "remove the flag from the code and the files, or move metadata.expires if it must stay")
    }
}
