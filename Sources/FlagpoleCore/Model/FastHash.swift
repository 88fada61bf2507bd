/// A fast 64-bit hash of bytes for Flagpole's own bounded tables (the flag table, outcome
/// counters). Not seeded per process: use it only where a collision costs a probe, never memory.
public enum FastHash {
    /// Hashes `raw`, starting from `seed`.
    @inlinable @inline(__always)
    public static func hash(_ raw: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let n = raw.count
        var h = seed ^ UInt64(n)
        var i = 0
        while i + 8 <= n {
            h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(raw[i]) << shift
            shift += 8
            i += 1
        }
        return mix(h ^ tail)
    }

    /// Hashes a string's UTF-8 bytes, starting from `seed`.
    @inlinable @inline(__always)
    public static func hash(_ s: String, seed: UInt64) -> UInt64 {
        if let h = s.utf8.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0), seed: seed) }) { return h }
        return Array(s.utf8).withUnsafeBytes { hash($0, seed: seed) }
    }

    /// The 64-bit finaliser (splitmix-style).
    @inlinable @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &* 0x9E37_79B9_7F4A_7C15
        z ^= z >> 32
        z = z &* 0xD6E8_FEB8_6659_FD93
        z ^= z >> 32
        return z
    }
}
