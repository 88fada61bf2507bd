import FlagpoleCore

extension FlagSnapshot {
    /// The flag set this snapshot evaluates, as one flagd document: every effective definition
    /// (its live override applied when the snapshot was built, by ``FlagOverride/apply(to:)``),
    /// the flag-set metadata, and `$evaluators` when the source had them. A flagd engine that
    /// evaluates this document gives what this snapshot gives.
    var flagdDocument: JSONValue {
        var document: [String: JSONValue] = ["flags": .object(definitions), "metadata": .object(flags.metadata)]
        if !flags.evaluators.isEmpty { document["$evaluators"] = .object(flags.evaluators) }
        return .object(document)
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
