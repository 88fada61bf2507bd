import FlagpoleCore
import FlagpoleRedis

/// One chunk of outcome counts that a client instance sends to Redis, applied **at most once**.
///
/// Each chunk carries the instance's ID and a sequence number that grows by one per chunk. The
/// write script (``FlagStore/apply(_:)``) keeps the last sequence it applied for the instance in
/// `flagpole:{ENV}:outcomes:flushed:<instanceID>` and ignores a chunk whose sequence is not past
/// it. A client that does not hear back (a timeout, a cut connection, a failover) sends the same
/// chunk again, unchanged, until Redis answers, and only then the next one; so a count is added
/// exactly once however often the network fails, and the counts the watcher compares are the
/// counts the applications recorded.
///
/// A chunk holds at most ``maximumIncrements`` field increments, so that one script never keeps
/// Redis busy for long after an outage that let many minutes of counts pile up.
package struct OutcomeFlush: Sendable, Hashable {
    /// The instance that recorded the counts (``StoreLayout/outcomeFlushMarker(instanceID:)``).
    package var instanceID: String
    /// The chunk's place in the instance's sequence, from 1.
    package var sequence: Int64
    /// Hash key → its field increments (each 1 or more), in a stable order.
    package var hashes: [Hash]
    /// How long every hash written (and the marker) lives, in seconds.
    package var retentionSeconds: Int64

    /// One hash's increments.
    package struct Hash: Sendable, Hashable {
        package var key: String
        package var increments: [Increment]
    }

    /// One `HINCRBY`, saturating at `Int64.max`.
    package struct Increment: Sendable, Hashable {
        package var field: String
        package var amount: Int64
    }

    /// The most field increments one chunk carries: 2,000 (a few milliseconds of Redis time).
    package static let maximumIncrements = 2000

    /// How many field increments the chunk carries.
    package var incrementCount: Int { hashes.reduce(0) { $0 + $1.increments.count } }
}

extension OutcomeFlush {
    /// Collects the counts of one flush and cuts them into chunks.
    package struct Builder: Sendable {
        private let layout: StoreLayout
        /// Hash key → field → amount, merged (saturating) as entries arrive.
        private var sums: [String: [String: Int64]] = [:]

        package init(layout: StoreLayout) {
            self.layout = layout
        }

        /// Whether nothing was added.
        package var isEmpty: Bool { sums.isEmpty }

        /// Adds one flag and variant's counts for a minute: the outcome hash's fields and the
        /// minute's flag index (``StoreLayout/outcomeSummaryField(flag:)``).
        ///
        /// - Parameter latency: counts per ``LatencyHistogram`` bucket (empty when none was timed).
        package mutating func add(minute: Int64, flag: String, variant: String?, counts c: OutcomeCounts, latency: [Int64]) {
            let key = layout.outcomes(flag: flag, minute: minute)
            for (metric, n) in [(OutcomeMetric.ok, c.succeeded), (.err, c.failed), (.micros, c.totalMicroseconds), (.timed, c.timed)] where n > 0 {
                add(key, StoreLayout.outcomeField(variant: variant, metric), n)
            }
            for (bucket, n) in latency.prefix(LatencyHistogram.bucketCount).enumerated() where n > 0 {
                add(key, StoreLayout.latencyField(variant: variant, bucket: bucket), n)
            }
            let total = c.total
            if total > 0 { add(layout.outcomeSummary(minute: minute), StoreLayout.outcomeSummaryField(flag: flag), total) }
        }

        /// Adds outcomes that were dropped (bounded memory) in a minute.
        package mutating func addDropped(minute: Int64, _ n: Int64) {
            if n > 0 { add(layout.outcomeSummary(minute: minute), StoreLayout.outcomeDroppedField, n) }
        }

        private mutating func add(_ key: String, _ field: String, _ n: Int64) {
            sums[key, default: [:]][field, default: 0].saturatingAdd(n)
        }

        /// The chunks, numbered from `firstSequence`, each with at most `maximumIncrements` field
        /// increments; a hash's fields may be split over consecutive chunks.
        package func chunks(
            instanceID: String, firstSequence: Int64, retention: Duration, maximumIncrements: Int = OutcomeFlush.maximumIncrements
        ) -> [OutcomeFlush] {
            let retentionSeconds = max(1, retention.components.seconds)
            var out: [OutcomeFlush] = []
            var current: [Hash] = []
            var size = 0
            func close() {
                guard !current.isEmpty else { return }
                out.append(
                    OutcomeFlush(
                        instanceID: instanceID, sequence: firstSequence + Int64(out.count), hashes: current, retentionSeconds: retentionSeconds))
                current = []
                size = 0
            }
            for key in sums.keys.sorted() {
                var fields = sums[key]!.sorted { $0.key < $1.key }.map { Increment(field: $0.key, amount: $0.value) }[...]
                while !fields.isEmpty {
                    if size == maximumIncrements { close() }
                    let take = fields.prefix(max(1, maximumIncrements - size))
                    current.append(Hash(key: key, increments: Array(take)))
                    size += take.count
                    fields = fields.dropFirst(take.count)
                }
            }
            close()
            return out
        }
    }
}

