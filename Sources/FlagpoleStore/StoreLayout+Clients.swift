import FlagpoleCore
import FlagpoleRedis

/// The keys the client library writes: outcome counters for the watcher, and the instance registry.
///
/// Both live under the environment's hash tag, like every other key of the environment.
///
/// **Outcomes** — one hash per flag per minute, `flagpole:{ENV}:outcomes:<unixMinute>:<flag>`,
/// where `unixMinute` is `floor(unixSeconds / 60)` of the moment a client flushed the counts
/// (clients flush once a second, so a count lands at most a second late). Fields, each an integer
/// added to with `HINCRBY` by every instance:
///
/// | field | meaning |
/// |---|---|
/// | `<variant>\|ok` | work under that variant that succeeded |
/// | `<variant>\|err` | work under that variant that failed |
/// | `<variant>\|us` | the summed duration, in microseconds, of the outcomes recorded with one |
/// | `<variant>\|timed` | how many outcomes were recorded with a duration |
/// | `<variant>\|h<k>` | how many timed outcomes fell in latency bucket `k` (0…39); absent when 0 |
///
/// The latency buckets (``LatencyHistogram``) split each doubling in two, on exact binary bounds:
/// bucket 0 is below 128 µs; bucket `k` in 1…38 starts at `2^(7+(k-1)/2)` µs when `k` is odd and at
/// `3 · 2^(6+(k-1)/2)` µs when `k` is even, and ends where bucket `k+1` starts (128, 192, 256, 384,
/// 512, 768 µs, 1.024 ms, … 33.6 s, 50.3 s); bucket 39 is 2^26 µs (67.1 s) and more. A p95 read
/// from them is within a bucket's width (at most 50 %, interpolated inside it).
///
/// `<variant>` is the variant the evaluation chose; the empty string means none (the caller's code
/// default was served). The metric follows the *last* `|`, so variant names may contain `|`.
/// A summary hash per minute, `flagpole:{ENV}:outcomes:<unixMinute>`, holds `flag:<flag>` → the
/// number of outcomes recorded for that flag (an index of the minute's flags) and `dropped` → the
/// outcomes instances had to drop (bounded memory) in that minute. Every outcome key expires
/// (``defaultOutcomeRetention`` unless the client is configured otherwise).
///
/// **Instances** — `flagpole:{ENV}:clients:<instanceID>` holds one instance's ``ClientRecord`` as
/// JSON and expires unless the instance heartbeats again; `flagpole:{ENV}:clients` is a hash from
/// instance ID to the Unix second of its last heartbeat, an index for listing. An index entry whose
/// record has expired is an instance that is gone; instances prune old entries.
///
/// **Evaluations** — `flagpole:{ENV}:evaluated` is a hash from flag key to the Unix second of a
/// heartbeat that reported the flag evaluated since the instance's previous heartbeat (written
/// with `HSET` only, by every instance; the latest heartbeat wins). `flagctl list --stale` reads
/// it to find flags nobody evaluates. Fields of flags removed since stay; nothing reads them.
extension StoreLayout {
    private var keyPrefix: String { "flagpole:{\(environment)}:" }

    /// How long outcome buckets are kept by default: 6 hours, enough to compare an hour-long
    /// rollout step with the hours before it.
    package static let defaultOutcomeRetention: Duration = .seconds(6 * 3600)

    /// The minute bucket (`floor(unixSeconds / 60)`) a Unix time falls in.
    package static func unixMinute(_ unixSeconds: Int64) -> Int64 {
        unixSeconds >= 0 ? unixSeconds / 60 : (unixSeconds - 59) / 60
    }

    /// Hash: one flag's outcome counters for one minute (fields from ``outcomeField(variant:_:)``).
    package func outcomes(flag: String, minute: Int64) -> String {
        keyPrefix + "outcomes:\(minute):" + flag
    }

    /// Hash: the minute's flag index (`flag:<flag>` → outcomes) and `dropped` → outcomes dropped.
    package func outcomeSummary(minute: Int64) -> String {
        keyPrefix + "outcomes:\(minute)"
    }

