import FlagpoleCore

extension FlagSnapshot {
    /// The flag set this snapshot evaluates, as one flagd document: every effective definition
    /// (its live override applied when the snapshot was built, by ``FlagOverride/apply(to:)``),
    /// the flag-set metadata, and `$evaluators` when the source had them. A flagd engine that
    /// evaluates this document gives what this snapshot gives.
    var flagdDocument: JSONValue {
        var portable = definitions
        for (key, definition) in definitions {
            guard case .object(var flag) = definition, let targeting = flag["targeting"] else { continue }
            flag["targeting"] = targeting.withExplicitCatDefaults
            portable[key] = .object(flag)
        }
        var document: [String: JSONValue] = ["flags": .object(portable), "metadata": .object(flags.metadata)]
        if !flags.evaluators.isEmpty { document["$evaluators"] = .object(flags.evaluators.mapValues(\.withExplicitCatDefaults)) }
        return .object(document)
    }
}

extension JSONValue {
    /// This rule with every `{"var": PATH}` directly inside a `cat` written `{"var": [PATH, ""]}`:
    /// the same rule for this engine, flagd Go and JSON Logic, which all join a missing or null
    /// value as "", and for flagd's Python engine, which would join it as "null" (and bucket a
    /// user without the attribute elsewhere in a `fractional` keyed by `cat`). Nothing else changes.
    var withExplicitCatDefaults: JSONValue {
        switch self {
        case .array(let items):
            return .array(items.map(\.withExplicitCatDefaults))
        case .object(let fields):
            var out = fields.mapValues(\.withExplicitCatDefaults)
            if fields.count == 1, case .array(let pieces)? = out["cat"] {
                out["cat"] = .array(
                    pieces.map { piece in
                        guard case .object(let v) = piece, v.count == 1 else { return piece }
                        switch v["var"] {
                        case .string(let path)?: return ["var": [.string(path), ""]]
                        case .array(let a)? where a.count == 1: return a[0].stringValue.map { ["var": [.string($0), ""]] } ?? piece
                        default: return piece
                        }
                    })
            }
            return .object(out)
        default:
            return self
        }
    }
}

extension FlagpoleClient {
    /// The flags a client serves right now, as a flagd document, for a process that evaluates them
    /// elsewhere (`flagctl daemon`'s flagd sync service).
    package struct EffectiveFlags: Sendable {
        /// Grows with every snapshot the client swaps in; equal generations hold equal documents.
        package var generation: UInt64
        /// The store revision the data reflects; nil for code defaults and flag files.
        package var revision: Int64?
        /// Where the data came from.
        package var source: Source
        /// The bucketing algorithm of `fractional` the environment uses.
        package var fractionalAlgorithm: FractionalAlgorithm
        /// `{"flags": {key: effective definition}, "metadata": {…}}` (and `$evaluators`).
        package var document: JSONValue
    }

    /// The effective flag set: the definitions exactly as this client evaluates them, overrides
    /// applied in the one place the client applies them (the snapshot it built).
    package func effectiveFlags() -> EffectiveFlags {
        let (snapshot, generation) = snapshotAndGeneration
        return EffectiveFlags(
            generation: generation, revision: snapshot.revision, source: snapshot.source,
            fractionalAlgorithm: snapshot.fractionalAlgorithm, document: snapshot.flagdDocument)
    }

    /// The generation of every snapshot swapped in from now on (from Redis, the disk copy or the
    /// flag files); read ``effectiveFlags()`` on each. Ends when ``run()`` ends; a slow consumer
    /// keeps only the newest.
    package func effectiveFlagsChanges() -> AsyncStream<UInt64> {
        swapBroadcaster.makeStream(bufferLimit: 1)
    }
}
