/// Saturating arithmetic for counts that come from outside the process (HTTP reports, Redis
/// hashes another process wrote): a sum past the type's range stops at its bound instead of
/// wrapping (a negative latency sum) or trapping (a crashed watcher).
extension FixedWidthInteger {
    /// `self + other`, clamped to the type's range.
    @inlinable @inline(__always)
    package func saturatingAdding(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other < 0 ? .min : .max
    }

    /// `self * other`, clamped to the type's range.
    @inlinable @inline(__always)
    package func saturatingMultiplied(by other: Self) -> Self {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        guard overflow else { return product }
        return (self < 0) != (other < 0) ? .min : .max
    }

    /// Adds `other` in place, clamped to the type's range.
    @inlinable @inline(__always)
    package mutating func saturatingAdd(_ other: Self) {
        self = saturatingAdding(other)
    }
}