    /// The summary field that indexes a flag: `flag:<flag>`.
    package static func outcomeSummaryField(flag: String) -> String { "flag:" + flag }

    /// The summary field counting dropped outcomes.
    package static let outcomeDroppedField = "dropped"

    /// The field of an outcome hash: `<variant>|<metric>` (an empty variant when there was none).
    package static func outcomeField(variant: String?, _ metric: OutcomeMetric) -> String {
        (variant ?? "") + "|" + metric.rawValue
    }

    /// The field of an outcome hash counting latency bucket `bucket` (see ``LatencyHistogram``):
    /// `<variant>|h<bucket>`.
    package static func latencyField(variant: String?, bucket: Int) -> String {
        (variant ?? "") + "|h" + String(bucket)
    }

    /// Splits a latency-bucket field (`<variant>|h<k>`) into variant (nil for the empty name) and
    /// bucket; nil for any other field.
    package static func parseLatencyField(_ field: String) -> (variant: String?, bucket: Int)? {
        guard let bar = field.utf8.lastIndex(of: UInt8(ascii: "|")) else { return nil }
        let metric = field.utf8[field.utf8.index(after: bar)...]
        guard metric.count >= 2, metric.count <= 3, metric.first == UInt8(ascii: "h") else { return nil }
        var k = 0
        for byte in metric.dropFirst() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            k = k * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard k < LatencyHistogram.bucketCount else { return nil }
        let variant = String(field[..<bar])
        return (variant.isEmpty ? nil : variant, k)
    }

    /// Splits an outcome hash field into variant (nil for the empty name) and metric; nil for a
    /// field Flagpole does not write (and for latency buckets: ``parseLatencyField(_:)``).
    package static func parseOutcomeField(_ field: String) -> (variant: String?, metric: OutcomeMetric)? {
        guard let bar = field.lastIndex(of: "|"), let metric = OutcomeMetric(rawValue: String(field[field.index(after: bar)...])) else {
            return nil
        }
        let variant = String(field[..<bar])
        return (variant.isEmpty ? nil : variant, metric)
    }

    /// Hash: instance ID → the Unix second of its last heartbeat (the registry's index).
    package var clients: String { keyPrefix + "clients" }

    /// String (JSON ``ClientRecord``, with a TTL): one instance's heartbeat.
    package func client(_ instanceID: String) -> String { keyPrefix + "clients:" + instanceID }

    /// Hash: flag key → the Unix second of the latest heartbeat that reported it evaluated.
    package var evaluated: String { keyPrefix + "evaluated" }

    /// The most fields one heartbeat's `HSET` of ``evaluated`` carries; more flags take more commands.
    package static let evaluatedFieldsPerCommand = 1000

    /// The earliest evaluation time Flagpole accepts from ``evaluated``: 2020-01-01T00:00:00Z.
    package static let earliestEvaluationTime: Int64 = 1_577_836_800

    /// A value of ``evaluated`` as Unix seconds, or nil when it is not one Flagpole could have
    /// written: anything but ASCII digits (no sign, no fraction, no spaces), or a time before
    /// ``earliestEvaluationTime`` or more than a day after `now` (a clock that far off is not evidence).
    package static func parseEvaluationTime(_ text: String, now: Int64) -> Int64? {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= 18, utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let seconds = Int64(text)
        else { return nil }
        guard seconds >= earliestEvaluationTime, seconds <= now.saturatingAdding(86_400) else { return nil }
        return seconds
    }
}

/// One counter of an outcome hash field (see ``StoreLayout/outcomeField(variant:_:)``).
package enum OutcomeMetric: String, Sendable, Hashable, CaseIterable {
    /// Outcomes that succeeded.
    case ok
    /// Outcomes that failed.
    case err
    /// The summed duration of timed outcomes, in microseconds.
    case micros = "us"
    /// How many outcomes carried a duration.
    case timed
}

