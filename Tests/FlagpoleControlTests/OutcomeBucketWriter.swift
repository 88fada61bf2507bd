import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting

/// Writes outcome counts into the minute buckets the way the client library's flush does
/// (`Reporter.outcomeCommands` in the Flagpole module): for each flag, minute and variant, `HINCRBY`
/// of `<variant>|ok` and `<variant>|err` in `outcomes:<minute>:<flag>`, `HINCRBY` of `flag:<flag>`
/// in the minute's summary hash, and `EXPIRE` of both after the default retention — all in one
/// pipelined round trip.
///
/// The one place the replay test writes outcomes: when the client's flush path changes (a Lua script
/// with an idempotency id), point this at the shared code.
struct OutcomeBucketWriter {
    /// One flag's counts under one variant in one minute.
    struct Bucket: Hashable, Comparable {
        var flag: String
        var minute: Int64
        /// nil: the caller's code default.
        var variant: String?

        static func < (a: Bucket, b: Bucket) -> Bool {
            (a.minute, a.flag, a.variant ?? "") < (b.minute, b.flag, b.variant ?? "")
        }
    }

    /// Outcomes that succeeded and failed.
    struct Counts: Hashable {
        var ok: Int64 = 0
        var err: Int64 = 0
    }

    let client: RedisClient
    let layout: StoreLayout
    /// Seconds the buckets are kept. Default: ``StoreLayout/defaultOutcomeRetention`` (6 hours).
    var retention: Int64 = StoreLayout.defaultOutcomeRetention.components.seconds

    /// The commands a flush of `counts` sends, in the client's order: the counters, the summary, the expiries.
    func commands(_ counts: [Bucket: Counts]) -> [RedisCommand] {
        var commands: [RedisCommand] = []
        var summary: [Int64: [String: Int64]] = [:]
        var keys: Set<String> = []
        for (b, c) in counts.sorted(by: { $0.key < $1.key }) where c.ok != 0 || c.err != 0 {
            let key = layout.outcomes(flag: b.flag, minute: b.minute)
            for (metric, n) in [(OutcomeMetric.ok, c.ok), (.err, c.err)] where n != 0 {
                commands.append([
                    "HINCRBY", RedisArgument(key), RedisArgument(StoreLayout.outcomeField(variant: b.variant, metric)), RedisArgument(n),
                ])
            }
            keys.insert(key)
            summary[b.minute, default: [:]][b.flag, default: 0] += c.ok + c.err
        }
        for (minute, flags) in summary.sorted(by: { $0.key < $1.key }) {
            for (flag, total) in flags.sorted(by: { $0.key < $1.key }) {
                commands.append([
                    "HINCRBY", RedisArgument(layout.outcomeSummary(minute: minute)), RedisArgument(StoreLayout.outcomeSummaryField(flag: flag)),
                    RedisArgument(total),
                ])
            }
        }
        for key in keys.sorted() { commands.append(["EXPIRE", RedisArgument(key), RedisArgument(retention)]) }
        for minute in summary.keys.sorted() {
            commands.append(["EXPIRE", RedisArgument(layout.outcomeSummary(minute: minute)), RedisArgument(retention)])
        }
        return commands
    }

    /// Sends ``commands(_:)`` in one pipeline; throws on the first error reply.
    func flush(_ counts: [Bucket: Counts]) async throws {
        let commands = commands(counts)
        guard !commands.isEmpty else { return }
        let replies = try await client.pipeline(commands)
        if let error = replies.lazy.compactMap(\.errorMessage).first {
            throw RedisServerError("an outcome write was refused: \(error)")
        }
    }
}
