/// When requests are due. All times are `monotonicNanoseconds()`.
///
/// Open loop: the rate is spread evenly over the connections. Connection i (of n, over all threads)
/// sends its k-th request at `start + i * interval / n + k * interval`, with `interval = n / rate`,
/// so that together the connections send one request every `1 / rate`.
struct Schedule {
    /// The start of the warm-up.
    var start: Int64
    /// The end of the warm-up: requests due from here on are recorded.
    var measuredStart: Int64
    /// No request is sent from here on.
    var end: Int64
    /// How long after `end` answers to the requests still in flight are awaited; those not answered
    /// by then count as timeouts.
    var drainTimeout: Int64 = 2_000_000_000
    /// The time between two requests of one connection; nil in closed loop.
    var interval: Int64?
    /// How early a request may go out (`--send-ahead`): a wait on a timer ends some microseconds
    /// late, so the worker wakes this much before the due time and sends what is due within it. A
    /// request that goes out early has its latency counted from when it went out, never from the
    /// later due time, so sending ahead makes the load burstier, never the figures better.
    var sendAhead: Int64


    init(options: Options, start: Int64) {
        self.start = start
        measuredStart = start + options.warmUp.nanoseconds
        end = measuredStart + options.duration.nanoseconds
        sendAhead = options.sendAhead.nanoseconds
        if options.rate > 0 {
            interval = Int64((Double(options.connections) / options.rate * 1e9).rounded())
        }
    }

    /// When connection `index` of `count` sends its first request.
    func firstSend(connection index: Int, of count: Int) -> Int64 {
        guard let interval else { return start }
        return start + interval * Int64(index) / Int64(count)
    }

    var drainDeadline: Int64 { end + drainTimeout }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    var seconds: Double { Double(nanoseconds) / 1e9 }
}
