import FlagpoleCore
import FlagpoleRedis

/// Everything stored for one environment, read in one atomic step.
package struct StoreSnapshot: Sendable {
    package var revision: Int64
    /// Flag key → definition (from the files). Empty when read with `parseDefinitions: false`.
    package var definitions: [String: JSONValue]
    /// Flag key → the definition's JSON text exactly as stored (canonical: sorted keys, compact),
    /// so that a sync can compare without parsing.
    package var definitionTexts: [String: String]
    package var overrides: [String: OverrideRecord]
    package var pins: [String: PinRecord]
    /// The `meta` hash as stored.
    package var meta: [String: String]
    /// Entries that could not be read, each naming its key and field; those flags are left out.
    package var problems: [StoreError]

    /// Flag-set metadata (`meta` field `flagSetMetadata`).
    package var flagSetMetadata: [String: JSONValue] {
        meta["flagSetMetadata"].flatMap { try? JSONParser.parse($0) }?.objectValue ?? [:]
    }

    /// The definition with its override applied: what clients evaluate.
    package func effectiveDefinition(of key: String) -> JSONValue? {
        guard let d = definitions[key] else { return nil }
        return overrides[key].map { $0.override.apply(to: d) } ?? d
    }

    /// The stored state as a flagd document (`flags` with overrides applied, and `metadata`).
    package var effectiveDocument: JSONValue {
        var flags: [String: JSONValue] = [:]
        for k in definitions.keys { flags[k] = effectiveDefinition(of: k) }
        return .object(["flags": .object(flags), "metadata": .object(flagSetMetadata)])
    }
}

/// One atomic change to an environment: what to write, the audit entry, and the change event.
package struct StoreChange: Sendable {
    package var setDefinitions: [String: JSONValue] = [:]
    package var removeDefinitions: [String] = []
    package var setOverrides: [String: OverrideRecord] = [:]
    package var removeOverrides: [String] = []
    package var setPins: [String: PinRecord] = [:]
    package var removePins: [String] = []
    /// `meta` fields to set.
    package var meta: [String: String] = [:]
    /// Flags that must exist, or nothing is written.
    package var requireFlags: [String] = []
    /// The flag set to keep in the history (syncs and restores).
    package var historySnapshot: JSONValue?
    /// How many synced flag sets the history keeps. Default: 20.
    package var historyLimit = 20
    package var audit: AuditEntry
    /// Flag-set metadata or provenance changed (for the event).
    package var metadataChanged = false
    /// Rollout records to write (flag key → record). The script stamps each with the new
    /// revision, and, when the same change writes or removes the flag's override, its
    /// ``RolloutRecord/overrideRevision`` too.
    package var setRollouts: [String: RolloutRecord] = [:]
    /// A watcher's fencing token: when set, the script writes nothing unless
    /// `flagpole:{ENV}:watcher:fence` still holds exactly this value (``StoreError/Code/fenced``).
    package var fence: Int64?

    package init(audit: AuditEntry) {
        self.audit = audit
    }

    /// The flags whose stored state this change touches.
    package var changedFlags: [String] {
        Set(setDefinitions.keys).union(setOverrides.keys).union(removeOverrides).union(setPins.keys).union(removePins)
            .subtracting(removeDefinitions).sorted()
    }

    package var isEmpty: Bool {
        setDefinitions.isEmpty && removeDefinitions.isEmpty && setOverrides.isEmpty && removeOverrides.isEmpty
            && setPins.isEmpty && removePins.isEmpty && !metadataChanged && setRollouts.isEmpty
    }
}

