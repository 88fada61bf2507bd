import FlagpoleCore

/// One environment of the project (a folder `flags/<name>/`).
package struct EnvironmentConfig: Sendable, Hashable {
    /// The environment's name, which is also its folder's name and its Redis hash tag.
    package var name: String
    /// The environment variable that holds this environment's Redis URL, or nil when the
    /// environment names none (commands then use their `--redis` option or `FLAGPOLE_REDIS_URL`).
    package var redisURLVariable: String?
    /// Whether the environment is production: the web console asks for a second confirmation
    /// (typing the environment's name) before it changes anything there. Default: false.
    package var isProduction: Bool
    /// The environment a rollout must have completed in before the same rollout may start here
    /// (`requirePassIn: test`): the promotion gate of `flagctl rollout start` and `flagctl promote`.
    /// Default: nil (no gate).
    package var requirePassIn: String?

    /// Creates an environment.
    package init(name: String, redisURLVariable: String? = nil, isProduction: Bool = false, requirePassIn: String? = nil) {
        self.name = name
        self.redisURLVariable = redisURLVariable
        self.isProduction = isProduction
        self.requirePassIn = requirePassIn
    }
}

/// The project settings that are not per flag: environments, freeze windows, alert targets, the
/// default guard policy and the fractional algorithm. Lives in `flags/flagpole.yaml` (or `.yml`,
/// `.json`); documented in `docs/project-config.md`.
package struct ProjectConfig: Sendable, Hashable {
    /// The file names the project config may have, in the order they are looked for, inside `flags/`.
    package static let fileNames = ["flagpole.yaml", "flagpole.yml", "flagpole.json"]

    /// The environments, in the order written. Empty means "every folder under `flags/`", with no
    /// settings of their own.
    package var environments: [EnvironmentConfig]
    /// The freeze windows. Default: none.
    package var freezeWindows: [FreezeWindow]
    /// The alert targets. Default: none.
    package var alertTargets: [AlertTarget]
    /// The project's default guard policy, as written: unset fields fall back to ``GuardPolicy/builtIn``.
    package var guardPolicy: GuardPolicy
    /// The bucketing algorithm of `fractional` for every environment. Default: `.v3`.
    package var fractionalAlgorithm: FractionalAlgorithm

    /// Creates a config; every part defaults to empty, `.v3` for the algorithm.
    package init(
        environments: [EnvironmentConfig] = [], freezeWindows: [FreezeWindow] = [], alertTargets: [AlertTarget] = [],
        guardPolicy: GuardPolicy = GuardPolicy(), fractionalAlgorithm: FractionalAlgorithm = .v3
    ) {
        self.environments = environments
        self.freezeWindows = freezeWindows
        self.alertTargets = alertTargets
        self.guardPolicy = guardPolicy
        self.fractionalAlgorithm = fractionalAlgorithm
    }

    /// The settings of an environment, if the config lists it.
    package func environment(named name: String) -> EnvironmentConfig? {
        environments.first { $0.name == name }
    }

    /// The guard policy for a flag: its `rollout.*` metadata over the project's `guard` section
    /// over ``GuardPolicy/builtIn``.
    package func guardPolicy(forFlagMetadata metadata: JSONValue?) -> GuardPolicy {
        GuardPolicy(flagMetadata: metadata).overriding(guardPolicy).overriding(.builtIn)
    }

    /// The freeze windows that forbid starting a rollout in an environment at a Unix time.
    package func activeFreezeWindows(environment: String, unixTime: Int64) -> [FreezeWindow] {
        freezeWindows.filter { $0.applies(toEnvironment: environment) && $0.contains(unixTime: unixTime) }
    }

    /// The alert targets that receive an environment's alerts.
    package func alertTargets(forEnvironment environment: String) -> [AlertTarget] {
        alertTargets.filter { $0.applies(toEnvironment: environment) }
    }
}

/// A project config read from its file, with the problems found.
package struct ProjectConfigLoad: Sendable {
    /// The file read, or nil when there is none (then ``config`` is the default).
    package var path: String?
    /// The settings; parts with errors keep their defaults.
    package var config: ProjectConfig
    /// Every problem found, sorted by line and column.
    package var diagnostics: [Diagnostic]
    /// Where each environment is named in the file, and where the `environments` section starts
    /// (key `""`), for diagnostics about environment folders.
    package var environmentLocations: [String: FileLocation]

    /// Creates a load from its parts.
    package init(
        path: String?, config: ProjectConfig, diagnostics: [Diagnostic], environmentLocations: [String: FileLocation] = [:]
    ) {
        self.path = path
        self.config = config
        self.diagnostics = diagnostics
        self.environmentLocations = environmentLocations
    }

    /// Whether any diagnostic is an error.
    package var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}
