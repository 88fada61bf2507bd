import FlagpoleCore

extension GuardPolicy {
    /// The `rollout.*` metadata vocabulary, for ``FlagSetLoader/Options``: loading flag files with
    /// these rules reports an unknown `rollout.` key (a warning, with a suggestion) and a value the
    /// watcher could not honour (an error), at the key's line.
    package static let metadataRules = FlagMetadataRules(
        name: "guard-policy", prefix: metadataPrefix, names: Field.allCases.map(\.rawValue)
    ) { name, value in
        guard let field = Field(rawValue: name) else { return nil }
        var policy = GuardPolicy()
        return policy.set(field, from: value).map { ($0.message, $0.hint) }
    }
}

extension FlagSetLoader.Options {
    /// Options for the files `flagctl` validates and syncs: the guard-policy metadata is checked too.
    package static func checkingGuardPolicy(fractionalAlgorithm: FractionalAlgorithm = .v3) -> Self {
        Self(fractionalAlgorithm: fractionalAlgorithm, metadataRules: [GuardPolicy.metadataRules])
    }
}

extension FlagSetLoad {
    /// The guard policy a flag's `rollout.*` metadata sets (unset fields inherit; see
    /// ``GuardPolicy/overriding(_:)``), or nil when there is no such flag.
    package func guardPolicy(forFlag key: String) -> GuardPolicy? {
        guard let flag = flags[key] else { return nil }
        return GuardPolicy(flagMetadata: flag["metadata"])
    }
}

extension ValidationReport {
    /// Adds a project config load.
    package mutating func add(_ config: ProjectConfigLoad) {
        add(config.diagnostics)
        if config.path != nil { fileCount += 1 }
    }
}
