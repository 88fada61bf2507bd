import FlagpoleCore
import FlagpoleStore

/// A flag evaluated as Redis serves it now, by the engine every client uses: what `flagctl get
/// --context` and the web console's "evaluate for a context" form answer.
package enum LiveEvaluation {
    /// `flag` (its effective definition: override applied) for `context`, with the flag set's
    /// metadata, compiled with the environment's fractional algorithm (`meta` field
    /// `fractionalAlgorithm`; default v3).
    package static func evaluate(
        _ flag: String, effective: JSONValue, flagSetMetadata: [String: JSONValue], fractionalAlgorithm: String?, context: EvaluationContext
    ) -> EvaluationResult {
        let algorithm = fractionalAlgorithm.flatMap(FractionalAlgorithm.init(rawValue:)) ?? .v3
        let set = CompiledFlagSet(
            ["flags": [flag: effective], "metadata": .object(flagSetMetadata)], options: .init(fractionalAlgorithm: algorithm))
        return set.evaluate(flag, context: context)
    }

    /// The `meta` fields ``evaluate(_:effective:flagSetMetadata:fractionalAlgorithm:context:)`` reads.
    package static let metaFields = ["fractionalAlgorithm", "flagSetMetadata"]

    /// The flag-set metadata stored in `meta`'s `flagSetMetadata` field.
    package static func flagSetMetadata(_ text: String?) -> [String: JSONValue] {
        text.flatMap { try? JSONParser.parse($0) }?.objectValue ?? [:]
    }
}

extension StoreSnapshot {
    /// `flag` evaluated for `context` as this snapshot serves it (see ``LiveEvaluation``); nil when
    /// the flag is not in the snapshot.
    package func evaluate(_ flag: String, context: EvaluationContext) -> EvaluationResult? {
        guard definitions[flag] != nil, let effective = effectiveDefinition(of: flag) else { return nil }
        return LiveEvaluation.evaluate(
            flag, effective: effective, flagSetMetadata: flagSetMetadata, fractionalAlgorithm: meta["fractionalAlgorithm"], context: context)
    }
}
