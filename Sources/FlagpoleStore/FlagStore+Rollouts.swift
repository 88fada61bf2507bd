import FlagpoleCore
import FlagpoleRedis

/// Every rollout of an environment with the watcher's latest looks and its lease, read together.
package struct RolloutsRead: Sendable {
    /// The environment's revision at the read.
    package var revision: Int64
    /// Flag key → its rollout (running, or the last one that ended).
    package var rollouts: [String: RolloutRecord]
    /// Flag key → the watcher's latest look at its rollout.
    package var observations: [String: RolloutObservation]
    /// The watcher lease, if a watcher ever took it.
    package var lease: WatcherLease?
    /// Entries that could not be read, each naming its key and field.
    package var problems: [StoreError]
}

/// The result of asking for the watcher lease.
package enum LeaseResult: Sendable, Hashable {
    /// This watcher holds the lease; its writes carry this fencing token.
    case acquired(WatcherLease)
    /// Another watcher holds it, until its `expiresAt`.
    case heldByOther(WatcherLease)
}

extension FlagStore {
    /// Reads the revision, every rollout, the watcher's observations and the lease in one `MULTI`/`EXEC`.
    /// With `includeObservations` false (the watcher's tick, which reads each rollout's own later)
    /// the observations are neither read nor parsed. Default: true.
    package func readRollouts(includeObservations: Bool = true) async throws -> RolloutsRead {
        let l = layout
        let replies: [RedisReply]?
        do {
            replies = try await client.transaction([
                ["GET", RedisArgument(l.revision)], ["HGETALL", RedisArgument(l.rollouts)],
                ["HGETALL", RedisArgument(l.rolloutObservations)], ["GET", RedisArgument(l.watcherLease)],
            ])
        } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        guard let replies, replies.count == 4 else {
            throw StoreError(code: .redis, message: "reading the rollouts of \(l.environment) returned no result")
        }
        let keys = [l.revision, l.rollouts, l.rolloutObservations, l.watcherLease]
        let types = ["string", "hash", "hash", "string"]
        for (i, r) in replies.enumerated() {
            if let e = r.errorMessage { throw Self.wrongType(key: keys[i], serverMessage: e, expected: types[i]) }
        }
        var read = RolloutsRead(
            revision: try Self.parseRevision(replies[0], key: l.revision), rollouts: [:], observations: [:], lease: nil, problems: [])
        for (flag, v) in replies[1].dictionary ?? [:] {
            do { read.rollouts[flag] = try RolloutRecord(json: try JSONParser.parse(bytes: v.bytes ?? [])) } catch {
                read.problems.append(StoreError(code: .corruptData, message: "\(l.rollouts) field '\(flag)': \(error)", key: l.rollouts))
            }
        }
        for (flag, v) in includeObservations ? replies[2].dictionary ?? [:] : [:] {
            do { read.observations[flag] = try RolloutObservation(json: try JSONParser.parse(bytes: v.bytes ?? [])) } catch {
                read.problems.append(
                    StoreError(code: .corruptData, message: "\(l.rolloutObservations) field '\(flag)': \(error)", key: l.rolloutObservations))
            }
        }
        if let bytes = replies[3].bytes {
            do { read.lease = try WatcherLease(json: try JSONParser.parse(bytes: bytes)) } catch {
                read.problems.append(StoreError(code: .corruptData, message: "\(l.watcherLease): \(error)", key: l.watcherLease))
            }
        }
        return read
    }

