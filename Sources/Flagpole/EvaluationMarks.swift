import Synchronization

/// One mark per flag of a snapshot: set by the first evaluation that finds the flag, cleared by
/// whoever collects the marks (the heartbeat, or the updater when the snapshot is replaced). What
/// `flagctl list --stale` learns "last evaluated" from.
///
/// Marking costs a relaxed load of one byte and, only when it reads 0, a relaxed store of 1: after
/// the first evaluation of a flag in a period its cache line is only read, by every thread, with
/// no locked instruction and no allocation. Collecting exchanges each mark with 0, so every mark
/// is collected once, by one collector, even when two collect at the same time.
final class EvaluationMarks: Sendable {
    /// How many flags (positions 0 ..< count).
    let count: Int
    nonisolated(unsafe) private let cells: UnsafeMutablePointer<Atomic<UInt8>>

    /// Marks for `count` flag positions, all clear.
    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Atomic<UInt8>>.stride, alignment: MemoryLayout<Atomic<UInt8>>.alignment)
        cells = raw.bindMemory(to: Atomic<UInt8>.self, capacity: max(count, 1))
        for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: count)
        UnsafeMutableRawPointer(cells).deallocate()
    }

    /// Marks the flag at `position` evaluated. A position outside the snapshot (which its own
    /// lookups never give) marks nothing rather than write outside the allocation.
    @inline(__always)
    func mark(_ position: Int) {
        guard _fastPath(UInt(bitPattern: position) < UInt(bitPattern: count)) else { return }
        let cell = cells + position
        if cell.pointee.load(ordering: .relaxed) == 0 { cell.pointee.store(1, ordering: .relaxed) }
    }

    /// Marks every flag (a bulk evaluation, which hands out every flag's value).
    func markAll() {
        for i in 0..<count { mark(i) }
    }

    /// Whether the flag at `position` is marked (for tests).
    func isMarked(_ position: Int) -> Bool {
        position >= 0 && position < count && cells[position].load(ordering: .relaxed) != 0
    }

    /// The marked positions, each cleared as it is taken.
    func take() -> [Int] {
        var taken: [Int] = []
        for i in 0..<count where cells[i].load(ordering: .relaxed) != 0 {
            if cells[i].exchange(0, ordering: .relaxed) != 0 { taken.append(i) }
        }
        return taken
    }
}
