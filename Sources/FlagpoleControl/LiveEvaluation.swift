import FlagpoleCore
import FlagpoleStore

extension StoreSnapshot {
    /// `flag` evaluated for `context` as Redis serves it now: its effective definition (override
    /// applied) with the flag set's metadata, compiled with the environment's fractional algorithm
    /// by the engine every client uses. What `flagctl get --context` and the web console's
    /// "evaluate for a context" form answer. Nil when the flag is not in the snapshot.
    package func evaluate(_ flag: String, context: EvaluationContext) -> EvaluationResult? {
        guard definitions[flag] != nil, let effective = effectiveDefinition(of: flag) else { return nil }
        let algorithm = meta["fractionalAlgorithm"].flatMap(FractionalAlgorithm.init(rawValue:)) ?? .v3
        let set = CompiledFlagSet(
            ["flags": [flag: effective], "metadata": .object(flagSetMetadata)], options: .init(fractionalAlgorithm: algorithm))
        return set.evaluate(flag, context: context)
    }
}
