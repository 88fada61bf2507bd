import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Logging
import Synchronization

/// Flushes outcome counts and heartbeats: once per ``FlagpoleClient/Configuration-swift.struct/Outcomes-swift.struct/flushInterval``,
/// on a Redis connection of its own (a flush after an outage never sits in front of a flag read).
///
/// Counts are sent **exactly once**: each flush is cut into numbered chunks (``OutcomeFlush``) that
/// a write script applies at most once per instance and sequence number. A chunk Redis did not
/// acknowledge (a timeout, a cut connection) is sent again unchanged before anything newer, so a
/// retry never adds a count twice and never loses one. Counts recorded meanwhile wait in
/// `pending` (bounded by `maxPending` flag/variant/minute entries; past it they are dropped and
/// counted). Outcomes of flags the client does not serve, or of variants those flags do not have,
/// are dropped at the flush and counted (`flagpole_outcomes_unknown_total`), never written. The
/// rest are counted in the per-flag, per-variant outcome series (``OutcomeMetrics``) as they are
/// taken for Redis.
final class Reporter: Sendable {
    private struct PendingKey: Hashable {
        var minute: Int64
        var flag: String
        var variant: String?
    }

    private struct State {
        var pending: [PendingKey: OutcomeTotals] = [:]
        /// Minute → outcomes dropped in it.
        var dropped: [Int64: Int64] = [:]
        /// Chunks cut from earlier counts that Redis has not acknowledged yet, oldest first.
        var queue: [OutcomeFlush] = []
        /// How many pending entries went into ``queue`` (they count against `maxPending`).
        var queuedEntries = 0
        /// The next chunk's sequence number.
        var nextSequence: Int64 = 1
        var nextHeartbeat: ContinuousClock.Instant = .now
        var nextPrune: ContinuousClock.Instant
        var failing = false
        /// What the last heartbeat said; a change makes the next flush heartbeat too.
        var reported: HeartbeatState?
        /// Whether Redis refusing the evaluation times was logged as a warning already.
        var evaluatedRefusalLogged = false
    }

    private struct HeartbeatState: Hashable {
        var revision: Int64?
        var source: FlagpoleClient.Source
        var inSync: Bool
    }

    private let client: FlagpoleClient
    private let store: FlagStore
    private let startedAt: Int64
    private let state: Mutex<State>

    /// - Parameter store: the reporter's own store handle, on a connection flag reads do not use.
    init(client: FlagpoleClient, store: FlagStore, startedAt: Int64) {
        self.client = client
        self.store = store
        self.startedAt = startedAt
        // Each instance prunes gone instances from the index about once an hour, at a random
        // moment, so that a fleet does not do it all at once.
        state = Mutex(State(nextPrune: .now + .seconds(Double.random(in: 60...3600))))
    }

    private var configuration: FlagpoleClient.Configuration { client.configuration }
    private var layout: StoreLayout { store.layout }

    /// Flushes when outcomes or a heartbeat are due, whichever comes first.
    func loop() async {
        var nextFlush = ContinuousClock.now + configuration.outcomes.flushInterval
        while !Task.isCancelled {
            let heartbeatDue = state.withLock { $0.nextHeartbeat }
            let wake = configuration.heartbeat.isEnabled ? min(nextFlush, heartbeatDue) : nextFlush
            do { try await Task.sleep(until: wake, clock: .continuous) } catch { return }
            if ContinuousClock.now >= nextFlush { nextFlush = ContinuousClock.now + configuration.outcomes.flushInterval }
            await flush(final: false)
        }
    }

    /// The last flush, and the heartbeat removed: the instance is leaving.
    func finish() async {
        await flush(final: true)
    }

    /// Counts not yet acknowledged by Redis: entries waiting and chunks sent but unconfirmed.
    var unsent: (pendingEntries: Int, queuedChunks: Int) {
        state.withLock { ($0.pending.count, $0.queue.count) }
    }

