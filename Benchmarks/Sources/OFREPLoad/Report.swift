/// The text `ofrep-load` prints: one fact per line, numbers followed by their unit.
struct Report {
    var options: Options
    /// With its latencies and service times sorted.
    var tally: Tally
    var cpuNanoseconds: Int64
    var wallNanoseconds: Int64

    var achievedRate: Double { Double(tally.latencies.count) / options.duration.seconds }

    /// True when an open-loop run achieved less than 95% of its target rate.
    var fellBehind: Bool { options.rate > 0 && achievedRate < 0.95 * options.rate }

    var lines: [String] {
        let threads = options.threads == 1 ? "1 thread" : "\(options.threads) threads"
        let load = options.rate > 0 ? "target \(fixed(options.rate, 0)) req/s (open loop)" : "closed loop"
        return [
            "ofrep-load: \(options.connections) connections (\(threads)), \(load),"
                + " \(fixed(options.duration.seconds, 1)) s after \(fixed(options.warmUp.seconds, 1)) s warm-up",
            "requests \(tally.latencies.count), achieved \(fixed(achievedRate, 0)) req/s, non-2xx \(tally.non2xx),"
                + " socket errors \(tally.socketErrors), timeouts \(tally.timeouts), lost with a broken connection \(tally.lost),"
                + " reconnects \(tally.reconnects)",
            "latency (from intended send)  " + percentiles(withFailures(tally.latencies)),
            "service time (from write)     " + percentiles(withFailures(tally.serviceTimes)),
            "(timeouts and requests lost with a broken connection count as the worst latency: \(failures) of \(tally.latencies.count + failures);"
                + " a percentile among them prints as 'failed')",
            "generator CPU \(fixed(Double(cpuNanoseconds) / 1e9, 1)) s user+sys"
                + " (\(fixed(100 * Double(cpuNanoseconds) / Double(max(wallNanoseconds, 1)), 0))% of one core)",
        ]
    }

    /// Requests that never got an answer: timeouts and those lost with a broken connection.
    var failures: Int { tally.timeouts + tally.lost }

    /// `sorted` with one `Int64.max` (worse than any answer) per failed request, still sorted.
    private func withFailures(_ sorted: [Int64]) -> [Int64] {
        sorted + Array(repeating: Int64.max, count: failures)
    }

    private func percentiles(_ sorted: [Int64]) -> String {
        guard let max = sorted.last else { return "no samples" }
        let points: [(name: String, fraction: Double)] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)]
        let values = points.map { "\($0.name) \(milliseconds(percentile(sorted, $0.fraction)))" }
        return (values + ["max \(milliseconds(max))"]).joined(separator: "  ")
    }
}

/// The nearest-rank percentile: the smallest sample with at least `fraction` of the samples at or
/// below it.
func percentile(_ sorted: [Int64], _ fraction: Double) -> Int64 {
    let rank = Int((fraction * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

/// Nanoseconds as milliseconds with three significant digits: `0.213 ms`, `1.83 ms`, `18.3 ms`.
func milliseconds(_ nanoseconds: Int64) -> String {
    if nanoseconds == Int64.max { return "failed" }
    let value = Double(nanoseconds) / 1e6
    let decimals = value < 1 ? 3 : value < 10 ? 2 : value < 100 ? 1 : 0
    return "\(fixed(value, decimals)) ms"
}

/// `value` rounded to `decimals` places, without Foundation's `String(format:)`.
func fixed(_ value: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int64((abs(value) * scale).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    let whole = scaled / Int64(scale)
    guard decimals > 0 else { return "\(sign)\(whole)" }
    let fraction = String(scaled % Int64(scale))
    return "\(sign)\(whole)." + String(repeating: "0", count: decimals - fraction.count) + fraction
}
