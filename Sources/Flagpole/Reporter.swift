import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Logging
import Synchronization

/// Flushes outcome counts and heartbeats: once per ``FlagpoleClient/Configuration-swift.struct/Outcomes-swift.struct/flushInterval``,
/// everything due goes to Redis in one pipelined round trip. Counts that could not be sent wait
/// for the next flush (bounded by `maxPending`); the rest is dropped and counted.
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
        var nextHeartbeat: ContinuousClock.Instant = .now
        var nextPrune: ContinuousClock.Instant
        var failing = false
        /// What the last heartbeat said; a change makes the next flush heartbeat too.
        var reported: HeartbeatState?
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

    private func flush(final: Bool) async {
        let now = WallClock.now()
        let minute = StoreLayout.unixMinute(Int64(now))
        let (counts, dropped) = client.outcomes.drain()
        let retention = Int64(configuration.outcomes.retention.seconds.rounded(.up))
        let instant = ContinuousClock.now
        let (commands, flushedKeys, heartbeat, prune) = state.withLock { s -> ([RedisCommand], Set<PendingKey>, Bool, Bool) in
            var lost = dropped
            if configuration.outcomes.isEnabled {
                for (key, c) in counts {
                    let k = PendingKey(minute: minute, flag: key.flag, variant: key.variant)
                    if s.pending[k] == nil, s.pending.count >= configuration.outcomes.maxPending {
                        lost += c.counts.total
                        continue
                    }
                    s.pending[k, default: OutcomeTotals()].add(c)
                }
            }
            if lost > 0 {
                client.metrics.outcomesDropped.increment(by: lost)
                s.dropped[minute, default: 0] += lost
            }
            var commands = configuration.outcomes.isEnabled ? outcomeCommands(s.pending, dropped: s.dropped, retention: retention) : []
            let freshness = client.freshness
            let said = HeartbeatState(revision: freshness.revision, source: freshness.source, inSync: freshness.isInSync)
            let heartbeat = configuration.heartbeat.isEnabled && (final || instant >= s.nextHeartbeat || s.reported != said)
            if heartbeat {
                s.nextHeartbeat = instant + configuration.heartbeat.interval
                s.reported = said
                commands += final ? leaveCommands() : heartbeatCommands(now: Int64(now), freshness: freshness)
            }
            let prune = configuration.heartbeat.isEnabled && !final && instant >= s.nextPrune
            if prune { s.nextPrune = instant + .seconds(3600) }
            return (commands, Set(s.pending.keys), heartbeat, prune)
        }
        if !commands.isEmpty {
            do {
                let replies = try await store.client.pipeline(commands)
                let errors = replies.compactMap(\.errorMessage)
                state.withLock { s in
                    for k in flushedKeys { s.pending[k] = nil }
                    s.dropped = [:]
                    if errors.isEmpty { s.failing = false }
                }
                if let first = errors.first {
                    client.logger.warning(
                        "Redis refused outcome or heartbeat writes (check the client's ACL rules: AccessRules.reader)",
                        metadata: ["flagpole.error": "\(first)", "flagpole.refused": "\(errors.count)"])
                }
            } catch {
                let first = state.withLock { s -> Bool in
                    defer {
                        s.failing = true
                        s.reported = nil
                    }
                    return !s.failing
                }
                let metadata: Logger.Metadata = ["flagpole.error": "\(error)", "flagpole.heartbeat": "\(heartbeat)"]
                if first && !final {
                    client.logger.info("Cannot flush outcomes and heartbeat; keeping them for the next flush", metadata: metadata)
                } else {
                    client.logger.debug("Flushing outcomes failed", metadata: metadata)
                }
            }
        }
        if prune { await pruneRegistry(now: Int64(now)) }
    }

    private func outcomeCommands(_ pending: [PendingKey: OutcomeTotals], dropped: [Int64: Int64], retention: Int64) -> [RedisCommand] {
        guard !pending.isEmpty || !dropped.isEmpty else { return [] }
        var commands: [RedisCommand] = []
        var byFlag: [String: Int64] = [:]
        var minutes: Set<Int64> = []
        var keys: Set<String> = []
        for (k, totals) in pending.sorted(by: { ($0.key.minute, $0.key.flag) < ($1.key.minute, $1.key.flag) }) {
            let c = totals.counts
            let key = layout.outcomes(flag: k.flag, minute: k.minute)
            let arg = RedisArgument(key)
            for (metric, n) in [(OutcomeMetric.ok, c.succeeded), (.err, c.failed), (.micros, c.totalMicroseconds), (.timed, c.timed)] where n != 0 {
                commands.append(["HINCRBY", arg, RedisArgument(StoreLayout.outcomeField(variant: k.variant, metric)), RedisArgument(n)])
            }
            for (bucket, n) in totals.latency.enumerated() where n != 0 {
                commands.append(["HINCRBY", arg, RedisArgument(StoreLayout.latencyField(variant: k.variant, bucket: bucket)), RedisArgument(n)])
            }
            keys.insert(key)
            minutes.insert(k.minute)
            byFlag[layout.outcomeSummary(minute: k.minute) + "\u{0}" + k.flag, default: 0] += c.total
        }
        for (summaryAndFlag, total) in byFlag.sorted(by: { $0.key < $1.key }) {
            let parts = summaryAndFlag.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            commands.append([
                "HINCRBY", RedisArgument(String(parts[0])), RedisArgument(StoreLayout.outcomeSummaryField(flag: String(parts[1]))),
                RedisArgument(total),
            ])
        }
        for (minute, n) in dropped.sorted(by: { $0.key < $1.key }) {
            commands.append(["HINCRBY", RedisArgument(layout.outcomeSummary(minute: minute)), RedisArgument(StoreLayout.outcomeDroppedField), RedisArgument(n)])
            minutes.insert(minute)
        }
        for key in keys.sorted() { commands.append(["EXPIRE", RedisArgument(key), RedisArgument(retention)]) }
        for minute in minutes.sorted() {
            commands.append(["EXPIRE", RedisArgument(layout.outcomeSummary(minute: minute)), RedisArgument(retention)])
        }
        return commands
    }

    private func heartbeatCommands(now: Int64, freshness f: FlagpoleClient.Freshness) -> [RedisCommand] {
        let ttl = max(1, Int64(configuration.heartbeat.timeToLive.seconds.rounded(.up)))
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