    /// One flag's rollout, if it ever had one.
    package func rollout(flag: String) async throws -> RolloutRecord? {
        let reply = try await send(["HGET", RedisArgument(layout.rollouts), RedisArgument(flag)])
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.rollouts, serverMessage: e, expected: "hash") }
        guard let bytes = reply.bytes else { return nil }
        do { return try RolloutRecord(json: try JSONParser.parse(bytes: bytes)) } catch {
            throw StoreError(code: .corruptData, message: "\(layout.rollouts) field '\(flag)': \(error)", key: layout.rollouts)
        }
    }

    /// Takes or renews the watcher lease for `holder` at `nowMilliseconds` for `ttlMilliseconds`.
    ///
    /// Free or expired: the fencing token goes up by one and `holder` takes the lease. Held by
    /// `holder` with the current token: renewed, same token. Held by another live watcher:
    /// ``LeaseResult/heldByOther(_:)``. The lease doubles as the watcher's heartbeat.
    package func acquireLease(holder: String, nowMilliseconds: Int64, ttlMilliseconds: Int64) async throws -> LeaseResult {
        let reply = try await script(
            Self.leaseScript, keys: [layout.watcherLease, layout.watcherFence],
            arguments: [holder, String(nowMilliseconds), String(ttlMilliseconds)])
        guard let parts = reply.array, parts.count == 2, let acquired = parts[0].integer, let text = parts[1].string,
            let lease = try? WatcherLease(json: try JSONParser.parse(text))
        else {
            throw StoreError(code: .redis, message: "unexpected reply from the lease script: \(reply)")
        }
        return acquired == 1 ? .acquired(lease) : .heldByOther(lease)
    }

    /// Gives the lease up (it expires at once) if `holder` holds it with `token`: another watcher
    /// may take over without waiting for the expiry.
    package func releaseLease(holder: String, token: Int64) async throws {
        _ = try await script(Self.releaseScript, keys: [layout.watcherLease], arguments: [holder, String(token)])
    }

    /// Records the watcher's latest look at a rollout, without bumping the revision, if the fence
    /// still holds `token`; with `audit`, also appends that entry (a sampled hold) to the audit
    /// stream, stamped with the current revision.
    package func recordObservation(_ observation: RolloutObservation, flag: String, token: Int64, audit: AuditEntry?) async throws {
        var auditFields: [JSONValue] = []
        if let audit { auditFields = audit.fields.map { [.string($0.0), .string($0.1)] } }
        _ = try await script(
            Self.observeScript, keys: [layout.rolloutObservations, layout.watcherFence, layout.audit, layout.revision],
            arguments: [String(token), flag, observation.json.jsonString, JSONValue.array(auditFields).jsonString])
    }

    // MARK: - Internals

    private func send(_ command: RedisCommand) async throws -> RedisReply {
        do { return try await client.send(command) } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    private func script(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisReply {
        do {
            return try await client.evaluate(script, keys: keys.map { RedisArgument($0) }, arguments: arguments.map { RedisArgument($0) })
        } catch let error as RedisError {
            if let m = error.serverMessage {
                if m.hasPrefix("FENCED") {
                    throw StoreError(
                        code: .fenced,
                        message: "another watcher took the lease of \(layout.environment); this watcher's write was refused and nothing was written",
                        key: layout.watcherFence)
                }
                if m.hasPrefix("WRONGTYPE_KEY") {
                    let parts = m.split(separator: " ").map(String.init)
                    let key = parts.count > 1 ? parts[1] : "?"
                    throw StoreError(
                        code: .corruptData,
                        message:
                            "\(key) holds the wrong kind of value; Flagpole did not write it — inspect it with redis-cli TYPE \(key) and remove it",
                        key: key)
                }
            }
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    /// KEYS: lease, fence. ARGV: holder, now (ms), ttl (ms). Returns {1|0, lease JSON}.
    static let leaseScript = RedisScript(
        #"""
        for i, key in ipairs(KEYS) do
          local t = redis.call('TYPE', key)['ok']
          if t ~= 'none' and t ~= 'string' then return redis.error_reply('WRONGTYPE_KEY ' .. key .. ' ' .. t .. ' string') end
        end
        local holder, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
        local raw = redis.call('GET', KEYS[1])
        local lease = nil
        if raw then
          local ok, decoded = pcall(cjson.decode, raw)
          if ok and type(decoded) == 'table' then lease = decoded end
        end
        local fence = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
        if lease and lease.holder ~= holder and tonumber(lease.expiresAt or 0) > now then
          return {0, raw}
        end
        local token
        if lease and lease.holder == holder and tonumber(lease.expiresAt or 0) > now and tonumber(lease.token) == fence then
          token = fence
        else
          token = fence + 1
          redis.call('SET', KEYS[2], string.format('%d', token))
        end
        local out = '{"holder":' .. cjson.encode(holder) .. ',"token":' .. string.format('%d', token) ..
          ',"renewedAt":' .. string.format('%d', now) .. ',"expiresAt":' .. string.format('%d', now + ttl) .. '}'
        redis.call('SET', KEYS[1], out)
        return {1, out}
        """#)

    /// KEYS: lease. ARGV: holder, token.
    static let releaseScript = RedisScript(
        #"""
        local raw = redis.call('GET', KEYS[1])
        if not raw then return 0 end
        local ok, lease = pcall(cjson.decode, raw)
        if not ok or type(lease) ~= 'table' or lease.holder ~= ARGV[1] or tonumber(lease.token) ~= tonumber(ARGV[2]) then return 0 end
        local out = '{"holder":' .. cjson.encode(lease.holder) .. ',"token":' .. string.format('%d', lease.token) ..
          ',"renewedAt":' .. string.format('%d', lease.renewedAt or 0) .. ',"expiresAt":0}'
        redis.call('SET', KEYS[1], out)
        return 1
        """#)

    /// KEYS: observations, fence, audit, revision. ARGV: token, flag, observation JSON, audit fields JSON.
    static let observeScript = RedisScript(
        #"""
        local types = {'hash', 'string', 'stream', 'string'}
        for i, key in ipairs(KEYS) do
          local t = redis.call('TYPE', key)['ok']
          if t ~= 'none' and t ~= types[i] then return redis.error_reply('WRONGTYPE_KEY ' .. key .. ' ' .. t .. ' ' .. types[i]) end
        end
        local fence = redis.call('GET', KEYS[2])
        if fence ~= ARGV[1] then return redis.error_reply('FENCED ' .. tostring(fence)) end
        redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
        local audit = cjson.decode(ARGV[4])
        if #audit > 0 then
          local fields = {'revision', redis.call('GET', KEYS[4]) or '0'}
          for _, kv in ipairs(audit) do table.insert(fields, kv[1]); table.insert(fields, kv[2]) end
          redis.call('XADD', KEYS[3], '*', unpack(fields))
        end
        return 1
        """#)
}