/// The counters of one flag and variant over some span: what the watcher compares.
package struct OutcomeCounts: Sendable, Hashable {
    /// Work that succeeded.
    package var succeeded: Int64
    /// Work that failed.
    package var failed: Int64
    /// The summed duration of the outcomes that had one, in microseconds.
    package var totalMicroseconds: Int64
    /// How many outcomes had a duration.
    package var timed: Int64

    /// Counts from their parts; all default to zero.
    package init(succeeded: Int64 = 0, failed: Int64 = 0, totalMicroseconds: Int64 = 0, timed: Int64 = 0) {
        self.succeeded = succeeded
        self.failed = failed
        self.totalMicroseconds = totalMicroseconds
        self.timed = timed
    }

    /// All outcomes, succeeded and failed (saturating at `Int64.max`).
    package var total: Int64 { succeeded.saturatingAdding(failed) }

    /// Whether every counter is zero.
    package var isEmpty: Bool { succeeded == 0 && failed == 0 && totalMicroseconds == 0 && timed == 0 }

    /// Adds another span's counts. Every sum saturates at `Int64.max` instead of wrapping: the
    /// counts come from other processes, and a wrapped sum would turn into a negative rate.
    package mutating func add(_ other: OutcomeCounts) {
        succeeded.saturatingAdd(other.succeeded)
        failed.saturatingAdd(other.failed)
        totalMicroseconds.saturatingAdd(other.totalMicroseconds)
        timed.saturatingAdd(other.timed)
    }
}

/// Counts of timed outcomes in log-spaced latency buckets, two per doubling: what a p95 is read from.
///
/// | bucket | from (inclusive) | to (exclusive) |
/// |---|---|---|
/// | 0 | 0 | 128 µs |
/// | `2i+1`, i = 0…18 | `2^(7+i)` µs | `1.5 · 2^(7+i)` µs |
/// | `2i+2`, i = 0…18 | `1.5 · 2^(7+i)` µs | `2^(8+i)` µs |
/// | 39 | 2^26 µs (67.1 s) | — |
///
/// That is 128, 192, 256, 384, 512, 768, 1024, 1536 µs, …, 33.6 s, 50.3 s, 67.1 s. Bucketing costs
/// a leading-zero count and a shift (``bucket(micros:)``), no division and no table.
package struct LatencyHistogram: Sendable, Hashable {
    /// How many buckets there are: 40.
    @inlinable package static var bucketCount: Int { 40 }

    /// Counts per bucket; always ``bucketCount`` long.
    package var counts: [Int64]

    /// An empty histogram.
    package init() {
        counts = [Int64](repeating: 0, count: Self.bucketCount)
    }

    /// A histogram from ``bucketCount`` (or fewer: the rest are zero) counts.
    package init(counts: [Int64]) {
        var c = Array(counts.prefix(Self.bucketCount))
        if c.count < Self.bucketCount { c += [Int64](repeating: 0, count: Self.bucketCount - c.count) }
        self.counts = c
    }

    /// The bucket a duration in microseconds falls in (negative durations count as 0).
    @inlinable @inline(__always)
    package static func bucket(micros: Int64) -> Int {
        let m = UInt64(bitPattern: micros)
        // Negative (top bit set) and below 128 µs: bucket 0.
        guard m >= 128, m < (1 << 63) else { return 0 }
        let log2 = 63 &- m.leadingZeroBitCount
        let half = Int(truncatingIfNeeded: (m &>> UInt64(log2 &- 1)) & 1)
        return Swift.min(2 &* (log2 &- 7) &+ 1 &+ half, 39)
    }

    /// Where bucket `k` starts, in microseconds (0 for bucket 0).
    package static func lowerBound(_ k: Int) -> Double {
        guard k > 0 else { return 0 }
        let k = Swift.min(k, bucketCount - 1)
        let base = Double(sign: .plus, exponent: 7 + (k - 1) / 2, significand: 1)
        return (k - 1) % 2 == 0 ? base : base * 1.5
    }

    /// Where bucket `k` ends, in microseconds (infinity for the last).
    package static func upperBound(_ k: Int) -> Double {
        k >= bucketCount - 1 ? .infinity : lowerBound(k + 1)
    }

    /// Adds one duration.
    package mutating func record(micros: Int64) {
        counts[Self.bucket(micros: micros)].saturatingAdd(1)
    }

    /// Adds another histogram's counts (saturating at `Int64.max`).
    package mutating func add(_ other: LatencyHistogram) {
        for k in 0..<Self.bucketCount { counts[k].saturatingAdd(other.counts[k]) }
    }

    /// How many durations it holds (saturating at `Int64.max`).
    package var total: Int64 { counts.reduce(0) { $0.saturatingAdding($1) } }

    /// Whether it holds none.
    package var isEmpty: Bool { counts.allSatisfy { $0 == 0 } }

    /// The `q`-quantile (0…1, e.g. 0.95) in microseconds, interpolated linearly inside its bucket;
    /// nil when empty. A quantile in the last, open bucket is that bucket's lower bound (67.1 s),
    /// so an estimate never understates by more than a bucket's width except past 67 s.
    package func quantile(_ q: Double) -> Double? {
        Self.quantile(q, of: counts.map { Double($0) })
    }

    /// The `q`-quantile of bucket counts that need not be whole (pro-rated counts, say), as
    /// ``quantile(_:)`` computes it; nil when they add up to nothing.
    package static func quantile(_ q: Double, of counts: [Double]) -> Double? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = Swift.min(Swift.max(q, 0), 1) * total
        var below = 0.0
        for k in 0..<Swift.min(counts.count, bucketCount) where counts[k] > 0 {
            let n = counts[k]
            if below + n >= rank {
                let lower = lowerBound(k)
                let upper = upperBound(k)
                guard upper.isFinite else { return lower }
                return lower + (upper - lower) * Swift.max(0, rank - below) / n
            }
            below += n
        }
        return lowerBound(Swift.min(counts.count, bucketCount) - 1)
    }
}