    private func flush(final: Bool) async {
        let now = WallClock.now()
        let minute = StoreLayout.unixMinute(Int64(now))
        let (counts, dropped) = client.outcomes.drain()
        let snapshot = client.snapshot
        let instant = ContinuousClock.now
        var accepted: [(key: OutcomeTable.Key, totals: OutcomeTotals)] = []
        let (heartbeat, prune) = state.withLock { s -> (heartbeat: [RedisCommand], prune: Bool) in
            var lost = dropped
            var unknown: Int64 = 0
            if configuration.outcomes.isEnabled {
                for (key, c) in counts {
                    if snapshot.outcomeProblem(flag: key.flag, variant: key.variant) != nil {
                        unknown.saturatingAdd(c.counts.total)
                        continue
                    }
                    let k = PendingKey(minute: minute, flag: key.flag, variant: key.variant)
                    if s.pending[k] == nil, s.pending.count + s.queuedEntries >= configuration.outcomes.maxPending {
                        lost.saturatingAdd(c.counts.total)
                        continue
                    }
                    s.pending[k, default: OutcomeTotals()].add(c)
                    accepted.append((key, c))
                }
            }
            if lost > 0 {
                client.metrics.outcomesDropped.increment(by: lost)
                s.dropped[minute, default: 0].saturatingAdd(lost)
            }
            if unknown > 0 { client.metrics.outcomesUnknown.increment(by: unknown) }
            let freshness = client.freshness
            let said = HeartbeatState(revision: freshness.revision, source: freshness.source, inSync: freshness.isInSync)
            var heartbeat: [RedisCommand] = []
            if configuration.heartbeat.isEnabled && (final || instant >= s.nextHeartbeat || s.reported != said) {
                s.nextHeartbeat = instant + configuration.heartbeat.interval
                s.reported = said
                heartbeat = final ? leaveCommands() : heartbeatCommands(now: Int64(now), freshness: freshness)
            }
            let prune = configuration.heartbeat.isEnabled && !final && instant >= s.nextPrune
            if prune { s.nextPrune = instant + .seconds(3600) }
            return (heartbeat, prune)
        }
        // The outcome series count what was accepted for Redis: once per flag and variant.
        client.metrics.outcomes.prune(keeping: snapshot)
        for (key, totals) in accepted {
            client.metrics.outcomes.count(flag: key.flag, variant: key.variant, totals: totals, snapshot: snapshot)
        }
        var delivered = configuration.outcomes.isEnabled ? await sendOutcomes() : true
        if !heartbeat.isEmpty {
            // The flags evaluated since the last heartbeat ride along, in the same round trip.
            let evaluated = client.takeEvaluatedFlags()
            let evaluatedCommands = Self.evaluatedCommands(evaluated, at: Int64(now), layout: layout)
            do {
                let replies = try await store.client.pipeline(heartbeat + evaluatedCommands)
                if let first = replies.prefix(heartbeat.count).compactMap(\.errorMessage).first {
                    client.logger.warning(
                        "Redis refused the heartbeat (check the client's ACL user: flagctl acl --env ENV --role app)",
                        metadata: ["flagpole.error": "\(first)"])
                }
                if let first = replies.dropFirst(heartbeat.count).compactMap(\.errorMessage).first {
                    // Sending them again would be refused again (an app ACL user from before
                    // evaluation times): say so once, then at debug level.
                    let firstTime = state.withLock { s in
                        defer { s.evaluatedRefusalLogged = true }
                        return !s.evaluatedRefusalLogged
                    }
                    let message: Logger.Message =
                        "Redis refused the flags' evaluation times; flagctl list --stale cannot see this client's evaluations (update the client's ACL user: flagctl acl --env ENV --role app)"
                    let metadata: Logger.Metadata = ["flagpole.error": "\(first)", "flagpole.key": "\(layout.evaluated)"]
                    if firstTime {
                        client.logger.warning(message, metadata: metadata)
                    } else {
                        client.logger.debug(message, metadata: metadata)
                    }
                }
            } catch {
                delivered = false
                state.withLock { $0.reported = nil }
                client.restoreEvaluatedFlags(evaluated)
            }
        }
        let first = state.withLock { s -> Bool in
            defer { s.failing = !delivered }
            return !delivered && !s.failing
        }
        if first && !final {
            client.logger.info("Cannot flush outcomes and heartbeat; keeping them for the next flush")
        }
        if prune { await pruneRegistry(now: Int64(now)) }
    }

    /// Sends every queued chunk, oldest first, then cuts what is pending into new chunks and sends
    /// those (a few rounds at most). Returns false when Redis did not answer: the unacknowledged
    /// chunk stays first in the queue, to be sent again unchanged.
    private func sendOutcomes() async -> Bool {
        let retention = configuration.outcomes.retention
        for _ in 0..<3 {
            let chunk = state.withLock { s -> OutcomeFlush? in
                if s.queue.isEmpty, !s.pending.isEmpty || !s.dropped.isEmpty {
                    var builder = OutcomeFlush.Builder(layout: layout)
                    for (k, totals) in s.pending {
                        builder.add(minute: k.minute, flag: k.flag, variant: k.variant, counts: totals.counts, latency: totals.latency)
                    }
                    for (minute, n) in s.dropped { builder.addDropped(minute: minute, n) }
                    s.queue = builder.chunks(instanceID: configuration.instanceID, firstSequence: s.nextSequence, retention: retention)
                    s.nextSequence += Int64(s.queue.count)
                    s.queuedEntries = s.pending.count
                    s.pending = [:]
                    s.dropped = [:]
                }
                return s.queue.first
            }
            guard var next = chunk else { return true }
            while true {
                do {
                    let result = try await store.apply(next)
                    if let problem = result.firstProblem {
                        client.logger.warning(
                            "Redis refused some outcome counts (a key or field of the wrong type); the rest were recorded",
                            metadata: ["flagpole.error": "\(problem)", "flagpole.refused": "\(result.skipped)"])
                    }
                } catch let error as RedisError where Self.isPermanentRefusal(error) {
                    // Sending it again would be refused again: drop it, say why, and go on.
                    client.metrics.outcomesDropped.increment(by: Self.outcomes(in: next))
                    client.logger.warning(
                        "Redis refused outcome counts (check the client's ACL user: flagctl acl --env ENV --role app)",
                        metadata: ["flagpole.error": "\(error)"])
                } catch {
                    client.logger.debug("Flushing outcomes failed", metadata: ["flagpole.error": "\(error)"])
                    return false
                }
                guard
                    let following = state.withLock({ s -> OutcomeFlush? in
                        s.queue.removeFirst()
                        if s.queue.isEmpty { s.queuedEntries = 0 }
                        return s.queue.first
                    })
                else { break }
                next = following
            }
        }
        return true
    }

