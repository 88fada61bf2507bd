import FlagpoleCore
import FlagpoleStore

/// What a sync would change in one environment, and the store change that does it.
package struct SyncPlan: Sendable {
    package var environment: String
    /// The revision the plan was made against.
    package var baseRevision: Int64
    /// Flags in the files but not in Redis.
    package var added: [String]
    /// Flags whose definition differs.
    package var changed: [String]
    /// Flags gone from the files that this sync deletes (`--prune`).
    package var removed: [String]
    /// Flags gone from the files that stay in Redis (no `--prune`).
    package var kept: [String]
    /// Overrides dropped because their flag is removed.
    package var droppedOverrides: [String]
    /// Pinned flags (an automatic revert holds them); the files' definition is stored but the
    /// revert stays in force.
    package var pinned: [String: PinRecord]
    /// Pins released with `--unpin` (their override goes too).
    package var unpinned: [String]
    /// Overridden flags whose override stays (sync never clobbers an override).
    package var overridden: [String]
    package var metadataChanged: Bool
    package var contentHash: String
    /// The atomic write; empty when there is nothing to do.
    package var change: StoreChange

    /// True when the sync would write nothing.
    package var isEmpty: Bool { change.isEmpty }

    /// The audit entry keeps before/after definitions for at most this many flags of each kind.
    package static let auditDetailLimit = 100

    /// Computes the change from `load` (the files) to `live` (Redis).
    package static func make(
        environment: String, load: FlagSetLoad, fractionalAlgorithm: FractionalAlgorithm, live: StoreSnapshot,
        prune: Bool, unpin: [String], actor: String, reason: String?, git: Provenance.Git?, now: Int64, historyLimit: Int = 20
    ) throws(StoreError) -> SyncPlan {
        let files = FlagDocument.resolvedFlags(load.document)
        let metadata = FlagDocument.metadata(load.document)
        for flag in unpin where live.pins[flag] == nil {
            throw StoreError(code: .invalidInput, message: "--unpin \(flag): flag '\(flag)' is not pinned in \(environment)")
        }
        var added: [String] = [], changed: [String] = [], removed: [String] = [], kept: [String] = []
        var change = StoreChange(audit: AuditEntry(action: "sync", actor: actor, reason: reason, at: now, flags: []))
        // Stored definitions are canonical JSON text: compare text, parse only what the audit shows.
        var before: [String: JSONValue] = [:], after: [String: JSONValue] = [:]
        func storedDefinition(_ key: String) -> JSONValue? {
            live.definitions[key] ?? live.definitionTexts[key].flatMap { try? JSONParser.parse($0) }
        }
        for (key, def) in files {
            if let old = live.definitionTexts[key] {
                if old != def.jsonString {
                    changed.append(key)
                    change.setDefinitions[key] = def
                    if changed.count <= Self.auditDetailLimit {
                        before[key] = storedDefinition(key) ?? .null
                        after[key] = def
                    }
                }
            } else {
                added.append(key)
                change.setDefinitions[key] = def
                if added.count <= Self.auditDetailLimit { after[key] = def }
            }
        }
        var dropped: [String] = []
        for key in live.definitionTexts.keys where files[key] == nil {
            if prune {
                removed.append(key)
                change.removeDefinitions.append(key)
                if removed.count <= Self.auditDetailLimit { before[key] = storedDefinition(key) ?? .null }
                if live.overrides[key] != nil {
                    dropped.append(key)
                    change.removeOverrides.append(key)
                }
                if live.pins[key] != nil { change.removePins.append(key) }
            } else {
                kept.append(key)
            }
        }
        for key in unpin {
            change.removePins.append(key)
            if live.overrides[key] != nil, !change.removeOverrides.contains(key) { change.removeOverrides.append(key) }
        }
        let liveMetadata = live.flagSetMetadata
        let metadataChanged = liveMetadata != metadata || (live.meta["fractionalAlgorithm"] ?? "v3") != fractionalAlgorithm.rawValue
        change.metadataChanged = metadataChanged
        let hash = FlagDocument.contentHash(flags: files, metadata: metadata)

        let pinned = live.pins.filter { files[$0.key] != nil && !unpin.contains($0.key) }
        let overridden = live.overrides.keys.filter { files[$0] != nil && live.pins[$0] == nil }.sorted()

        if !change.isEmpty {
            change.meta = [
                "flagSetMetadata": JSONValue.object(metadata).jsonString,
                "fractionalAlgorithm": fractionalAlgorithm.rawValue,
                "contentHash": hash,
                "gitCommit": git?.commit ?? "",
                "gitDirty": git.map { $0.dirty ? "true" : "false" } ?? "",
                "syncedBy": actor,
                "syncedAt": String(now),
                "flagpoleVersion": FlagpoleVersion.current,
                "syncRevision": String(live.revision + 1),
            ]
            // The history keeps the whole synced set: what `restore` brings back.
            var synced = files
            if !prune { for k in kept { synced[k] = storedDefinition(k) } }
            change.historySnapshot = [
                "flags": .object(synced), "metadata": .object(metadata), "contentHash": .string(hash),
                "fractionalAlgorithm": .string(fractionalAlgorithm.rawValue),
            ]
            change.historyLimit = historyLimit
            change.audit.flags = (added + changed + removed + unpin).sorted()
            var details: [String: JSONValue] = [
                "added": .array(added.sorted().map { .string($0) }), "changed": .array(changed.sorted().map { .string($0) }),
                "removed": .array(removed.sorted().map { .string($0) }), "contentHash": .string(hash),
                "before": .object(before), "after": .object(after),
            ]
            if added.count + changed.count + removed.count > Self.auditDetailLimit {
                details["detailsTruncated"] = .string(
                    "before/after kept for the first \(Self.auditDetailLimit) flags of each kind; the history holds the whole set")
            }
            if !dropped.isEmpty { details["droppedOverrides"] = .array(dropped.sorted().map { .string($0) }) }
            if !unpin.isEmpty { details["unpinned"] = .array(unpin.sorted().map { .string($0) }) }
            if !pinned.isEmpty { details["stillPinned"] = .array(pinned.keys.sorted().map { .string($0) }) }
            if let git { details["git"] = ["commit": .string(git.commit), "dirty": .bool(git.dirty)] }
            change.audit.details = .object(details)
        }
        return SyncPlan(
            environment: environment, baseRevision: live.revision, added: added.sorted(), changed: changed.sorted(),
            removed: removed.sorted(), kept: kept.sorted(), droppedOverrides: dropped.sorted(), pinned: pinned,
            unpinned: unpin.sorted(), overridden: overridden, metadataChanged: metadataChanged, contentHash: hash, change: change)
    }
}