/// What an instance of the client library says about itself in its heartbeat.
///
/// JSON: `{"id","application","host","pid","version","environment","revision","source","inSync",
/// "dataAgeSeconds","startedAt","lastSeen","ttlSeconds"}` (times in Unix seconds).
package struct ClientRecord: Sendable, Hashable {
    /// The instance ID (unique per process run).
    package var id: String
    /// The application name the client was configured with.
    package var application: String
    /// The host name.
    package var host: String
    /// The process ID.
    package var pid: Int64
    /// The Flagpole library version.
    package var version: String
    /// The environment.
    package var environment: String
    /// The revision the instance has applied; nil before it has any data from Redis.
    package var revision: Int64?
    /// Where its flags come from: `redis`, `disk`, `files` or `defaults`.
    package var source: String
    /// Whether it is subscribed and caught up.
    package var inSync: Bool
    /// How old its data is (0 while in sync); nil without data.
    package var dataAgeSeconds: Double?
    /// When it started (Unix seconds).
    package var startedAt: Int64
    /// Its latest heartbeat (Unix seconds).
    package var lastSeen: Int64
    /// How long the record lives without another heartbeat.
    package var ttlSeconds: Int64

    /// A record from its parts.
    package init(
        id: String, application: String, host: String, pid: Int64, version: String, environment: String, revision: Int64?,
        source: String, inSync: Bool, dataAgeSeconds: Double?, startedAt: Int64, lastSeen: Int64, ttlSeconds: Int64
    ) {
        self.id = id
        self.application = application
        self.host = host
        self.pid = pid
        self.version = version
        self.environment = environment
        self.revision = revision
        self.source = source
        self.inSync = inSync
        self.dataAgeSeconds = dataAgeSeconds
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.ttlSeconds = ttlSeconds
    }

    /// The record as stored.
    package var json: JSONValue {
        [
            "id": .string(id), "application": .string(application), "host": .string(host), "pid": .int(pid),
            "version": .string(version), "environment": .string(environment), "revision": revision.map { .int($0) } ?? .null,
            "source": .string(source), "inSync": .bool(inSync), "dataAgeSeconds": dataAgeSeconds.map { .double($0) } ?? .null,
            "startedAt": .int(startedAt), "lastSeen": .int(lastSeen), "ttlSeconds": .int(ttlSeconds),
        ]
    }

    /// Reads a stored record.
    package init(json: JSONValue) throws(StoreError) {
        guard case .object(let o) = json, let id = o["id"]?.stringValue else {
            throw StoreError(code: .corruptData, message: "a client record must be a JSON object with \"id\"")
        }
        self.id = id
        application = o["application"]?.stringValue ?? ""
        host = o["host"]?.stringValue ?? ""
        pid = Int64(o["pid"]?.numberValue ?? 0)
        version = o["version"]?.stringValue ?? ""
        environment = o["environment"]?.stringValue ?? ""
        revision = o["revision"]?.numberValue.map { Int64($0) }
        source = o["source"]?.stringValue ?? ""
        inSync = o["inSync"]?.boolValue ?? false
        dataAgeSeconds = o["dataAgeSeconds"]?.numberValue
        startedAt = Int64(o["startedAt"]?.numberValue ?? 0)
        lastSeen = Int64(o["lastSeen"]?.numberValue ?? 0)
        ttlSeconds = Int64(o["ttlSeconds"]?.numberValue ?? 0)
    }
}

