import FlagpoleCore

extension FlagpoleClient {
    /// Every flag evaluated against one context, from one snapshot: what an OFREP bulk request
    /// answers.
    package struct BulkEvaluation: Sendable {
        /// One result per flag, in key order. A result whose `value` is nil means "use your code
        /// default" (DISABLED, DEFAULT without a default variant, or an error).
        package var results: [EvaluationResult]
        /// The flag-set metadata (`metadata` of the flag files), without null values.
        package var flagSetMetadata: [String: JSONValue]
        /// Which data the results come from (see ``DataVersion``).
        package var version: DataVersion

        /// A bulk evaluation from its parts.
        package init(results: [EvaluationResult], flagSetMetadata: [String: JSONValue], version: DataVersion) {
            self.results = results
            self.flagSetMetadata = flagSetMetadata
            self.version = version
        }
    }

    /// Names the data an evaluation read: equal versions give equal answers to equal contexts
    /// (rules reading `$flagd.timestamp` aside). For cache validators such as OFREP's `ETag`.
    package struct DataVersion: Sendable, Hashable, CustomStringConvertible {
        /// The environment served.
        package var environment: String
        /// The store revision; nil when the data does not come from Redis (flag files or code defaults).
        package var revision: Int64?
        /// Where the data comes from.
        package var source: Source
        /// When the data was loaded, in Unix seconds: tells two loads of flag files apart.
        package var loadedAt: Double
        /// Whether evaluations report STALE (which changes their reasons, not their values).
        package var isStale: Bool

        /// A version from its parts.
        package init(environment: String, revision: Int64?, source: Source, loadedAt: Double, isStale: Bool) {
            self.environment = environment
            self.revision = revision
            self.source = source
            self.loadedAt = loadedAt
            self.isStale = isStale
        }

        /// `prod@r42` for Redis data (`prod@r42-stale` when stale), `prod@files-1767225600.5`
        /// for the others: stable text to hash.
        package var description: String {
            let base: String
            if let revision {
                base = "\(environment)@r\(revision)"
            } else {
                base = "\(environment)@\(source.rawValue)-\(loadedAt)"
            }
            return isStale ? base + "-stale" : base
        }
    }

    /// Evaluates one flag without a type, as OFREP does: the value as the flag defines it, or nil
    /// when the caller's code default applies (DISABLED, DEFAULT without a default variant, or an
    /// error, whose code is in the result). Counted and marked STALE like the typed accessors.
    ///
    /// Synchronous and without I/O, like ``boolDetails(_:default:context:)``; it never throws.
    ///
    /// - Parameters:
    ///   - key: The flag key.
    ///   - context: The targeting key and attributes rules read. Default: empty.
    ///   - isUse: Whether an application uses the answer (OFREP), so that the flag counts as
    ///     evaluated for `flagctl list --stale`; false for a look (the console). Default: false.
    package func evaluate(_ key: String, context: EvaluationContext = .empty, isUse: Bool = false) -> EvaluationResult {
        let current = snapshot
        var result = current.flags.evaluate(key, context: context)
        if isUse, result.errorCode != .flagNotFound { current.markEvaluated(key) }
        finishRemote(&result)
        return result
    }

    /// Evaluates every flag against one context, from one snapshot, in key order: OFREP's bulk
    /// answer, with the flag-set metadata and the version of the data it read. Every flag counts
    /// as evaluated (the caller receives every value).
    ///
    /// - Parameter context: The targeting key and attributes rules read. Default: empty.
    package func evaluateAll(context: EvaluationContext = .empty) -> BulkEvaluation {
        let current = snapshot
        var results = current.flags.evaluateAll(context: context)
        // The caller received every flag's value: each counts as evaluated.
        current.marks.markAll()
        for index in results.indices { finishRemote(&results[index]) }
        return BulkEvaluation(results: results, flagSetMetadata: current.flags.metadata, version: version(of: current))
    }

    /// The version of the data evaluations read right now (see ``DataVersion``).
    package var dataVersion: DataVersion { version(of: snapshot) }

    /// How many evaluations this client has made since it started, by reason (every reason is
    /// present, zero included).
    package func evaluationTotals() -> [EvaluationReason: Int] {
        var totals: [EvaluationReason: Int] = [:]
        for reason in EvaluationReason.allCases { totals[reason] = evaluationCounts.total(ClientMetrics.index(reason)) }
        return totals
    }

    private func version(of snapshot: FlagSnapshot) -> DataVersion {
        DataVersion(
            environment: configuration.environment, revision: snapshot.revision, source: snapshot.source, loadedAt: snapshot.asOf,
            isStale: staleFlag.load(ordering: .relaxed))
    }

    /// Applies staleness and counts the evaluation, as the typed accessors do.
    private func finishRemote(_ result: inout EvaluationResult) {
        if result.reason != .error, staleFlag.load(ordering: .relaxed) { result.reason = .stale }
        let index = ClientMetrics.index(result.reason)
        ThreadSlot.withCurrent { slot in
            evaluationCounts.add(at: index, stripe: slot.stripe, exclusive: slot.ownsStripe)
        }
    }
}
