import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore

extension EnvironmentControl {
    /// Reads what the promotion gate needs from the source environment (`source`, in the same
    /// Redis) and decides (``PromotionGate/decide(_:)``). `targetDefinition` is this environment's
    /// live definition of the flag (synced definition with its override applied).
    package func promotionGate(
        flag: String, variant: String, requirePassIn source: String?, targetDefinition: JSONValue?, force: Bool
    ) async throws -> PromotionGate.Decision {
        var input = PromotionGate.Input(
            flag: flag, variant: variant, environment: environment, requirePassIn: source, sourceRecord: nil, sourceDefinition: nil,
            targetDefinition: targetDefinition, force: force)
        if let source {
            let other = try FlagStore(client: store.client, environment: source)
            let live = try await other.read(flag: flag)
            input.sourceDefinition = live.definition.map { d in live.override.map { $0.override.apply(to: d) } ?? d }
            input.sourceRecord = try await other.rollout(flag: flag)
        }
        return PromotionGate.decide(input)
    }

    /// The alert a forced start sends: which freeze windows and which promotion gate it went
    /// through, who forced it and why. Nil when nothing was forced.
    package static func forcedStartAlert(_ record: RolloutRecord, environment: String, at: Int64) -> Alert? {
        guard !record.forcedWindows.isEmpty || record.forcedGate != nil else { return nil }
        var lines: [String] = []
        if !record.forcedWindows.isEmpty { lines.append("Freeze window(s) overridden: \(record.forcedWindows.joined(separator: ", ")).") }
        if let gate = record.forcedGate { lines.append("Promotion gate overridden: \(gate).") }
        lines.append("Forced by \(record.startedBy)" + (record.reason.map { ": \($0)" } ?? " (no reason given)") + ".")
        lines.append(
            "Rollout \(record.id): \(record.flag) → \(record.targetVariant), steps \(record.steps.map { "\($0)%" }.joined(separator: " → ")).")
        var details: [String: JSONValue] = [
            "forcedWindows": .array(record.forcedWindows.map { .string($0) }), "startedBy": .string(record.startedBy),
            "target": .string(record.targetVariant),
        ]
        if let gate = record.forcedGate { details["forcedGate"] = .string(gate) }
        if let reason = record.reason { details["reason"] = .string(reason) }
        return Alert(
            severity: .warning, title: "\(environment): \(record.flag) rollout started with --force", text: lines.joined(separator: "\n"),
            environment: environment, flag: record.flag, rolloutID: record.id, details: .object(details), at: at,
            // A target that announces every change of the environment gets it from the daemon's
            // notification of the same audit entry instead (ChangeNotice says what was forced).
            auditedAction: "rollout-start")
    }

    /// What `flagctl promote` shows and starts: the flag in the source's files and this
    /// environment's, what this environment serves now and would serve once the rollout completes,
    /// the variant that completed in the source, and the gate's decision.
    package struct PromotionPlan: Sendable {
        /// The source environment (`test`).
        package var source: String
        /// The flag.
        package var flag: String
        /// The variant to roll out: `--variant`, else the one the source's last rollout completed with.
        package var variant: String?
        /// The flag as the source's files define it (`$ref` resolved); nil when absent.
        package var sourceFile: JSONValue?
        /// The flag as this environment's files define it; nil when absent.
        package var targetFile: JSONValue?
        /// What this environment serves now (definition with override applied); nil when not synced.
        package var liveNow: JSONValue?
        /// What it would serve once the rollout completes (the variant for everyone).
        package var liveAfter: JSONValue?
        /// The gate's decision for `variant` (always checked against `source`).
        package var gate: PromotionGate.Decision?
        /// The guard policy the rollout would start with (the flag's metadata over the project's).
        package var policy: GuardPolicy

        /// The fields that differ between the two files, `(field, source's, this environment's)`.
        package var fileDifferences: [(field: String, source: JSONValue?, target: JSONValue?)] {
            Self.differences(sourceFile, targetFile)
        }

        /// The fields that differ between what is served now and after.
        package var liveDifferences: [(field: String, source: JSONValue?, target: JSONValue?)] {
            Self.differences(liveNow, liveAfter)
        }

        static func differences(_ a: JSONValue?, _ b: JSONValue?) -> [(field: String, source: JSONValue?, target: JSONValue?)] {
            let l = a?.objectValue ?? [:], r = b?.objectValue ?? [:]
            return Set(l.keys).union(r.keys).sorted().compactMap { k in l[k] == r[k] ? nil : (k, l[k], r[k]) }
        }
    }

    /// Computes the plan of `flagctl promote FLAG --from SOURCE` into this environment. Reads
    /// both environments' files and Redis; writes nothing.
    package func promotionPlan(flag: String, from source: String, variant requested: String?, force: Bool) async throws -> PromotionPlan {
        let configLoad = directory.loadConfig()
        if configLoad.hasErrors {
            let first = configLoad.diagnostics.first { $0.severity == .error }.map { $0.description } ?? ""
            throw StoreError(
                code: .invalidInput, message: "the project config \(configLoad.path ?? "") is invalid: \(first); fix it (flagctl validate)")
        }
        guard source != environment else {
            throw StoreError(
                code: .invalidInput, message: "--from and --to both name \(environment): promote from another environment, e.g. --from test")
        }
        if let required = configLoad.config.environment(named: environment)?.requirePassIn, required != source {
            throw StoreError(
                code: .invalidInput,
                message:
                    "\(environment) requires a pass in \(required) (requirePassIn in \(configLoad.path ?? "the project config")), not in \(source): promote --from \(required)"
            )
        }
        let sourceStore = try FlagStore(client: store.client, environment: source)
        func fileDefinition(_ env: String) throws -> JSONValue? {
            let load = try directory.loadEnvironment(env)
            if load.hasErrors {
                let first = load.diagnostics.first(where: \.isError).map(\.description) ?? ""
                throw StoreError(code: .invalidInput, message: "the flag files of \(env) are invalid: \(first); fix them first (flagctl validate)")
            }
            return FlagDocument.resolvedFlags(load.document)[flag]
        }
        let sourceFile = try fileDefinition(source)
        let targetFile = try fileDefinition(environment)
        let live = try await store.read(flag: flag)
        guard let definition = live.definition else {
            throw StoreError(
                code: .flagNotFound,
                message: "flag '\(flag)' is not in \(environment)"
                    + (targetFile == nil
                        ? ": add it to flags/\(environment)/ and run: flagctl sync --env \(environment)"
                        : " yet (it is in the files): run: flagctl sync --env \(environment)"),
                key: store.layout.flags)
        }
        let liveNow = live.override.map { $0.override.apply(to: definition) } ?? definition
        let sourceRecord = try await sourceStore.rollout(flag: flag)
        var variant = requested
        if variant == nil, let r = sourceRecord, r.status == .completed, !r.dryRun { variant = r.targetVariant }
        var plan = PromotionPlan(
            source: source, flag: flag, variant: variant, sourceFile: sourceFile, targetFile: targetFile, liveNow: liveNow, liveAfter: nil,
            gate: nil, policy: configLoad.config.guardPolicy(forFlagMetadata: definition["metadata"]))
        guard let variant else { return plan }
        plan.liveAfter = FlagOverride.variant(variant).apply(to: liveNow)
        plan.gate = try await promotionGate(flag: flag, variant: variant, requirePassIn: source, targetDefinition: liveNow, force: force)
        return plan
    }
}
