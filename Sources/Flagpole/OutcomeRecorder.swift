import FlagpoleCore
import FlagpoleStore
import Synchronization

/// Outcome counts kept in memory until the next flush: per flag and variant, in striped tables so
/// that threads recording at once rarely meet on a lock, and bounded so memory stays flat
/// whatever the traffic.
///
/// Recording takes the lock of the caller's stripe (uncontended in practice: each thread has a
/// stripe of its own up to the stripe count), hashes the flag key and variant with a fast
/// non-cryptographic hash, and adds to the entry in place; no allocation once the entry exists.
/// A timed outcome also adds one to its latency bucket (``LatencyHistogram/bucket(micros:)``: a
/// leading-zero count and a shift) in the entry's row of a flat bucket array.
/// A flush takes each stripe's counts and zeroes them, keeping the entries for the next second.
final class OutcomeRecorder: Sendable {
    private let stripes: [Stripe]
    private let mask: Int

    /// One stripe: a table behind its own lock, padded so two stripes never share a cache line.
    final class Stripe: Sendable {
        let table: Mutex<OutcomeTable>
        // Padding: the lock and the table's header stay on lines of their own.
        private let padding: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)

        init(limit: Int) {
            table = Mutex(OutcomeTable(limit: limit))
        }
    }

    /// - Parameters:
    ///   - stripes: a power of two.
    ///   - limit: the most flag/variant pairs one stripe holds between flushes; past it outcomes
    ///     for new pairs are dropped and counted.
    init(stripes: Int = 16, limit: Int) {
        precondition(stripes > 0 && stripes & (stripes - 1) == 0)
        self.stripes = (0..<stripes).map { _ in Stripe(limit: limit) }
        mask = stripes - 1
    }

    /// Adds `count` outcomes (1 or more), each with the same success and duration.
    @inline(__always)
    func record(stripe: Int, flag: String, variant: String?, success: Bool, micros: Int64?, count: Int64 = 1) {
        let hash = OutcomeTable.hash(flag, variant)
        stripes[stripe & mask].table.withLock {
            $0.record(hash: hash, flag: flag, variant: variant, success: success, micros: micros, count: count)
        }
    }

    /// Takes every count recorded since the last drain, merged over the stripes, and how many
    /// outcomes were dropped.
    func drain() -> (counts: [OutcomeTable.Key: OutcomeTotals], dropped: Int64) {
        var merged: [OutcomeTable.Key: OutcomeTotals] = [:]
        var dropped: Int64 = 0
        for stripe in stripes {
            stripe.table.withLock { table in
                dropped.saturatingAdd(table.drain { key, counts, buckets in merged[key, default: OutcomeTotals()].add(counts, buckets: buckets) })
            }
        }
        return (merged, dropped)
    }
}

/// One flag and variant's counts and latency histogram, as drained and as waiting to be sent.
/// Every sum saturates: counts arrive from reports, and a wrapped sum would be a negative one.
struct OutcomeTotals: Hashable {
    var counts = OutcomeCounts()
    /// Empty (no allocation) until a timed outcome arrives.
    var latency: [Int64] = []

    mutating func add(_ c: OutcomeCounts, buckets: UnsafeBufferPointer<UInt32>) {
        counts.add(c)
        guard c.timed != 0 else { return }
        if latency.isEmpty { latency = [Int64](repeating: 0, count: LatencyHistogram.bucketCount) }
        for (k, n) in zip(latency.indices, buckets) { latency[k].saturatingAdd(Int64(n)) }
    }

    mutating func add(_ other: OutcomeTotals) {
        counts.add(other.counts)
        guard !other.latency.isEmpty else { return }
        if latency.isEmpty {
            latency = other.latency
        } else {
            for k in latency.indices { latency[k].saturatingAdd(other.latency[k]) }
        }
    }
}

/// A bounded open-addressing table from (flag, variant) to counts.
struct OutcomeTable {
    struct Key: Hashable, Sendable {
        var flag: String
        var variant: String?
    }

    private var slots: [Int32]
    private var hashes: [UInt64] = []
    private var keys: [Key] = []
    private var counts: [OutcomeCounts] = []
    /// ``LatencyHistogram/bucketCount`` counters per entry, entry `i` at `i * bucketCount`. A
    /// buffer of its own rather than an array: no uniqueness or bounds check on the hot path (the
    /// table lives in one stripe's `Mutex` and is never copied).
    private let buckets = BucketRows()
    private var dropped: Int64 = 0
    private let limit: Int

    init(limit: Int) {
        self.limit = max(1, limit)
        var capacity = 16
        while capacity < min(self.limit, 1024) * 2 { capacity *= 2 }
        slots = [Int32](repeating: -1, count: capacity)
    }