    /// A refusal that the same chunk would get again: no permission, a script error, a key of
    /// the wrong type. Transient ones (`READONLY`, `LOADING`, `OOM`, `TRYAGAIN`, …) are retried.
    private static func isPermanentRefusal(_ error: RedisError) -> Bool {
        guard let prefix = error.serverErrorPrefix else { return error.code == .permissionDenied }
        return ["NOPERM", "ERR", "WRONGTYPE", "NOSCRIPT"].contains(prefix)
    }

    /// How many outcomes a chunk records: the sum of its minute-index fields.
    private static func outcomes(in chunk: OutcomeFlush) -> Int64 {
        var n: Int64 = 0
        for hash in chunk.hashes {
            for increment in hash.increments where increment.field.hasPrefix("flag:") { n.saturatingAdd(increment.amount) }
        }
        return n
    }

    private func heartbeatCommands(now: Int64, freshness f: FlagpoleClient.Freshness) -> [RedisCommand] {
        // Whole seconds, 1 to a year: a configured Duration is never converted unchecked.
        let (seconds, attoseconds) = configuration.heartbeat.timeToLive.components
        let ttl = min(max(1, seconds.saturatingAdding(attoseconds > 0 ? 1 : 0)), 365 * 86_400)
        let record = ClientRecord(
            id: configuration.instanceID, application: configuration.application, host: HostInfo.hostName, pid: HostInfo.pid,
            version: FlagpoleVersion.current, environment: configuration.environment,
            revision: f.source == .redis || f.source == .disk ? f.revision : nil, source: f.source.rawValue, inSync: f.isInSync,
            dataAgeSeconds: f.age.map { ($0.seconds * 1000).rounded() / 1000 }, startedAt: startedAt, lastSeen: now, ttlSeconds: ttl)
        return [
            ["SET", RedisArgument(layout.client(configuration.instanceID)), RedisArgument(record.json.jsonString), "EX", RedisArgument(ttl)],
            ["HSET", RedisArgument(layout.clients), RedisArgument(configuration.instanceID), RedisArgument(now)],
        ]
    }

    /// `HSET flagpole:{ENV}:evaluated FLAG SECONDS …` for `flags`, at most
    /// ``StoreLayout/evaluatedFieldsPerCommand`` fields a command.
    static func evaluatedCommands(_ flags: [String], at seconds: Int64, layout: StoreLayout) -> [RedisCommand] {
        var commands: [RedisCommand] = []
        var start = 0
        while start < flags.count {
            let end = min(start + StoreLayout.evaluatedFieldsPerCommand, flags.count)
            var arguments: [RedisArgument] = ["HSET", RedisArgument(layout.evaluated)]
            arguments.reserveCapacity(2 + 2 * (end - start))
            for flag in flags[start..<end] { arguments += [RedisArgument(flag), RedisArgument(seconds)] }
            commands.append(RedisCommand(arguments))
            start = end
        }
        return commands
    }

    private func leaveCommands() -> [RedisCommand] {
        [
            ["DEL", RedisArgument(layout.client(configuration.instanceID))],
            ["HDEL", RedisArgument(layout.clients), RedisArgument(configuration.instanceID)],
        ]
    }

    /// Removes index entries of instances not seen for an hour (their records expired long ago).
    private func pruneRegistry(now: Int64) async {
        do {
            let index = try await store.client.send(["HGETALL", RedisArgument(layout.clients)])
            let old = (index.dictionary ?? [:]).compactMap { id, seen -> String? in
                guard let t = seen.integer else { return id }
                return t < now - 3600 ? id : nil
            }
            guard !old.isEmpty else { return }
            _ = try await store.client.send(RedisCommand(["HDEL", RedisArgument(layout.clients)] + old.map { RedisArgument($0) }))
        } catch {
            client.logger.debug("Pruning the instance registry failed", metadata: ["flagpole.error": "\(error)"])
        }
    }
}
