/// Where deterministic CBOR bytes go: a byte array (tests, tools) or straight into a hasher.
protocol CBORSink {
    mutating func write(_ byte: UInt8)
    mutating func write(utf8Of string: String)
}

extension MurmurHash3: CBORSink {
    @inline(__always)
    mutating func write(_ byte: UInt8) { combine(byte) }
    @inline(__always)
    mutating func write(utf8Of string: String) { combine(utf8Of: string) }
}

/// Collects CBOR bytes in an array.
struct CBORBytes: CBORSink {
    var bytes: [UInt8] = []
    mutating func write(_ byte: UInt8) { bytes.append(byte) }
    mutating func write(utf8Of string: String) { bytes.append(contentsOf: string.utf8) }
}

/// RFC 8949 §4.2.1 core deterministic CBOR for JSON values, with the number normalisation of
/// fractional v3 (NOTES.md §4.1.5): integral floats in [-2⁶³, 2⁶⁴-1] become integers (`-0.0` is `0`),
/// other floats take the shortest of half, single and double precision that is exact, and map keys
/// are sorted by their encoded bytes (shorter keys first).
enum DeterministicCBOR {
    /// The encoding of `value` as bytes.
    static func encode(_ value: JSONValue) -> [UInt8] {
        var sink = CBORBytes()
        encode(value, into: &sink)
        return sink.bytes
    }

    /// Writes the encoding of `value` into `sink`.
    static func encode<Sink: CBORSink>(_ value: JSONValue, into sink: inout Sink) {
        switch value {
        case .null: sink.write(0xF6)
        case .bool(let b): sink.write(b ? 0xF5 : 0xF4)
        case .int(let i): writeInteger(i, into: &sink)
        case .double(let d): writeNumber(d, into: &sink)
        case .string(let s): writeText(s, into: &sink)
        case .array(let a):
            writeHeader(major: 4, UInt64(a.count), into: &sink)
            for element in a { encode(element, into: &sink) }
        case .object(let o):
            writeHeader(major: 5, UInt64(o.count), into: &sink)
            // Text keys: the encoded order is length first, then bytes.
            let keys = o.keys.sorted { a, b in
                let la = a.utf8.count, lb = b.utf8.count
                if la != lb { return la < lb }
                return a.utf8.lexicographicallyPrecedes(b.utf8)
            }
            for key in keys {
                writeText(key, into: &sink)
                encode(o[key]!, into: &sink)
            }
        }
    }

    /// A definite-length text string: header, then the UTF-8 bytes.
    @inline(__always)
    static func writeText<Sink: CBORSink>(_ s: String, into sink: inout Sink) {
        writeHeader(major: 3, UInt64(s.utf8.count), into: &sink)
        sink.write(utf8Of: s)
    }

    /// A major type with its argument in the shortest form.
    @inline(__always)
    static func writeHeader<Sink: CBORSink>(major: UInt8, _ argument: UInt64, into sink: inout Sink) {
        let m = major << 5
        switch argument {
        case 0..<24:
            sink.write(m | UInt8(argument))
        case 24...0xFF:
            sink.write(m | 24)
            sink.write(UInt8(argument))
        case 0x100...0xFFFF:
            sink.write(m | 25)
            writeBigEndian(UInt64(argument), bytes: 2, into: &sink)
        case 0x1_0000...0xFFFF_FFFF:
            sink.write(m | 26)
            writeBigEndian(argument, bytes: 4, into: &sink)
        default:
            sink.write(m | 27)
            writeBigEndian(argument, bytes: 8, into: &sink)
        }
    }

    @inline(__always)
    private static func writeBigEndian<Sink: CBORSink>(_ value: UInt64, bytes: Int, into sink: inout Sink) {
        var shift = (bytes - 1) * 8
        while shift >= 0 {
            sink.write(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            shift -= 8
        }
    }

    static func writeInteger<Sink: CBORSink>(_ i: Int64, into sink: inout Sink) {
        if i >= 0 {
            writeHeader(major: 0, UInt64(i), into: &sink)
        } else {
            // -1 - i, which is the bitwise complement.
            writeHeader(major: 1, UInt64(bitPattern: ~i), into: &sink)
        }
    }

    static func writeNumber<Sink: CBORSink>(_ d: Double, into sink: inout Sink) {
        if d.isFinite, d == d.rounded(.towardZero) {
            if d >= -9_223_372_036_854_775_808.0 && d < 9_223_372_036_854_775_808.0 {
                writeInteger(Int64(d), into: &sink)
                return
            }
            if d >= 9_223_372_036_854_775_808.0 && d < 18_446_744_073_709_551_616.0 {
                writeHeader(major: 0, UInt64(d), into: &sink)
                return
            }
        }
        if let half = halfBits(exactly: d) {
            sink.write(0xF9)
            writeBigEndian(UInt64(half), bytes: 2, into: &sink)
            return
        }
        let single = Float(d)
        if Double(single) == d {
            sink.write(0xFA)
            writeBigEndian(UInt64(single.bitPattern), bytes: 4, into: &sink)
            return
        }
        sink.write(0xFB)
        writeBigEndian(d.bitPattern, bytes: 8, into: &sink)
    }

    /// The IEEE 754 half-precision bits of `d` when it is exactly representable (NaN and the
    /// infinities included, as CBOR encoders write them).
    static func halfBits(exactly d: Double) -> UInt16? {
        if d.isNaN { return 0x7E00 }
        let sign: UInt16 = d.sign == .minus ? 0x8000 : 0
        if d.isInfinite { return sign | 0x7C00 }
        let a = d.magnitude
        if a == 0 { return sign }
        if a >= 0x1p-14 {
            guard a <= 65504 else { return nil }
            let mantissa = (a.significand - 1) * 1024
            guard mantissa == mantissa.rounded(.towardZero) else { return nil }
            return sign | UInt16(Int(a.exponent) + 15) << 10 | UInt16(mantissa)
        }
        let m = a * 0x1p24
        guard m == m.rounded(.towardZero), m >= 1, m < 1024 else { return nil }
        return sign | UInt16(m)
    }
}
