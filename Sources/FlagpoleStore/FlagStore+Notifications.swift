import FlagpoleCore
import FlagpoleRedis

/// Where a target's notifications stand: the last audit entry announced to it.
///
/// Stored in ``StoreLayout/notifyCursors`` as `STREAM-ID REVISION` (`1767225600000-0 42`). The
/// revision is the environment's revision after that entry: when the stream was trimmed past the
/// cursor, the first entry still there says how many changes (revisions) were never announced.
package struct NotificationCursor: Sendable, Hashable, CustomStringConvertible {
    /// The stream id of the last entry announced (`0-0` before the first entry of an empty stream).
    package var id: String
    /// Every change up to this revision was announced (or counted as missed).
    package var revision: Int64

    /// The start of an empty stream.
    package static let origin = NotificationCursor(checked: "0-0", revision: 0)

    private init(checked id: String, revision: Int64) {
        self.id = id
        self.revision = revision
    }

    /// Creates a cursor; nil when `id` is not a stream id (`MS-SEQ`, both unsigned 64-bit
    /// integers) or `revision` is negative.
    package init?(id: String, revision: Int64) {
        guard Self.parse(id) != nil, revision >= 0 else { return nil }
        self.init(checked: id, revision: revision)
    }

    /// Reads a stored value; nil when it is not `STREAM-ID REVISION`.
    package init?(stored: String) {
        let parts = stored.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, let revision = Int64(parts[1]) else { return nil }
        self.init(id: String(parts[0]), revision: revision)
    }

    /// The stored form.
    package var stored: String { "\(id) \(revision)" }

    package var description: String { "stream id \(id) (revision \(revision))" }

    /// The smallest stream id after `id` (for `XRANGE` from there: Redis before 6.2 has no
    /// exclusive ranges); nil at the very last id.
    package static func successor(of id: String) -> String? {
        guard let (ms, seq) = parse(id) else { return nil }
        if seq < UInt64.max { return "\(ms)-\(seq + 1)" }
        if ms < UInt64.max { return "\(ms + 1)-0" }
        return nil
    }

    /// The largest stream id before `id`; nil for `0-0`.
    package static func predecessor(of id: String) -> String? {
        guard let (ms, seq) = parse(id) else { return nil }
        if seq > 0 { return "\(ms)-\(seq - 1)" }
        if ms > 0 { return "\(ms - 1)-\(UInt64.max)" }
        return nil
    }

    /// `MS-SEQ` as two integers.
    package static func parse(_ id: String) -> (UInt64, UInt64)? {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
            let ms = UInt64(parts[0]), let seq = UInt64(parts[1])
        else { return nil }
        return (ms, seq)
    }

    /// Whether stream id `a` comes before `b`.
    package static func precedes(_ a: String, _ b: String) -> Bool {
        guard let x = parse(a), let y = parse(b) else { return false }
        return x.0 < y.0 || (x.0 == y.0 && x.1 < y.1)
    }
}

/// Audit entries after a notification cursor.
package struct AuditBatch: Sendable, Hashable {
    /// The entries after the cursor, oldest first.
    package var entries: [AuditEntry]
    /// Whether the cursor's own entry is still in the stream (false: the stream was trimmed, or
    /// the entry deleted, up to or past it). Always true for ``NotificationCursor/origin``.
    package var cursorPresent: Bool

    /// Creates a batch.
    package init(entries: [AuditEntry], cursorPresent: Bool) {
        self.entries = entries
        self.cursorPresent = cursorPresent
    }
}

extension FlagStore {
    /// The notification cursor of `target`: nil when there is none yet; a stored value that is not
    /// a cursor throws ``StoreError/Code/corruptData`` naming the key and field.
    package func notificationCursor(target: String) async throws -> NotificationCursor? {
        let key = layout.notifyCursors
        let reply = try await notificationCall(["HGET", RedisArgument(key), RedisArgument(target)])
        if let e = reply.errorMessage { throw Self.wrongType(key: key, serverMessage: e, expected: "hash") }
        guard let text = reply.string else { return nil }
        guard let cursor = NotificationCursor(stored: text) else {
            throw StoreError(
                code: .corruptData,
                message: "\(key) field '\(target)' holds '\(text.prefix(60))', not 'STREAM-ID REVISION'; was it written by hand?", key: key)
        }
        return cursor
    }

