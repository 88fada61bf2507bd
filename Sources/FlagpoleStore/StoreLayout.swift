import FlagpoleCore

/// Where one environment's flags live in Redis (data format 1).
///
/// Every key of an environment shares the hash tag `{ENV}`, so scripts and transactions work
/// unchanged on Redis Cluster. See the README's "Data layout in Redis" for each key's contents.
package struct StoreLayout: Sendable, Hashable {
    /// The data format this Flagpole writes; data with a larger `format` in `meta` is refused.
    package static let formatVersion = 1

    /// The environment, e.g. `prod`.
    package let environment: String

    /// Checks the environment name: letters, digits, `_`, `.`, `-`; at most 64 characters.
    package init(environment: String) throws(StoreError) {
        guard Self.isValidEnvironmentName(environment) else {
            throw StoreError(
                code: .invalidInput,
                message:
                    "invalid environment name '\(environment)': use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit)")
        }
        self.environment = environment
    }

    package static func isValidEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        func ok(_ s: Unicode.Scalar) -> Bool {
            (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "." || s == "-"
        }
        return ok(first) && first != "_" && first != "." && first != "-" && name.unicodeScalars.allSatisfy(ok)
    }

    private var prefix: String { "flagpole:{\(environment)}:" }

    /// String: the revision, a counter bumped by every change (absent means 0).
    package var revision: String { prefix + "revision" }
    /// Hash: flag key → the flag's definition as synced from the files (JSON, `$ref` resolved).
    package var flags: String { prefix + "flags" }
    /// Hash: flag key → a runtime override (JSON, see ``OverrideRecord``).
    package var overrides: String { prefix + "overrides" }
    /// Hash: flag key → a pin written by an automatic revert (JSON, see ``PinRecord``).
    package var pins: String { prefix + "pins" }
    /// Hash: data format, flag-set metadata, the last sync's provenance and the
    /// ``environmentIDField`` (see there).
    package var meta: String { prefix + "meta" }
    /// Stream: the audit trail, one entry per change.
    package var audit: String { prefix + "audit" }
    /// Hash: revision → the flag set a sync wrote (JSON), for `flagctl restore`.
    package var history: String { prefix + "history" }
    /// List: the revisions kept in ``history``, newest first.
    package var historyOrder: String { prefix + "history:order" }
    /// Pub/sub channel: one message per change (see ``ChangeEvent``).
    package var changes: String { prefix + "changes" }
    /// Hash: flag key → the flag's guarded rollout, running or the last one that ended (JSON, see ``RolloutRecord``).
    package var rollouts: String { prefix + "rollouts" }
    /// Hash: flag key → the watcher's latest look at the flag's rollout (JSON, see ``RolloutObservation``).
    package var rolloutObservations: String { prefix + "rollouts:observations" }
    /// String: the watcher lease and heartbeat (JSON, see ``WatcherLease``).
    package var watcherLease: String { prefix + "watcher:lease" }
    /// String: the fencing token, an integer bumped each time a watcher takes the lease.
    package var watcherFence: String { prefix + "watcher:fence" }
    /// Hash: alert target name → the last audit entry announced to it, `STREAM-ID REVISION`
    /// (see ``NotificationCursor``); written only by the watcher lease holder (`flagctl daemon`).
    package var notifyCursors: String { prefix + "notify:cursors" }

    /// The `meta` field naming this environment's data in this Redis: 32 random hex digits that
    /// the first write into the environment stores (a `meta` without one, from an older
    /// Flagpole, gets one on its next write) and that no write changes afterwards. A client's
    /// disk snapshot records it, so a snapshot of other Redis data (another server, or the
    /// environment deleted and synced again) is never taken for this one.
    package static let environmentIDField = "environmentId"

    /// A new environment ID: 128 random bits as 32 lower-case hex digits.
    package static func makeEnvironmentID() -> String {
        var rng = SystemRandomNumberGenerator()
        return [rng.next() as UInt64, rng.next() as UInt64].map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// The keys every write script takes, in order.
    package var scriptKeys: [String] { [revision, flags, overrides, pins, meta, audit, history, historyOrder, rollouts, watcherFence] }

    /// Every key of the environment (the change channel aside).
    package var allKeys: [String] { scriptKeys + [rolloutObservations, watcherLease, notifyCursors] }

    /// Each key with the Redis type it must hold.
    package var keyTypes: [(key: String, type: String)] {
        [
            (revision, "string"), (flags, "hash"), (overrides, "hash"), (pins, "hash"), (meta, "hash"), (audit, "stream"),
            (history, "hash"), (historyOrder, "list"), (rollouts, "hash"), (watcherFence, "string"),
            (rolloutObservations, "hash"), (watcherLease, "string"), (notifyCursors, "hash"),
        ]
    }
}
