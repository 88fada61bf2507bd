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
    /// Options for the files `flagctl` validates and syncs: the guard-policy metadata is checked
    /// too, and the form of the lifecycle metadata (`expires`, `owner`); with `now` (Unix seconds),
    /// flags past their expiry are warned about (`flagctl validate`). Default: form only.
    package static func checkingGuardPolicy(fractionalAlgorithm: FractionalAlgorithm = .v3, now: Int64? = nil) -> Self {
        var options = Self(fractionalAlgorithm: fractionalAlgorithm, metadataRules: [GuardPolicy.metadataRules])
        options.lifecycle = FlagLifecycle.Check(now: now)
        return options
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
