/// The text of one flag file, as read from disk by the caller.
package struct FlagSource: Sendable, Hashable {
    /// The path to show in diagnostics (as given; relative paths stay relative).
    package var path: String
    /// The file's contents.
    package var text: String

    /// Creates a source.
    package init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}

/// One environment's flag set, merged from its files and validated.
///
/// ``document`` is a flagd flag-definition document — `{"flags": …, "$evaluators": …, "metadata": …}`
/// — that the evaluation engine can load as it is (`$ref`s are left for the engine to resolve).
/// Use it only when ``hasErrors`` is false: with errors it holds whatever could be read.
package struct FlagSetLoad: Sendable {
    /// The merged document: `flags` always; `$evaluators` and `metadata` when any file has them.
    package var document: JSONValue
    /// Where each flag is defined (its first definition, when it is defined twice).
    package var flagLocations: [String: FileLocation]
    /// Where each shared evaluator is defined.
    package var evaluatorLocations: [String: FileLocation]
    /// The files read, in the order given.
    package var files: [String]
    /// Every problem found, sorted by file, line and column.
    package var diagnostics: [Diagnostic]

    /// Creates a load from its parts.
    package init(
        document: JSONValue, flagLocations: [String: FileLocation], evaluatorLocations: [String: FileLocation],
        files: [String], diagnostics: [Diagnostic]
    ) {
        self.document = document
        self.flagLocations = flagLocations
        self.evaluatorLocations = evaluatorLocations
        self.files = files
        self.diagnostics = diagnostics
    }

    /// The flag definitions, by key.
    package var flags: [String: JSONValue] { document["flags"]?.objectValue ?? [:] }
    /// The shared evaluators, by name.
    package var evaluators: [String: JSONValue] { document["$evaluators"]?.objectValue ?? [:] }
    /// The flag-set metadata.
    package var metadata: [String: JSONValue] { document["metadata"]?.objectValue ?? [:] }
    /// How many diagnostics are errors.
    package var errorCount: Int { diagnostics.count { $0.severity == .error } }
    /// How many diagnostics are warnings.
    package var warningCount: Int { diagnostics.count { $0.severity == .warning } }
    /// Whether any diagnostic is an error: the flag set must not be synced.
    package var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}