extension FlagStore {
    /// The live instances (those whose heartbeat has not expired), sorted by application, host and
    /// pid, and how many index entries belong to instances that are gone. Uses `HGETALL` and `GET`
    /// only, so both the writer and the reader ACL users may call it.
    package func clients() async throws -> (clients: [ClientRecord], gone: Int) {
        let index: RedisReply
        do {
            index = try await client.send(["HGETALL", RedisArgument(layout.clients)])
        } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        if let e = index.errorMessage { throw Self.wrongType(key: layout.clients, serverMessage: e, expected: "hash") }
        let ids = (index.dictionary ?? [:]).keys.sorted()
        guard !ids.isEmpty else { return ([], 0) }
        let replies: [RedisReply]
        do {
            replies = try await client.pipeline(ids.map { ["GET", RedisArgument(layout.client($0))] })
        } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        var records: [ClientRecord] = []
        var gone = 0
        for reply in replies {
            guard let bytes = reply.bytes, let json = try? JSONParser.parse(bytes: bytes), let record = try? ClientRecord(json: json) else {
                gone += 1
                continue
            }
            records.append(record)
        }
        records.sort { ($0.application, $0.host, $0.pid, $0.id) < ($1.application, $1.host, $1.pid, $1.id) }
        return (records, gone)
    }

    /// The ``StoreLayout/evaluated`` hash as stored: flag key → the value as written (validate it
    /// with ``StoreLayout/parseEvaluationTime(_:now:)``); empty when no client reported yet.
    package func evaluationTimes() async throws -> [String: String] {
        let reply: RedisReply
        do {
            reply = try await client.send(["HGETALL", RedisArgument(layout.evaluated)])
        } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        if let e = reply.errorMessage { throw Self.wrongType(key: layout.evaluated, serverMessage: e, expected: "hash") }
        var times: [String: String] = [:]
        for (field, value) in reply.dictionary ?? [:] {
            times[field] = value.bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        return times
    }

    /// One flag's outcome counters per variant (nil: no variant) over the minutes `minutes`, read
    /// in one pipelined round trip: what the watcher compares between treatment and control.
    package func outcomes(flag: String, minutes: ClosedRange<Int64>) async throws -> [String?: OutcomeCounts] {
        let commands = minutes.map { RedisCommand(["HGETALL", RedisArgument(layout.outcomes(flag: flag, minute: $0))]) }
        let replies: [RedisReply]
        do {
            replies = try await client.pipeline(commands)
        } catch let error as RedisError {
            throw StoreError(code: .redis, message: error.description, underlying: error)
        }
        var out: [String?: OutcomeCounts] = [:]
        for reply in replies {
            for (field, value) in reply.dictionary ?? [:] {
                // Flagpole only ever adds: a negative counter was written by hand and counts as 0.
                guard let (variant, metric) = StoreLayout.parseOutcomeField(field), let n = value.integer, n > 0 else { continue }
                var c = out[variant] ?? OutcomeCounts()
                switch metric {
                case .ok: c.succeeded.saturatingAdd(n)
                case .err: c.failed.saturatingAdd(n)
                case .micros: c.totalMicroseconds.saturatingAdd(n)
                case .timed: c.timed.saturatingAdd(n)
                }
                out[variant] = c
            }
        }
        return out
    }
}
