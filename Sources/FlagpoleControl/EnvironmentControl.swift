import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Foundation

/// What `flagctl` does to one environment: sync, runtime changes, restore, reads.
package struct EnvironmentControl: Sendable {
    package let environment: String
    package let store: FlagStore
    package let directory: FlagDirectory

    package init(environment: String, client: RedisClient, directory: FlagDirectory) throws(StoreError) {
        self.environment = environment
        self.store = try FlagStore(client: client, environment: environment)
        self.directory = directory
    }

    // MARK: - Sync

    package struct SyncOptions: Sendable {
        /// Delete flags that are gone from the files. Default: keep them and say so.
        package var prune = false
        /// Release these pinned flags (their revert override goes too).
        package var unpin: [String] = []
        /// Plan only; write nothing.
        package var dryRun = false
        package var actor = Provenance.defaultActor
        package var reason: String?
        /// Synced flag sets kept for `restore`. Default: 20.
        package var historyLimit = 20

        package init() {}
    }

    package enum SyncOutcome: Sendable {
        /// The files are invalid: nothing was written.
        case invalid([Diagnostic])
        /// Redis already matches the files.
        case noChange(SyncPlan)
        /// `--dry-run`: what would be written.
        case planned(SyncPlan)
        /// Written, at this revision.
        case applied(SyncPlan, revision: Int64)
    }

    /// Validates the environment's files, computes the change against Redis, and writes it in one
    /// atomic step guarded by the revision it was computed against.
    package func sync(_ options: SyncOptions) async throws -> SyncOutcome {
        // Fast path: the files are byte for byte those the last sync wrote (same Flagpole, same
        // config), so they were valid then and Redis already holds what they say.
        let sourceHash = try self.sourceHash()
        if options.unpin.isEmpty, let plan = try await unchangedSinceLastSync(sourceHash: sourceHash, prune: options.prune) {
            return .noChange(plan)
        }
        let config = directory.loadConfig()
        if config.hasErrors { return .invalid(config.diagnostics.filter(\.isError)) }
        let load = try directory.loadEnvironment(environment)
        if load.hasErrors { return .invalid(load.diagnostics.filter(\.isError)) }
        let live = try await store.read(parseDefinitions: false)
        var plan = try SyncPlan.make(
            environment: environment, load: load, fractionalAlgorithm: config.config.fractionalAlgorithm, live: live,
            prune: options.prune, unpin: options.unpin, actor: options.actor, reason: options.reason,
            git: Provenance.git(at: directory.environmentPath(environment)), now: Provenance.now, historyLimit: options.historyLimit)
        if plan.isEmpty {
            // Remember the files so that the next identical sync takes the fast path.
            if !options.dryRun, live.meta["sourceHash"] != sourceHash, plan.kept.isEmpty {
                try await store.setMeta(["sourceHash": sourceHash, "keptFlags": "0"])
            }
            return .noChange(plan)
        }
        if options.dryRun { return .planned(plan) }
        plan.change.meta["sourceHash"] = sourceHash
        plan.change.meta["keptFlags"] = String(plan.kept.count)
        let revision = try await store.apply(plan.change, expectedRevision: plan.baseRevision)
        return .applied(plan, revision: revision)
    }

    /// SHA-256 over this Flagpole's version, the project config and the environment's flag files
    /// (paths and bytes): equal exactly when a sync would read the same input.
    func sourceHash() throws -> String {
        var bytes: [UInt8] = Array("flagpole \(FlagpoleVersion.current)\n".utf8)
        let files = (directory.configPath.map { [$0] } ?? []) + (try directory.flagFiles(inEnvironment: environment))
        for file in files {
            bytes += Array(file.utf8) + [0]
            guard let data = FileManager.default.contents(atPath: file) else {
                throw FlagDirectoryError(code: .unreadable, path: file, message: "cannot read the file")
            }
            bytes += [UInt8](data) + [0]
        }
        return SHA256.hex(bytes)
    }

    /// A "no change" plan when Redis says its definitions came from exactly these files.
    private func unchangedSinceLastSync(sourceHash: String, prune: Bool) async throws -> SyncPlan? {
        let meta = try await store.meta(["sourceHash", "keptFlags", "syncRevision", "contentHash"])
        guard meta["sourceHash"] == sourceHash, !prune || meta["keptFlags"] == "0" else { return nil }
        let revision = try await store.revision()
        return SyncPlan(
            environment: environment, baseRevision: revision, added: [], changed: [], removed: [], kept: [], droppedOverrides: [],
            pinned: [:], unpinned: [], overridden: [], metadataChanged: false, contentHash: meta["contentHash"] ?? "",
            change: StoreChange(audit: AuditEntry(action: "sync", actor: "", at: 0, flags: [])))
    }

    /// Brings back the flag set an earlier sync wrote (flags not in it are removed), audited as `restore`.
    package func restore(revision: Int64, actor: String, reason: String?, dryRun: Bool) async throws -> SyncOutcome {
        let snapshot = try await store.historySnapshot(revision: revision)
        let live = try await store.read(parseDefinitions: false)
        let algorithm = snapshot["fractionalAlgorithm"]?.stringValue.flatMap(FractionalAlgorithm.init(rawValue:)) ?? .v3
        let load = FlagSetLoad(
            document: ["flags": snapshot["flags"] ?? [:], "metadata": snapshot["metadata"] ?? [:]], flagLocations: [:], evaluatorLocations: [:],
            files: [], diagnostics: [])
        var plan = try SyncPlan.make(
            environment: environment, load: load, fractionalAlgorithm: algorithm, live: live, prune: true, unpin: [],
            actor: actor, reason: reason, git: nil, now: Provenance.now)
        plan.change.audit.action = "restore"
        plan.change.meta["sourceHash"] = ""
        if case .object(var details) = plan.change.audit.details {
            details["restoredRevision"] = .int(revision)
            plan.change.audit.details = .object(details)
        }
        if plan.isEmpty { return .noChange(plan) }
        if dryRun { return .planned(plan) }
        let newRevision = try await store.apply(plan.change, expectedRevision: plan.baseRevision)
        return .applied(plan, revision: newRevision)
    }

    // MARK: - Runtime changes

    /// A change a person makes at runtime.
    package enum RuntimeChange: Sendable, Hashable {
        /// Serve `variant` to everyone.
        case set(variant: String)
        /// Force the flag on (`true`) or off (`false`, the kill switch).
        case enable(Bool)
        /// Remove the override; with `unpin`, also a pin an automatic revert left.
        case clear(unpin: Bool)

        var action: String {
            switch self {
            case .set: return "set"
            case .enable(let on): return on ? "enable" : "disable"
            case .clear: return "clear"
            }
        }
    }

    /// The result of a runtime change.
    package struct RuntimeOutcome: Sendable {
        /// The new revision; nil when the flag already was that way (nothing written).
        package var revision: Int64?
        package var before: OverrideRecord?
        package var after: OverrideRecord?
    }

    /// Applies a runtime change atomically (bumping the revision, auditing, publishing), retrying
    /// when another writer got in between.
    ///
    /// - Parameter expectedState: The flag's ``stateFingerprint(_:)`` as the person saw it (the web
    ///   console's preview). When the flag no longer matches it (someone changed its definition,
    ///   override or pin meanwhile), nothing is written and ``StoreError/Code/conflict`` says what
    ///   it is now. Default: nil (the CLI: the change applies to the flag as it is).
    package func apply(
        _ runtimeChange: RuntimeChange, flag: String, actor: String, reason: String?, expectedState: String? = nil
    ) async throws -> RuntimeOutcome {
        for attempt in 1...5 {
            let live = try await store.read(flag: flag)
            if let expectedState, Self.stateFingerprint(live) != expectedState {
                let now = live.override.map { "its override is now \($0.override.summary) by \($0.actor)" } ?? "it has no override now"
                throw StoreError(
                    code: .conflict,
                    message:
                        "flag '\(flag)' changed since you looked (\(live.definition == nil ? "it was removed" : now)\(live.pin != nil ? ", pinned" : "")); nothing was written: look at it again and decide anew"
                )
            }
            guard let definition = live.definition else {
                let known = try await store.flagKeys().sorted()
                throw StoreError(
                    code: .flagNotFound,
                    message: "flag '\(flag)' is not in \(environment)"
                        + (known.isEmpty ? " (nothing synced yet: run flagctl sync --env \(environment))" : suggestion(flag, in: known)),
                    key: store.layout.flags)
            }
            let before = live.override
            var change = StoreChange(audit: AuditEntry(action: runtimeChange.action, actor: actor, reason: reason, at: Provenance.now, flags: [flag]))
            change.requireFlags = [flag]
            var after: OverrideRecord?
            switch runtimeChange {
            case .set(let variant):
                let variants = definition["variants"]?.objectValue ?? [:]
                guard variants[variant] != nil else {
                    throw StoreError(
                        code: .invalidInput,
                        message: "flag '\(flag)' has no variant '\(variant)' (variants: \(variants.keys.sorted().joined(separator: ", ")))")
                }
                after = OverrideRecord(override: .variant(variant), actor: actor, reason: reason, at: Provenance.now, revision: 0)
            case .enable(let on):
                after = OverrideRecord(override: .enabled(on), actor: actor, reason: reason, at: Provenance.now, revision: 0)
            case .clear(let unpin):
                if let pin = live.pin {
                    guard unpin else {
                        throw StoreError(
                            code: .pinned,
                            message:
                                "flag '\(flag)' is pinned by an automatic revert (\(pin.by): \(pin.reason)); add --unpin to release it deliberately",
                            key: store.layout.pins)
                    }
                    change.removePins = [flag]
                } else if before == nil {
                    return RuntimeOutcome(revision: nil, before: nil, after: nil)
                }
            }
            if let after {
                if before?.override == after.override { return RuntimeOutcome(revision: nil, before: before, after: before) }
                change.setOverrides[flag] = after
            } else if before != nil {
                change.removeOverrides = [flag]
            }
            var details: [String: JSONValue] = [
                "before": before?.json ?? .null, "after": after?.json ?? .null,
                "effectiveBefore": before.map { $0.override.apply(to: definition) } ?? definition,
            ]
            if !change.removePins.isEmpty { details["unpinned"] = true }
            change.audit.details = .object(details)
            do {
                let revision = try await store.apply(change, expectedRevision: live.revision)
                var stored = after
                stored?.revision = revision
                return RuntimeOutcome(revision: revision, before: before, after: stored)
            } catch let error as StoreError where error.code == .conflict && attempt < 5 {
                continue
            }
        }
        throw StoreError(code: .conflict, message: "\(environment) kept changing; try again")
    }

    /// A short digest of a flag's definition, override and pin: equal exactly when a person
    /// looking at the flag would see the same thing (the revision of other flags does not count).
    package static func stateFingerprint(_ live: FlagStore.FlagRead) -> String {
        let text =
            (live.definition?.jsonString ?? "-") + "\u{1}" + (live.override?.json.jsonString ?? "-") + "\u{1}" + (live.pin?.json.jsonString ?? "-")
        return String(SHA256.hex(Array(text.utf8)).prefix(24))
    }

    private func suggestion(_ flag: String, in known: [String]) -> String {
        let close = known.filter { editDistance($0.lowercased(), flag.lowercased()) <= max(2, flag.count / 4) }.prefix(3)
        return close.isEmpty
            ? " (flagctl list --env \(environment) shows its flags)" : " (did you mean \(close.map { "'\($0)'" }.joined(separator: ", "))?)"
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