/// Reads, merges and validates the flag files of one environment.
///
/// Pure: the caller reads the files (sorted, for stable results) and hands over their text.
/// Every problem of every file is reported in one run.
package enum FlagSetLoader {
    /// How to validate.
    package struct Options: Sendable {
        /// The algorithm `fractional` uses in this flag set; some warnings depend on it. Default `.v3`.
        package var fractionalAlgorithm: FractionalAlgorithm
        /// Metadata vocabularies to validate, such as the watcher's `rollout.*` keys; none by default.
        package var metadataRules: [FlagMetadataRules]
        /// Whether (and against what time) flags' `expires` and `owner` metadata are checked
        /// (``FlagLifecycle``): nil (the default) checks neither; `flagctl` checks their form, and
        /// `flagctl validate` warns about flags past their expiry.
        package var lifecycle: FlagLifecycle.Check?

        /// Creates options.
        package init(fractionalAlgorithm: FractionalAlgorithm = .v3) {
            self.fractionalAlgorithm = fractionalAlgorithm
            self.metadataRules = []
        }

        /// Creates options that also validate the given metadata vocabularies.
        package init(fractionalAlgorithm: FractionalAlgorithm = .v3, metadataRules: [FlagMetadataRules]) {
            self.fractionalAlgorithm = fractionalAlgorithm
            self.metadataRules = metadataRules
        }
    }

    /// Loads one environment from its files: parses each, merges `flags`, `$evaluators` and
    /// `metadata`, and validates everything.
    ///
    /// A flag key (or evaluator name) defined in two files is an error naming both places;
    /// flag-set metadata keys may repeat only with equal values.
    package static func load(_ sources: [FlagSource], options: Options = Options()) -> FlagSetLoad {
        var diagnostics: [Diagnostic] = []
        var parts: [FileParts] = []
        for source in sources {
            let document = SourceDocument.parseForLoading(path: source.path, text: source.text)
            diagnostics += document.diagnostics
            parts.append(FileParts(document))
        }
        for i in parts.indices { parts[i].readTopLevel() }

        // Evaluators first: every flag of the environment may reference any of them.
        var evaluators: [String: JSONValue] = [:]
        var evaluatorLocations: [String: FileLocation] = [:]
        for i in parts.indices {
            for (name, body, _, here) in parts[i].evaluators {
                if let first = evaluatorLocations[name] {
                    parts[i].sink.diagnostics.append(
                        Diagnostic(
                            .error, at: here, message: "evaluator \"\(name)\" is defined twice in this environment: here and at \(first)",
                            hint: "keep one definition"))
                } else {
                    evaluators[name] = body
                    evaluatorLocations[name] = here
                }
            }
        }

        let validator = FlagDefinitionValidator(
            evaluators: evaluators, algorithm: options.fractionalAlgorithm, metadataRules: options.metadataRules, lifecycle: options.lifecycle)
        let flagCount = parts.reduce(0) { $0 + $1.flags.count }
        var flags: [String: JSONValue] = [:]
        flags.reserveCapacity(flagCount)
        var flagLocations: [String: FileLocation] = [:]
        flagLocations.reserveCapacity(flagCount)
        var metadata: [String: JSONValue] = [:]
        var metadataOrigin: [String: FileLocation] = [:]
        for i in parts.indices {
            for (name, body, pointer, _) in parts[i].evaluators {
                validator.checkEvaluator(name: name, body: body, at: LazyPointer(pointer), into: &parts[i].sink)
            }
            for (key, value, pointer, here) in parts[i].flags {
                validator.checkFlag(key: key, value: value, at: LazyPointer(pointer), into: &parts[i].sink)
                if let first = flagLocations[key] {
                    parts[i].sink.diagnostics.append(
                        Diagnostic(
                            .error, at: here, flagKey: key,
                            message: "flag \"\(key)\" is defined twice in this environment: here and at \(first)",
                            hint: "a flag key may appear once per environment; remove or rename one of them"))
                } else {
                    flags[key] = value
                    flagLocations[key] = here
                }
            }
            if let setMetadata = parts[i].metadata {
                validator.checkMetadata(setMetadata.value, flag: nil, at: LazyPointer(setMetadata.pointer), into: &parts[i].sink)
                for (key, value) in setMetadata.value.objectValue ?? [:] {
                    let p = JSONPointer.child(setMetadata.pointer, key)
                    let here = parts[i].sink.document.location(of: p)
                    if let existing = metadata[key], existing != value {
                        parts[i].sink.diagnostics.append(
                            Diagnostic(
                                .error, at: here,
                                message:
                                    "flag-set metadata \"\(key)\" is \(MessageText.literal(value)) here but \(MessageText.literal(existing)) at \(metadataOrigin[key]!)",
                                hint: "set it in one file only"))
                    } else if metadata[key] == nil {
                        metadata[key] = value
                        metadataOrigin[key] = here
                    }
                }
            }
            diagnostics += parts[i].sink.diagnostics
        }

        var document: [String: JSONValue] = ["flags": .object(flags)]
        if parts.contains(where: \.hasEvaluators) { document["$evaluators"] = .object(evaluators) }
        if parts.contains(where: { $0.metadata != nil }) { document["metadata"] = .object(metadata) }
        return FlagSetLoad(
            document: .object(document), flagLocations: flagLocations, evaluatorLocations: evaluatorLocations,
            files: sources.map(\.path), diagnostics: Diagnostic.sorted(diagnostics))
    }

    /// Loads a single file as a flag set of its own.
    package static func load(path: String, text: String, options: Options = Options()) -> FlagSetLoad {
        load([FlagSource(path: path, text: text)], options: options)
    }
}

/// The top-level parts of one flag file.
private struct FileParts {
    var sink: DiagnosticSink
    /// Each flag in file order, with its pointer and where it is named.
    var flags: [(key: String, value: JSONValue, pointer: String, location: FileLocation)] = []
    var evaluators: [(name: String, body: JSONValue, pointer: String, location: FileLocation)] = []
    var metadata: (value: JSONValue, pointer: String)?
    var hasEvaluators = false