/// What Redis did with one ``OutcomeFlush``.
package struct OutcomeFlushResult: Sendable, Hashable {
    /// False when the chunk had been applied before (a resend after a lost reply): nothing changed.
    package var applied: Bool
    /// Field increments Redis refused (a key of the wrong type, a field that is not an integer):
    /// left as they were, the rest applied.
    package var skipped: Int
    /// The first refusal, naming the key and field.
    package var firstProblem: String?
}

extension StoreLayout {
    /// String: the last ``OutcomeFlush/sequence`` applied for an instance (expires with the counts).
    package func outcomeFlushMarker(instanceID: String) -> String {
        "flagpole:{\(environment)}:outcomes:flushed:" + instanceID
    }
}

extension FlagStore {
    /// Applies one chunk of outcome counts at most once, in one atomic script: every field is
    /// added with a saturating `HINCRBY` (a sum past `Int64.max` stays there instead of failing or
    /// wrapping), every hash and the instance's marker get the retention as their expiry.
    ///
    /// - Throws: `RedisError` when Redis did not answer (send the same chunk again) or refused
    ///   the script (an ACL without `EVALSHA`, say: resending will not help).
    package func apply(_ flush: OutcomeFlush) async throws -> OutcomeFlushResult {
        var keys: [RedisArgument] = [RedisArgument(layout.outcomeFlushMarker(instanceID: flush.instanceID))]
        var arguments: [RedisArgument] = [RedisArgument(flush.sequence), RedisArgument(flush.retentionSeconds)]
        keys.reserveCapacity(flush.hashes.count + 1)
        arguments.reserveCapacity(2 + flush.hashes.count + 2 * flush.incrementCount)
        for hash in flush.hashes {
            keys.append(RedisArgument(hash.key))
            arguments.append(RedisArgument(Int64(hash.increments.count)))
            for increment in hash.increments {
                arguments.append(RedisArgument(increment.field))
                arguments.append(RedisArgument(increment.amount))
            }
        }
        let reply = try await client.evaluate(Self.outcomeFlushScript, keys: keys, arguments: arguments)
        guard let parts = reply.array, parts.count == 3, let applied = parts[0].integer, let skipped = parts[1].integer else {
            throw StoreError(code: .redis, message: "unexpected reply from the outcome flush script: \(reply)")
        }
        let problem = parts[2].string ?? ""
        return OutcomeFlushResult(applied: applied == 1, skipped: Int(clamping: skipped), firstProblem: problem.isEmpty ? nil : problem)
    }

    /// The outcome flush script. Every call that could fail is a `pcall`, so the script never
    /// stops half way (a Redis script that errors keeps what it wrote before the error).
    static let outcomeFlushScript = RedisScript(
        """
        -- Flagpole: apply one chunk of outcome counts at most once (data format 1).
        -- KEYS[1]: the instance's marker (the last sequence applied); KEYS[2..]: outcome hashes.
        -- ARGV[1]: the chunk's sequence; ARGV[2]: retention in seconds; then, for each hash, the
        -- number of its fields and that many (field, increment) pairs.
        -- Returns {1 applied | 0 applied before, fields skipped, the first refusal or ''}.
        local seq = tonumber(ARGV[1])
        local last = redis.pcall('GET', KEYS[1])
        if type(last) == 'string' and tonumber(last) ~= nil and tonumber(last) >= seq then
          return {0, 0, ''}
        end
        redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
        local skipped, first = 0, ''
        local a = 3
        for i = 2, #KEYS do
          local m = tonumber(ARGV[a])
          a = a + 1
          for _ = 1, m do
            local field, n = ARGV[a], ARGV[a + 1]
            a = a + 2
            local r = redis.pcall('HINCRBY', KEYS[i], field, n)
            if type(r) == 'table' and r.err then
              if string.find(r.err, 'overflow', 1, true) then
                redis.pcall('HSET', KEYS[i], field, '9223372036854775807')
              else
                skipped = skipped + 1
                if first == '' then first = KEYS[i] .. ' field ' .. field .. ': ' .. r.err end
              end
            end
          end
          redis.pcall('EXPIRE', KEYS[i], ARGV[2])
        end
        return {1, skipped, first}
        """)
}
