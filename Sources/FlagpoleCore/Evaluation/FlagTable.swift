/// The flags of a set by key: an open-addressing table hashed with a fast non-cryptographic hash of
/// the key's UTF-8 bytes. Looking a flag up is the first step of every evaluation, and Swift's
/// seeded SipHash costs more than a whole static-flag evaluation otherwise does.
///
/// The keys come from configuration and the table never grows after it is built, so a caller's
/// key can only probe chains that are already there; the load factor stays at or below one half.
@usableFromInline
struct FlagTable: Sendable {
    private let slots: [Int32]
    private let hashes: [UInt64]
    @usableFromInline let flags: [CompiledFlag]
    @usableFromInline let mask: Int
    /// A second table over the keys' in-memory representations (`String`'s two words): two
    /// strings with the same bits are the same string, so a hit there needs neither hashing the
    /// bytes nor comparing them. Short keys (up to 15 UTF-8 bytes) are stored inline, so a
    /// caller's literal has the same bits as the configured key. A miss falls back to the bytes.
    @usableFromInline let bitSlots: [Int32]
    @usableFromInline let bits: [StringBits]

    /// A table of `flags`; of two flags with the same key, the later one wins.
    init(_ flags: [CompiledFlag]) {
        var unique: [CompiledFlag] = []
        var position: [String: Int] = [:]
        for f in flags {
            if let i = position[f.key] {
                unique[i] = f
            } else {
                position[f.key] = unique.count
                unique.append(f)
            }
        }
        var capacity = 8
        while capacity < unique.count * 2 { capacity *= 2 }
        var slots = [Int32](repeating: -1, count: capacity)
        let hashes = unique.map { FlagTable.hash($0.key) }
        for (i, h) in hashes.enumerated() {
            var s = Int(truncatingIfNeeded: h) & (capacity - 1)
            while slots[s] >= 0 { s = (s + 1) & (capacity - 1) }
            slots[s] = Int32(i)
        }
        var bitSlots = [Int32](repeating: -1, count: capacity)
        let bits = unique.map { StringBits($0.key) }
        for (i, b) in bits.enumerated() {
            var s = b.bucket & (capacity - 1)
            while bitSlots[s] >= 0 { s = (s + 1) & (capacity - 1) }
            bitSlots[s] = Int32(i)
        }
        self.slots = slots
        self.hashes = hashes
        self.flags = unique
        self.mask = capacity - 1
        self.bitSlots = bitSlots
        self.bits = bits
    }

    /// Every flag, in no particular order.
    var all: [CompiledFlag] { flags }

    /// The flag with this key.
    @inlinable @inline(__always)
    subscript(key: String) -> CompiledFlag? {
        let b = StringBits(key)
        var t = b.bucket & mask
        while true {
            let i = Int(bitSlots[t])
            if i < 0 { break }
            if bits[i] == b { return flags[i] }
            t = (t + 1) & mask
        }
        return lookUpBytes(key)
    }

    /// The position of the flag with this key in ``flags``: the subscript's lookup (the bits
    /// first, then the bytes), for callers that read the flag by position (the client, which
    /// marks the flag evaluated there, and its flag handles).
    @inlinable @inline(__always)
    func position(of key: String) -> Int? {
        let b = StringBits(key)
        var t = b.bucket & mask
        while true {
            let i = Int(bitSlots[t])
            if i < 0 { break }
            if bits[i] == b { return i }
            t = (t + 1) & mask
        }
        return positionOfBytes(key)
    }

    /// The position of the flag with this key, found by its bytes.
    @usableFromInline func positionOfBytes(_ key: String) -> Int? {
        let h = FlagTable.hash(key)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let i = Int(slots[s])
            if i < 0 { return nil }
            if hashes[i] == h && JSONValue.utf8Equal(flags[i].key, key) { return i }
            s = (s + 1) & mask
        }
    }

    /// The flag with this key, found by its bytes.
    @usableFromInline func lookUpBytes(_ key: String) -> CompiledFlag? {
        let h = FlagTable.hash(key)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let i = Int(slots[s])
            if i < 0 { return nil }
            if hashes[i] == h && JSONValue.utf8Equal(flags[i].key, key) { return flags[i] }
            s = (s + 1) & mask
        }
    }

    @inline(__always)
    static func hash(_ key: String) -> UInt64 {
        JSONValue.withUTF8Bytes(key) { FastHash.hash(UnsafeRawBufferPointer($0), seed: 0x243F_6A88_85A3_08D3) }
    }
}

/// A string's in-memory representation (two words). Equal bits mean equal strings (the same
/// inline bytes, or the same storage); unequal bits say nothing, so this is only a fast path.
@usableFromInline
struct StringBits: Equatable, Sendable {
    @usableFromInline let low: UInt64
    @usableFromInline let high: UInt64

    @inlinable @inline(__always)
    init(_ s: String) {
        (low, high) = unsafeBitCast(s, to: (UInt64, UInt64).self)
    }

    @inlinable @inline(__always)
    var bucket: Int {
        Int(truncatingIfNeeded: FastHash.mix(low ^ (high &* 0x9E37_79B9_7F4A_7C15)))
    }

    @inlinable @inline(__always)
    static func == (a: StringBits, b: StringBits) -> Bool {
        a.low == b.low && a.high == b.high
    }
}