    static let topLevelKeys: Set<String> = ["$schema", "flags", "$evaluators", "metadata"]

    init(_ document: SourceDocument) {
        sink = DiagnosticSink(document: document)
    }

    /// The members of `object` in the order they stand in the file, each with its pointer and
    /// where it is named.
    private func ordered(_ object: [String: JSONValue], under pointer: String) -> [(String, JSONValue, String, FileLocation)] {
        var members: [(String, JSONValue, String, FileLocation)] = []
        members.reserveCapacity(object.count)
        for (key, value) in object {
            let p = JSONPointer.child(pointer, key)
            members.append((key, value, p, sink.document.keyLocation(of: p)))
        }
        members.sort { a, b in
            let la = a.3, lb = b.3
            if la.line != lb.line { return la.line < lb.line }
            if la.column != lb.column { return la.column < lb.column }
            return a.0 < b.0
        }
        return members
    }

    mutating func readTopLevel() {
        guard let root = sink.document.value else { return }
        guard case .object(let top) = root else {
            sink.error(
                at: "", flag: nil, "a flag file must be an object with \"flags\", not \(root.typeName)",
                hint: "start with flags: (YAML) or {\"flags\": {…}} (JSON)")
            return
        }
        for key in top.keys.sorted() where !Self.topLevelKeys.contains(key) {
            var hint = "a flag file has flags, $evaluators, metadata and $schema"
            if let s = MessageText.suggestion(for: key, among: Self.topLevelKeys) { hint = "did you mean \"\(s)\"?" }
            sink.warning(at: JSONPointer.child("", key), atKey: true, flag: nil, "unknown top-level key \"\(key)\" is ignored", hint: hint)
        }
        switch top["flags"] {
        case nil where top["$evaluators"] == nil && top["metadata"] == nil:
            sink.error(
                at: "", flag: nil, "missing \"flags\"",
                hint: "a flag file needs flags (only a file of shared $evaluators or metadata may leave it out)")
        case nil:
            break
        case .object(let map)?:
            flags = ordered(map, under: "/flags")
        case .array(let list)?:
            readFlagArray(list)
        case let other?:
            sink.error(
                at: "/flags", flag: nil, "flags must be an object keyed by flag key, not \(other.typeName)",
                hint: "flagd refuses to load the file")
        }
        switch top["$evaluators"] {
        case nil: break
        case .object(let map)?:
            hasEvaluators = true
            evaluators = ordered(map, under: "/$evaluators")
        case let other?:
            sink.error(
                at: "/$evaluators", flag: nil, "$evaluators must be an object of name: rule, not \(other.typeName)",
                hint: "flagd refuses to load the file")
        }
        if let m = top["metadata"] { metadata = (m, "/metadata") }
    }

    /// flagd's import form: `flags` as a list of flags that each carry their `key`.
    private mutating func readFlagArray(_ list: [JSONValue]) {
        sink.warning(
            at: "/flags", flag: nil, "flags is a list (flagd's import form); Flagpole reads it as an object keyed by each flag's \"key\"",
            hint: "write flags as an object: flags: {my-flag: {state: …}}")
        var document = sink.document.withFullSourceMap()
        var listed: [(key: String, value: JSONValue, pointer: String)] = []
        for (i, element) in list.enumerated() {
            let elementPointer = JSONPointer.child("/flags", i)
            guard case .object(var flag) = element, case .string(let key)? = flag["key"], !key.isEmpty else {
                sink.error(
                    at: elementPointer, flag: nil, "each flag in the flags list needs a \"key\" (a non-empty string)",
                    hint: "flagd refuses to load the file")
                continue
            }
            flag["key"] = nil
            let pointer = JSONPointer.child("/flags", key)
            document.sourceMap = document.sourceMap.rerooted(from: elementPointer, to: pointer)
            listed.append((key, .object(flag), pointer))
        }
        let diagnostics = sink.diagnostics
        sink = DiagnosticSink(document: document)
        sink.diagnostics = diagnostics
        flags = listed.map { ($0.key, $0.value, $0.pointer, document.keyLocation(of: $0.pointer)) }
    }
}