    @inline(__always)
    mutating func record(hash: UInt64, flag: String, variant: String?, success: Bool, micros: Int64?, count: Int64) {
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: hash) & mask
        while true {
            let i = Int(slots[s])
            if i < 0 { break }
            if hashes[i] == hash && keys[i].flag == flag && keys[i].variant == variant {
                Self.add(&counts[i], success: success, micros: micros, count: count)
                if let micros {
                    buckets.pointer[i &* LatencyHistogram.bucketCount &+ LatencyHistogram.bucket(micros: micros)]
                        .saturatingAdd(UInt32(clamping: count))
                }
                return
            }
            s = (s + 1) & mask
        }
        insert(hash: hash, slot: s, flag: flag, variant: variant, success: success, micros: micros, count: count)
    }

    @inline(never)
    private mutating func insert(hash: UInt64, slot: Int, flag: String, variant: String?, success: Bool, micros: Int64?, count: Int64) {
        guard keys.count < limit else {
            dropped.saturatingAdd(count)
            return
        }
        var s = slot
        if (keys.count + 1) * 2 > slots.count {
            grow()
            let mask = slots.count - 1
            s = Int(truncatingIfNeeded: hash) & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
        }
        slots[s] = Int32(keys.count)
        hashes.append(hash)
        keys.append(Key(flag: flag, variant: variant))
        var c = OutcomeCounts()
        Self.add(&c, success: success, micros: micros, count: count)
        counts.append(c)
        buckets.ensure(rows: keys.count)
        let row = (keys.count - 1) * LatencyHistogram.bucketCount
        (buckets.pointer + row).update(repeating: 0, count: LatencyHistogram.bucketCount)
        if let micros { buckets.pointer[row + LatencyHistogram.bucket(micros: micros)] = UInt32(clamping: count) }
    }

    private mutating func grow() {
        var fresh = [Int32](repeating: -1, count: slots.count * 2)
        let mask = fresh.count - 1
        for (i, h) in hashes.enumerated() {
            var s = Int(truncatingIfNeeded: h) & mask
            while fresh[s] >= 0 { s = (s + 1) & mask }
            fresh[s] = Int32(i)
        }
        slots = fresh
    }

    @inline(__always)
    private static func add(_ c: inout OutcomeCounts, success: Bool, micros: Int64?, count: Int64) {
        if success { c.succeeded.saturatingAdd(count) } else { c.failed.saturatingAdd(count) }
        if let micros {
            c.totalMicroseconds.saturatingAdd(micros.saturatingMultiplied(by: count))
            c.timed.saturatingAdd(count)
        }
    }

    /// Hands over every non-zero entry with its latency buckets and zeroes them; returns the
    /// outcomes dropped since the last drain. Entries stay for the next second unless the table is
    /// more than half full, when it is emptied so that pairs no longer in use leave.
    mutating func drain(_ body: (Key, OutcomeCounts, UnsafeBufferPointer<UInt32>) -> Void) -> Int64 {
        let width = LatencyHistogram.bucketCount
        for i in counts.indices where !counts[i].isEmpty {
            let row = buckets.pointer + i * width
            body(keys[i], counts[i], UnsafeBufferPointer(start: row, count: width))
            if counts[i].timed != 0 { row.update(repeating: 0, count: width) }
            counts[i] = OutcomeCounts()
        }
        if keys.count * 2 > limit {
            for i in slots.indices { slots[i] = -1 }
            hashes.removeAll(keepingCapacity: true)
            keys.removeAll(keepingCapacity: true)
            counts.removeAll(keepingCapacity: true)
        }
        defer { dropped = 0 }
        return dropped
    }

    /// A fast 64-bit hash of the pair's UTF-8 bytes (not for untrusted keys in general: the table
    /// is bounded, so a collision costs a probe, never memory).
    @inline(__always)
    static func hash(_ flag: String, _ variant: String?) -> UInt64 {
        var h = FastHash.hash(flag, seed: 0x243F_6A88_85A3_08D3)
        if let variant { h = FastHash.hash(variant, seed: h ^ 0x1319_8A2E_0370_7344) }
        return h
    }

}

/// Rows of latency-bucket counters in one buffer that grows by doubling; owned by one
/// ``OutcomeTable`` and only touched under its stripe's lock.
final class BucketRows {
    private(set) var pointer: UnsafeMutablePointer<UInt32>
    private var rows: Int

    init() {
        rows = 16
        pointer = .allocate(capacity: rows * LatencyHistogram.bucketCount)
    }

    /// Makes room for `needed` rows, keeping the counts of the existing ones.
    func ensure(rows needed: Int) {
        guard needed > rows else { return }
        var n = rows
        while n < needed { n *= 2 }
        let fresh = UnsafeMutablePointer<UInt32>.allocate(capacity: n * LatencyHistogram.bucketCount)
        fresh.moveInitialize(from: pointer, count: rows * LatencyHistogram.bucketCount)
        pointer.deallocate()
        pointer = fresh
        rows = n
    }

    deinit { pointer.deallocate() }
}