/// Reads and writes one environment's flags in Redis.
///
/// Every write is one Lua script that checks the expected revision, the key types and the data
/// format, then writes definitions, overrides, pins, metadata (with the environment ID when `meta`
/// has none yet: ``StoreLayout/environmentIDField``), the audit entry and the history,
/// bumps the revision and publishes the change event — all or nothing. Two writers that read the
/// same revision cannot both write: the second gets ``StoreError/Code/conflict``.
package struct FlagStore: Sendable {
    package let client: RedisClient
    package let layout: StoreLayout

    package init(client: RedisClient, environment: String) throws(StoreError) {
        self.client = client
        self.layout = try StoreLayout(environment: environment)
    }

    /// The current revision (0 when nothing was ever written).
    package func revision() async throws -> Int64 {
        let reply = try await redis { try await client.send(["GET", RedisArgument(layout.revision)]) }
        return try Self.parseRevision(reply, key: layout.revision)
    }

    /// Reads revision, definitions, overrides, pins and metadata in one `MULTI`/`EXEC`.
    ///
    /// - Parameter parseDefinitions: parse every definition into ``StoreSnapshot/definitions``
    ///   (default). `false` keeps only their text, which is all a sync needs to compare.
    package func read(parseDefinitions: Bool = true) async throws -> StoreSnapshot {
        let l = layout
        let replies = try await redis {
            try await client.transaction([
                ["GET", RedisArgument(l.revision)], ["HGETALL", RedisArgument(l.flags)], ["HGETALL", RedisArgument(l.overrides)],
                ["HGETALL", RedisArgument(l.pins)], ["HGETALL", RedisArgument(l.meta)],
            ])
        }
        guard let replies, replies.count == 5 else {
            throw StoreError(code: .redis, message: "reading \(l.environment) returned no result")
        }
        let keys = [l.revision, l.flags, l.overrides, l.pins, l.meta]
        for (i, r) in replies.enumerated() {
            if let e = r.errorMessage { throw Self.wrongType(key: keys[i], serverMessage: e, expected: i == 0 ? "string" : "hash") }
        }
        let revision = try Self.parseRevision(replies[0], key: l.revision)
        var meta: [String: String] = [:]
        for (k, v) in replies[4].dictionary ?? [:] { meta[k] = v.string }
        if let format = meta["format"].flatMap(Int.init), format > StoreLayout.formatVersion {
            throw StoreError(
                code: .newerFormat,
                message:
                    "\(l.meta) says data format \(format), but this Flagpole reads format \(StoreLayout.formatVersion): upgrade flagctl and the client library",
                key: l.meta)
        }
        var problems: [StoreError] = []
        var definitions: [String: JSONValue] = [:]
        var texts: [String: String] = [:]
        for (k, v) in replies[1].dictionary ?? [:] {
            texts[k] = v.string ?? ""
            guard parseDefinitions else { continue }
            let why: String
            do {
                let def = try JSONParser.parse(bytes: v.bytes ?? [])
                if def.objectValue != nil {
                    definitions[k] = def
                    continue
                }
                why = "a flag definition must be a JSON object, found \(def.typeName)"
            } catch {
                why = "not valid JSON (\(error))"
            }
            problems.append(
                StoreError(code: .corruptData, message: "\(l.flags) field '\(k)': \(why); sync the files again to replace it", key: l.flags))
        }
        var overrides: [String: OverrideRecord] = [:]
        for (k, v) in replies[2].dictionary ?? [:] {
            do {
                overrides[k] = try OverrideRecord(json: try JSONParser.parse(bytes: v.bytes ?? []))
            } catch {
                problems.append(
                    StoreError(
                        code: .corruptData, message: "\(l.overrides) field '\(k)': \(error); clear it with flagctl override clear \(k)",
                        key: l.overrides))
            }
        }
        var pins: [String: PinRecord] = [:]
        for (k, v) in replies[3].dictionary ?? [:] {
            do {
                pins[k] = try PinRecord(json: try JSONParser.parse(bytes: v.bytes ?? []))
            } catch {
                problems.append(StoreError(code: .corruptData, message: "\(l.pins) field '\(k)': \(error)", key: l.pins))
            }
        }
        return StoreSnapshot(
            revision: revision, definitions: definitions, definitionTexts: texts, overrides: overrides, pins: pins, meta: meta, problems: problems)
    }

    /// One flag's stored state and the revision, read together (what a runtime change needs).
    package struct FlagRead: Sendable {
        package var revision: Int64
        package var definition: JSONValue?
        package var override: OverrideRecord?
        package var pin: PinRecord?
    }

    /// Reads the revision and one flag's definition, override and pin in one `MULTI`/`EXEC`.
    package func read(flag: String) async throws -> FlagRead {
        let l = layout
        let f = RedisArgument(flag)
        let replies = try await redis {
            try await client.transaction([
                ["GET", RedisArgument(l.revision)], ["HGET", RedisArgument(l.flags), f], ["HGET", RedisArgument(l.overrides), f],
                ["HGET", RedisArgument(l.pins), f], ["HGET", RedisArgument(l.meta), "format"],
            ])
        }
        guard let replies, replies.count == 5 else { throw StoreError(code: .redis, message: "reading \(l.environment) returned no result") }
        let keys = [l.revision, l.flags, l.overrides, l.pins, l.meta]
        for (i, r) in replies.enumerated() {
            if let e = r.errorMessage { throw Self.wrongType(key: keys[i], serverMessage: e, expected: i == 0 ? "string" : "hash") }
        }
        if let format = replies[4].integer, format > StoreLayout.formatVersion {
            throw StoreError(
                code: .newerFormat,
                message: "\(l.meta) says data format \(format), but this Flagpole reads format \(StoreLayout.formatVersion): upgrade flagctl",
                key: l.meta)
        }
        var read = FlagRead(revision: try Self.parseRevision(replies[0], key: l.revision))
        if let bytes = replies[1].bytes {
            do {
                read.definition = try JSONParser.parse(bytes: bytes)
            } catch {
                throw StoreError(
                    code: .corruptData, message: "\(l.flags) field '\(flag)': not valid JSON (\(error)); sync the files again to replace it",
                    key: l.flags)
            }
        }
        if let bytes = replies[2].bytes {
            do { read.override = try OverrideRecord(json: try JSONParser.parse(bytes: bytes)) } catch {
                throw StoreError(code: .corruptData, message: "\(l.overrides) field '\(flag)': \(error)", key: l.overrides)
            }
        }
        if let bytes = replies[3].bytes {
            do { read.pin = try PinRecord(json: try JSONParser.parse(bytes: bytes)) } catch {
                throw StoreError(code: .corruptData, message: "\(l.pins) field '\(flag)': \(error)", key: l.pins)
            }
        }
        return read
    }

    /// Some fields of the `meta` hash (absent fields are left out).
    package func meta(_ fields: [String]) async throws -> [String: String] {
        let reply = try await redis { try await client.send(RedisCommand(["HMGET", RedisArgument(layout.meta)] + fields.map { RedisArgument($0) })) }
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.meta, serverMessage: e, expected: "hash") }
        var out: [String: String] = [:]
        for (field, value) in zip(fields, reply.array ?? []) {
            if let v = value.string { out[field] = v }
        }
        return out
    }

    /// Sets bookkeeping fields of the `meta` hash (no revision bump, no event: nothing clients read).
    /// Like every write that may create `meta`, it also stores an
    /// ``StoreLayout/environmentIDField`` when there is none; it never changes one.
    package func setMeta(_ fields: [String: String]) async throws {
        let fields = fields.filter { $0.key != StoreLayout.environmentIDField }
        guard !fields.isEmpty else { return }
        var arguments: [RedisArgument] = []
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) { arguments += [RedisArgument(k), RedisArgument(v)] }
        arguments.append(RedisArgument(StoreLayout.makeEnvironmentID()))
        let reply: RedisReply
        do {
            reply = try await client.evaluate(Self.setMetaScript, keys: [RedisArgument(layout.meta)], arguments: arguments)
        } catch let error as RedisError {
            if let m = error.serverMessage, m.hasPrefix("WRONGTYPE") { throw Self.wrongType(key: layout.meta, serverMessage: m, expected: "hash") }
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.meta, serverMessage: e, expected: "hash") }
    }

    /// Sets `meta` fields, and the environment ID when there is none. KEYS: meta. ARGV: field,
    /// value, …, a new environment ID. (HEXISTS and HSET: the writer's ACL has no HSETNX.)
    static let setMetaScript = RedisScript(
        #"""
        for i = 1, #ARGV - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
        if redis.call('HEXISTS', KEYS[1], 'environmentId') == 0 then redis.call('HSET', KEYS[1], 'environmentId', ARGV[#ARGV]) end
        return 1
        """#)

    /// This environment's ``StoreLayout/environmentIDField`` in Redis; nil when it has none (never
    /// written, or last written by a Flagpole older than the field).
    package func environmentID() async throws -> String? {
        try await meta([StoreLayout.environmentIDField])[StoreLayout.environmentIDField]
    }

    /// Every flag key stored (for suggestions).
    package func flagKeys() async throws -> [String] {
        let reply = try await redis { try await client.send(["HKEYS", RedisArgument(layout.flags)]) }
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.flags, serverMessage: e, expected: "hash") }
        return (reply.array ?? []).compactMap(\.string)
    }

    /// Reads some flags' definitions and overrides (after a change event without inline state).
    package func readFlags(_ keys: [String]) async throws -> [String: ChangeEvent.FlagState] {
        guard !keys.isEmpty else { return [:] }
        let args = keys.map { RedisArgument($0) }
        let replies = try await redis {
            try await client.pipeline([
                RedisCommand(["HMGET", RedisArgument(layout.flags)] + args), RedisCommand(["HMGET", RedisArgument(layout.overrides)] + args),
            ])
        }
        if let e = replies[0].errorMessage { throw Self.wrongType(key: layout.flags, serverMessage: e, expected: "hash") }
        if let e = replies[1].errorMessage { throw Self.wrongType(key: layout.overrides, serverMessage: e, expected: "hash") }
        let defs = replies[0].array ?? [], ovs = replies[1].array ?? []
        var out: [String: ChangeEvent.FlagState] = [:]
        for (i, k) in keys.enumerated() where i < defs.count {
            guard let bytes = defs[i].bytes, let def = try? JSONParser.parse(bytes: bytes) else { continue }
            let ov = i < ovs.count ? ovs[i].bytes.flatMap { try? JSONParser.parse(bytes: $0) } : nil
            out[k] = ChangeEvent.FlagState(definition: def, override: ov)
        }
        return out
    }

    /// Writes `change` if the revision is still `expectedRevision`; returns the new revision.
    @discardableResult
    package func apply(_ change: StoreChange, expectedRevision: Int64) async throws -> Int64 {
        let newRevision = expectedRevision + 1
        var payload: [String: JSONValue] = [:]
        payload["setFlags"] = .array(change.setDefinitions.sorted { $0.key < $1.key }.map { [.string($0.key), .string($0.value.jsonString)] })
        payload["removeFlags"] = .array(change.removeDefinitions.map { .string($0) })
        payload["setOverrides"] = .array(
            change.setOverrides.sorted { $0.key < $1.key }.map { kv in
                var r = kv.value
                r.revision = newRevision
                return [.string(kv.key), .string(r.json.jsonString)]
            })
        payload["removeOverrides"] = .array(change.removeOverrides.map { .string($0) })
        payload["setPins"] = .array(
            change.setPins.sorted { $0.key < $1.key }.map { kv in
                var p = kv.value
                p.revision = newRevision
                return [.string(kv.key), .string(p.json.jsonString)]
            })
        payload["removePins"] = .array(change.removePins.map { .string($0) })
        payload["setRollouts"] = .array(
            change.setRollouts.sorted { $0.key < $1.key }.map { kv in
                var r = kv.value
                r.revision = newRevision
                if change.setOverrides[kv.key] != nil || change.removeOverrides.contains(kv.key) { r.overrideRevision = newRevision }
                return [.string(kv.key), .string(r.json.jsonString)]
            })
        if let fence = change.fence { payload["fence"] = .string(String(fence)) }
        // The environment ID is the script's to keep: set once, never changed by a change's fields.
        payload["meta"] = .array(
            change.meta.filter { $0.key != StoreLayout.environmentIDField }.sorted { $0.key < $1.key }.map { [.string($0.key), .string($0.value)] })
        payload["environmentId"] = .string(StoreLayout.makeEnvironmentID())
        payload["require"] = .array(change.requireFlags.map { .string($0) })
        payload["audit"] = .array(change.audit.fields.map { [.string($0.0), .string($0.1)] })
        if let snapshot = change.historySnapshot { payload["snapshot"] = .string(snapshot.jsonString) }
        payload["historyLimit"] = .int(Int64(max(1, change.historyLimit)))
        payload["channel"] = .string(layout.changes)
        // The event carries the changed flags' new state.
        var states: [String: ChangeEvent.FlagState] = [:]
        let changed = change.changedFlags
        // Inline the new state only for small changes (the message has a size limit anyway).
        if !changed.isEmpty && changed.count <= Self.inlineFlagLimit {
            let current = try await readFlags(
                changed.filter { change.setDefinitions[$0] == nil || (change.setOverrides[$0] == nil && !change.removeOverrides.contains($0)) })
            for k in changed {
                guard let def = change.setDefinitions[k] ?? current[k]?.definition else { continue }
                let ov: JSONValue?
                if let o = change.setOverrides[k] {
                    var r = o
                    r.revision = newRevision
                    ov = r.json
                } else if change.removeOverrides.contains(k) {
                    ov = nil
                } else {
                    ov = current[k]?.override
                }
                states[k] = ChangeEvent.FlagState(definition: def, override: ov)
            }
        }
        payload["eventTail"] = .string(
            ChangeEvent.tail(changed: changed, removed: change.removeDefinitions.sorted(), flags: states, metadataChanged: change.metadataChanged))
        let args: [RedisArgument] = [
            RedisArgument(expectedRevision), RedisArgument(StoreLayout.formatVersion), RedisArgument(JSONValue.object(payload).jsonString),
        ]
        let keys = layout.scriptKeys.map { RedisArgument($0) }
        let reply: RedisReply
        do {
            reply = try await client.evaluate(Self.applyScript, keys: keys, arguments: args)
        } catch let error as RedisError {
            throw mapScriptError(error)
        }
        guard let revision = reply.integer else {
            throw StoreError(code: .redis, message: "unexpected reply from the write script: \(reply)")
        }
        return revision
    }

    /// The newest audit entries first, optionally only those touching `flag` or newer than `since`
    /// (unix seconds); at most `limit`.
    package func auditEntries(flag: String? = nil, since: Int64? = nil, limit: Int = 100) async throws -> [AuditEntry] {
        var entries: [AuditEntry] = []
        var end = "+"
        let start = since.map { "\($0 * 1000)-0" } ?? "-"
        while entries.count < limit {
            let reply: RedisReply
            do {
                reply = try await client.send(["XREVRANGE", RedisArgument(layout.audit), RedisArgument(end), RedisArgument(start), "COUNT", "500"])
            } catch let error as RedisError {
                if let m = error.serverMessage, m.hasPrefix("WRONGTYPE") {
                    throw Self.wrongType(key: layout.audit, serverMessage: m, expected: "stream")
                }
                throw StoreError(code: .redis, message: error.description, underlying: error)
            }
            if let e = reply.errorMessage { throw Self.wrongType(key: layout.audit, serverMessage: e, expected: "stream") }
            guard let items = reply.array, !items.isEmpty else { break }
            for item in items {
                guard let parts = item.array, parts.count == 2, let id = parts[0].string else { continue }
                var fields: [String: String] = [:]
                for (k, v) in parts[1].dictionary ?? [:] { fields[k] = v.string }
                let entry = try AuditEntry(reply: RedisReplyEntry(id: id, fields: fields))
                if let flag, !entry.flags.contains(flag) { continue }
                entries.append(entry)
                if entries.count == limit { break }
            }
            guard let lastID = items.last?.array?.first?.string else { break }
            end = "(" + lastID
            if items.count < 500 { break }
        }
        return entries
    }

    /// The revisions kept in the history, newest first.
    package func historyRevisions() async throws -> [Int64] {
        let reply = try await redis { try await client.send(["LRANGE", RedisArgument(layout.historyOrder), "0", "-1"]) }
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.historyOrder, serverMessage: e, expected: "list") }
        return (reply.array ?? []).compactMap { $0.integer }
    }

    /// The flag set a sync wrote at `revision` (`{"flags":…, "metadata":…}`).
    package func historySnapshot(revision: Int64) async throws -> JSONValue {
        let reply = try await redis { try await client.send(["HGET", RedisArgument(layout.history), RedisArgument(revision)]) }
        guard let bytes = reply.bytes else {
            let kept = try await historyRevisions()
            throw StoreError(
                code: .revisionNotFound,
                message:
                    "revision \(revision) is not in the history of \(layout.environment) (kept: \(kept.isEmpty ? "none" : kept.map(String.init).joined(separator: ", ")))",
                key: layout.history)
        }
        do { return try JSONParser.parse(bytes: bytes) } catch {
            throw StoreError(code: .corruptData, message: "\(layout.history) field \(revision): \(error)", key: layout.history)
        }
    }

    /// Change events carry the changed flags' state only up to this many flags.
    static let inlineFlagLimit = 100

    // MARK: - Internals

    private func redis<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    static func parseRevision(_ reply: RedisReply, key: String) throws(StoreError) -> Int64 {
        switch reply {
        case .null: return 0
        case .error(let e): throw wrongType(key: key, serverMessage: e, expected: "string")
        default:
            guard let r = reply.integer, r >= 0 else {
                throw StoreError(
                    code: .corruptData,
                    message:
                        "\(key) should hold a revision number, found \(reply.string.map { "'\($0.prefix(40))'" } ?? "\(reply)"); was it written by hand?",
                    key: key)
            }
            return r
        }
    }

    static func wrongType(key: String, serverMessage: String, expected: String) -> StoreError {
        if serverMessage.hasPrefix("WRONGTYPE") {
            return StoreError(
                code: .corruptData,
                message:
                    "\(key) holds the wrong kind of value (expected a \(expected)); Flagpole did not write it — inspect it with redis-cli TYPE \(key), remove it, and sync again",
                key: key)
        }
        return StoreError(code: .redis, message: "reading \(key): \(serverMessage)", key: key)
    }

    private func mapScriptError(_ error: RedisError) -> StoreError {
        guard let message = error.serverMessage else {
            return StoreError(code: .redis, message: error.description, underlying: error)
        }
        let parts = message.split(separator: " ").map(String.init)
        switch parts.first {
        case "CONFLICT":
            return StoreError(
                code: .conflict,
                message:
                    "\(layout.environment) changed while this command ran (now at revision \(parts.count > 1 ? parts[1] : "?")); nothing was written — run it again",
                key: layout.revision)
        case "WRONGTYPE_KEY" where parts.count >= 4:
            return StoreError(
                code: .corruptData,
                message:
                    "\(parts[1]) holds a \(parts[2]), not a \(parts[3]); Flagpole did not write it — inspect it, remove it, and sync again; nothing was written",
                key: parts[1])
        case "BAD_REVISION" where parts.count >= 2:
            return StoreError(
                code: .corruptData, message: "\(parts[1]) does not hold a revision number; was it written by hand? Nothing was written", key: parts[1]
            )
        case "NEWER_FORMAT":
            return StoreError(
                code: .newerFormat,
                message:
                    "\(layout.meta) says data format \(parts.count > 1 ? parts[1] : "?"), newer than this Flagpole's \(StoreLayout.formatVersion): upgrade flagctl; nothing was written",
                key: layout.meta)
        case "FENCED":
            return StoreError(
                code: .fenced,
                message:
                    "another watcher took the lease of \(layout.environment) (fencing token now \(parts.count > 1 ? parts[1] : "?")); this watcher's write was refused and nothing was written",
                key: layout.watcherFence)
        case "NOFLAG":
            let flag = parts.dropFirst().joined(separator: " ")
            return StoreError(code: .flagNotFound, message: "flag '\(flag)' is not in \(layout.environment); nothing was written", key: layout.flags)
        default:
            return StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    /// The one write script. KEYS: revision, flags, overrides, pins, meta, audit, history, history
    /// order, rollouts, watcher fence. ARGV: expected revision, data format, payload (JSON).
    static let applyScript = RedisScript(
        #"""
        local expectedTypes = {'string', 'hash', 'hash', 'hash', 'hash', 'stream', 'hash', 'list', 'hash', 'string'}
        for i, key in ipairs(KEYS) do
          local t = redis.call('TYPE', key)['ok']
          if t ~= 'none' and t ~= expectedTypes[i] then
            return redis.error_reply('WRONGTYPE_KEY ' .. key .. ' ' .. t .. ' ' .. expectedTypes[i])
          end
        end
        local expected = tonumber(ARGV[1])
        local format = tonumber(ARGV[2])
        local stored = redis.call('HGET', KEYS[5], 'format')
        if stored and (tonumber(stored) == nil or tonumber(stored) > format) then
          return redis.error_reply('NEWER_FORMAT ' .. tostring(stored))
        end
        local current = 0
        local raw = redis.call('GET', KEYS[1])
        if raw then
          current = tonumber(raw)
          if current == nil then return redis.error_reply('BAD_REVISION ' .. KEYS[1]) end
        end
        local p = cjson.decode(ARGV[3])
        if p.fence then
          local fence = redis.call('GET', KEYS[10])
          if fence ~= p.fence then return redis.error_reply('FENCED ' .. tostring(fence)) end
        end
        if current ~= expected then return redis.error_reply('CONFLICT ' .. current) end
        for _, flag in ipairs(p.require) do
          if redis.call('HEXISTS', KEYS[2], flag) == 0 then return redis.error_reply('NOFLAG ' .. flag) end
        end
        local new = current + 1
        for _, kv in ipairs(p.setFlags) do redis.call('HSET', KEYS[2], kv[1], kv[2]) end
        for _, k in ipairs(p.removeFlags) do redis.call('HDEL', KEYS[2], k) end
        for _, kv in ipairs(p.setOverrides) do redis.call('HSET', KEYS[3], kv[1], kv[2]) end
        for _, k in ipairs(p.removeOverrides) do redis.call('HDEL', KEYS[3], k) end
        for _, kv in ipairs(p.setPins) do redis.call('HSET', KEYS[4], kv[1], kv[2]) end
        for _, k in ipairs(p.removePins) do redis.call('HDEL', KEYS[4], k) end
        for _, kv in ipairs(p.setRollouts) do redis.call('HSET', KEYS[9], kv[1], kv[2]) end
        redis.call('HSET', KEYS[5], 'format', format)
        if redis.call('HEXISTS', KEYS[5], 'environmentId') == 0 then redis.call('HSET', KEYS[5], 'environmentId', p.environmentId) end
        for _, kv in ipairs(p.meta) do redis.call('HSET', KEYS[5], kv[1], kv[2]) end
        redis.call('SET', KEYS[1], new)
        local fields = {'revision', tostring(new)}
        for _, kv in ipairs(p.audit) do table.insert(fields, kv[1]); table.insert(fields, kv[2]) end
        redis.call('XADD', KEYS[6], '*', unpack(fields))
        if p.snapshot then
          redis.call('HSET', KEYS[7], new, p.snapshot)
          redis.call('LPUSH', KEYS[8], new)
          local dropped = redis.call('LRANGE', KEYS[8], p.historyLimit, -1)
          for _, r in ipairs(dropped) do redis.call('HDEL', KEYS[7], r) end
          redis.call('LTRIM', KEYS[8], 0, p.historyLimit - 1)
        end
        redis.call('PUBLISH', p.channel, '{"revision":' .. new .. ',"previousRevision":' .. current .. ',' .. p.eventTail)
        return new
        """#)
}
