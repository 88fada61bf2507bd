import Synchronization

/// Counters that many threads add to without sharing a cache line: `stripes` rows of `width`
/// atomic counters, each row on cache lines of its own. A thread adds to the row of its
/// ``ThreadSlot/stripe``; a reader sums the column. The first rows belong to one thread each,
/// which adds without a locked instruction; the rest are shared.
final class StripedCounters: Sendable {
    /// How many threads of a process get a row of their own (see ``ThreadSlot/stripe``); later
    /// threads share as many more rows with locked adds.
    static let exclusiveStripes = 16

    /// Rows; a power of two.
    let stripes: Int
    /// Counters per row.
    let width: Int
    private let rowStride: Int
    nonisolated(unsafe) private let cells: UnsafeMutablePointer<Atomic<Int>>

    /// 128 bytes: two cache lines, since neighbouring lines are fetched in pairs.
    private static let lineBytes = 128

    init(stripes: Int = 2 * StripedCounters.exclusiveStripes, width: Int) {
        precondition(stripes > 0 && stripes & (stripes - 1) == 0, "stripes must be a power of two")
        self.stripes = stripes
        self.width = width
        let perLine = Self.lineBytes / MemoryLayout<Atomic<Int>>.stride
        rowStride = (width + perLine - 1) / perLine * perLine
        let count = rowStride * stripes
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Atomic<Int>>.stride, alignment: Self.lineBytes)
        cells = raw.bindMemory(to: Atomic<Int>.self, capacity: count)
        for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: rowStride * stripes)
        UnsafeMutableRawPointer(cells).deallocate()
    }

    /// Adds `amount` to counter `index` in the row of `stripe`. A thread that owns its stripe
    /// (no other thread writes that row) adds with a plain load and store instead of a locked
    /// read-modify-write; readers still see whole values.
    @inline(__always)
    func add(_ amount: Int = 1, at index: Int, stripe: Int, exclusive: Bool) {
        let cell = cells + ((stripe & (stripes - 1)) * rowStride + index)
        if exclusive {
            cell.pointee.store(cell.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
        } else {
            cell.pointee.wrappingAdd(amount, ordering: .relaxed)
        }
    }

    /// The sum of counter `index` over every row.
    func total(_ index: Int) -> Int {
        var sum = 0
        for s in 0..<stripes { sum &+= cells[s * rowStride + index].load(ordering: .relaxed) }
        return sum
    }
}
