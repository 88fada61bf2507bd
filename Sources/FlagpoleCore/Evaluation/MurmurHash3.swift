/// MurmurHash3 x86 32-bit (seed 0), computed incrementally so callers can feed bytes straight
/// from strings or from a CBOR encoder without building a buffer first.
///
/// This is the hash `fractional` buckets with (NOTES.md §4.1.2); the result is unsigned.
struct MurmurHash3: Sendable {
    private var h1: UInt32
    /// Up to three bytes not yet forming a 4-byte block, little-endian.
    private var pending: UInt32 = 0
    private var pendingCount: Int = 0
    /// Total bytes fed, modulo 2³² (the reference mixes the length in as a 32-bit value).
    private var length: UInt32 = 0

    private static let c1: UInt32 = 0xcc9e_2d51
    private static let c2: UInt32 = 0x1b87_3593

    init(seed: UInt32 = 0) {
        h1 = seed
    }

    /// The hash of `bytes` in one go.
    static func hash(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var h = MurmurHash3()
        for b in bytes { h.combine(b) }
        return h.finalize()
    }

    /// The hash of a string's UTF-8 bytes.
    static func hash(_ string: String) -> UInt32 {
        var h = MurmurHash3()
        h.combine(utf8Of: string)
        return h.finalize()
    }

    @inline(__always)
    private static func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 {
        (x << r) | (x >> (32 - r))
    }

    @inline(__always)
    private mutating func mixBlock(_ block: UInt32) {
        var k1 = block &* MurmurHash3.c1
        k1 = MurmurHash3.rotl(k1, 15)
        k1 = k1 &* MurmurHash3.c2
        h1 ^= k1
        h1 = MurmurHash3.rotl(h1, 13)
        h1 = h1 &* 5 &+ 0xe654_6b64
    }

    /// Feeds one byte.
    @inline(__always)
    mutating func combine(_ byte: UInt8) {
        pending |= UInt32(byte) << UInt32(8 * pendingCount)
        pendingCount += 1
        length &+= 1
        if pendingCount == 4 {
            mixBlock(pending)
            pending = 0
            pendingCount = 0
        }
    }

    /// Feeds a run of bytes, four at a time where it can.
    mutating func combine(bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        var i = 0
        while pendingCount != 0 && i < n {
            combine(bytes[i])
            i += 1
        }
        let blockStart = i
        while i + 4 <= n {
            mixBlock(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            i += 4
        }
        length &+= UInt32(truncatingIfNeeded: i - blockStart)
        while i < n {
            combine(bytes[i])
            i += 1
        }
    }

    /// Feeds the UTF-8 bytes of a string without copying them when the string is native.
    @inline(__always)
    mutating func combine(utf8Of string: String) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { buffer in
            combine(bytes: UnsafeRawBufferPointer(buffer))
        }
        if done == nil {
            for b in string.utf8 { combine(b) }
        }
    }

    /// The final, unsigned 32-bit hash. The hasher can keep being fed afterwards.
    func finalize() -> UInt32 {
        var h = h1
        if pendingCount > 0 {
            var k1 = pending &* MurmurHash3.c1
            k1 = MurmurHash3.rotl(k1, 15)
            k1 = k1 &* MurmurHash3.c2
            h ^= k1
        }
        h ^= length
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }
}