    /// The newest entry of the audit stream as a cursor: where a target without a cursor starts,
    /// so history is not announced. When the stream is empty, `0-0` with the environment's
    /// revision now (``NotificationCursor/origin`` when it was never written), so that entries
    /// trimmed before the first one is read still count as missed.
    package func auditEnd() async throws -> NotificationCursor {
        let reply = try await notificationCall(["XREVRANGE", RedisArgument(layout.audit), "+", "-", "COUNT", "1"])
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.audit, serverMessage: e, expected: "stream") }
        guard let entry = Self.auditEntries(reply).first else {
            return NotificationCursor(id: NotificationCursor.origin.id, revision: try await revision()) ?? .origin
        }
        return NotificationCursor(id: entry.id, revision: entry.revision) ?? .origin
    }

    /// Up to `limit` audit entries after `cursor`, oldest first, read in one `MULTI`/`EXEC` with
    /// whether the cursor's own entry is still there.
    package func auditEntries(after cursor: NotificationCursor, limit: Int) async throws -> AuditBatch {
        guard let start = NotificationCursor.successor(of: cursor.id) else { return AuditBatch(entries: [], cursorPresent: true) }
        let key = RedisArgument(layout.audit)
        let replies: [RedisReply]?
        do {
            replies = try await client.transaction([
                ["XRANGE", key, RedisArgument(cursor.id), RedisArgument(cursor.id)],
                ["XRANGE", key, RedisArgument(start), "+", "COUNT", RedisArgument(max(1, limit))],
            ])
        } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        guard let replies, replies.count == 2 else {
            throw StoreError(code: .redis, message: "reading the audit stream of \(layout.environment) returned no result")
        }
        for r in replies {
            if let e = r.errorMessage { throw Self.wrongType(key: layout.audit, serverMessage: e, expected: "stream") }
        }
        let present = cursor == .origin || !(replies[0].array ?? []).isEmpty
        return AuditBatch(entries: Self.auditEntries(replies[1]), cursorPresent: present)
    }

    /// Stores `cursor` for `target` if this watcher still holds the lease: `holder` with fencing
    /// token `token`, not expired at `nowMilliseconds`. Else nothing is written and
    /// ``StoreError/Code/fenced`` is thrown: another daemon announces now.
    package func storeNotificationCursor(
        _ cursor: NotificationCursor, target: String, holder: String, token: Int64, nowMilliseconds: Int64
    ) async throws {
        do {
            _ = try await client.evaluate(
                Self.cursorScript,
                keys: [RedisArgument(layout.notifyCursors), RedisArgument(layout.watcherFence), RedisArgument(layout.watcherLease)],
                arguments: [
                    RedisArgument(token), RedisArgument(holder), RedisArgument(target), RedisArgument(cursor.stored), RedisArgument(nowMilliseconds),
                ])
        } catch let error as RedisError {
            if let m = error.serverMessage, m.hasPrefix("FENCED") {
                throw StoreError(
                    code: .fenced,
                    message:
                        "this daemon no longer holds the watcher lease of \(layout.environment); the notification cursor of '\(target)' was not written",
                    key: layout.watcherFence)
            }
            if let m = error.serverMessage, m.hasPrefix("WRONGTYPE_KEY") {
                throw StoreError(
                    code: .corruptData,
                    message:
                        "\(layout.notifyCursors) or the lease keys hold the wrong kind of value; Flagpole did not write them — inspect them with redis-cli TYPE",
                    key: layout.notifyCursors)
            }
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    /// The watcher lease, if a watcher ever took it, and the fencing token now.
    package func watcherLease() async throws -> (lease: WatcherLease?, fence: Int64) {
        let replies = try await notificationPipeline([["GET", RedisArgument(layout.watcherLease)], ["GET", RedisArgument(layout.watcherFence)]])
        guard replies.count == 2 else { throw StoreError(code: .redis, message: "reading the watcher lease returned no result") }
        let fence = try Self.parseRevision(replies[1], key: layout.watcherFence)
        if let e = replies[0].errorMessage { throw Self.wrongType(key: layout.watcherLease, serverMessage: e, expected: "string") }
        guard let bytes = replies[0].bytes else { return (nil, fence) }
        do { return (try WatcherLease(json: try JSONParser.parse(bytes: bytes)), fence) } catch {
            throw StoreError(code: .corruptData, message: "\(layout.watcherLease): \(error)", key: layout.watcherLease)
        }
    }

    // MARK: - Internals

    private func notificationCall(_ command: RedisCommand) async throws -> RedisReply {
        do { return try await client.send(command) } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    private func notificationPipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        do { return try await client.pipeline(commands) } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
    }

    /// The action given to an audit entry that cannot be read (no `action` field: written by
    /// hand, or by something other than Flagpole). It is announced as such, so that one bad entry
    /// neither stops the notifications after it nor passes unseen.
    package static let unreadableAction = "unreadable-entry"

    /// The entries of an `XRANGE`/`XREVRANGE` reply. An entry that cannot be read becomes one with
    /// ``unreadableAction``, its revision (when it has a readable one) and the problem as reason.
    static func auditEntries(_ reply: RedisReply) -> [AuditEntry] {
        var out: [AuditEntry] = []
        for item in reply.array ?? [] {
            guard let parts = item.array, parts.count == 2, let id = parts[0].string else { continue }
            var fields: [String: String] = [:]
            for (k, v) in parts[1].dictionary ?? [:] { fields[k] = v.string }
            do {
                out.append(try AuditEntry(reply: RedisReplyEntry(id: id, fields: fields)))
            } catch {
                let revision = fields["revision"].flatMap { Int64($0) }.map { max(0, $0) } ?? 0
                out.append(
                    AuditEntry(
                        id: id, revision: revision, action: Self.unreadableAction, actor: "unknown",
                        reason: "\(error.message); fields: \(fields.keys.sorted().joined(separator: ", ").prefix(200))", at: 0, flags: []))
            }
        }
        return out
    }

    /// KEYS: cursors, fence, lease. ARGV: token, holder, target, cursor, now (ms).
    static let cursorScript = RedisScript(
        #"""
        local types = {'hash', 'string', 'string'}
        for i, key in ipairs(KEYS) do
          local t = redis.call('TYPE', key)['ok']
          if t ~= 'none' and t ~= types[i] then return redis.error_reply('WRONGTYPE_KEY ' .. key .. ' ' .. t .. ' ' .. types[i]) end
        end
        local fence = redis.call('GET', KEYS[2])
        if fence ~= ARGV[1] then return redis.error_reply('FENCED ' .. tostring(fence)) end
        local raw = redis.call('GET', KEYS[3])
        if not raw then return redis.error_reply('FENCED no lease') end
        local ok, lease = pcall(cjson.decode, raw)
        if not ok or type(lease) ~= 'table' or lease.holder ~= ARGV[2] or tonumber(lease.token) ~= tonumber(ARGV[1])
          or tonumber(lease.expiresAt or 0) <= tonumber(ARGV[5]) then
          return redis.error_reply('FENCED lease')
        end
        redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
        return 1
        """#)
}
