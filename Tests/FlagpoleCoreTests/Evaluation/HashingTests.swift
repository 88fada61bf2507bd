import Testing

@testable import FlagpoleCore

@Suite("MurmurHash3 x86_32")
struct MurmurHash3Tests {
    @Test(
        "testbed edge vectors (NOTES.md §4.1.2)",
        arguments: [
            ("ejOoVL", UInt32(0)),
            ("bY9fO-", 1),
            ("SI7p-", 2_147_483_647),
            ("6LvT0", 2_147_483_648),
            ("ceQdGm", 4_294_967_295),
        ])
    func edgeVectors(input: String, expected: UInt32) {
        #expect(MurmurHash3.hash(input) == expected)
    }

    @Test(
        "reference vectors with seed 0",
        arguments: [
            ("", UInt32(0)),
            ("hello", 0x248B_FA47),
            ("The quick brown fox jumps over the lazy dog", 0x2E4F_F723),
        ])
    func referenceVectors(input: String, expected: UInt32) {
        #expect(MurmurHash3.hash(input) == expected)
    }

    @Test("feeding bytes in any split gives the one-shot hash")
    func incremental() {
        let bytes = Array("fractional-flag-shorthand jon@company.com ü 水".utf8)
        let whole = MurmurHash3.hash(bytes)
        for split in 0...bytes.count {
            for second in split...bytes.count {
                var h = MurmurHash3()
                bytes[..<split].withUnsafeBytes { h.combine(bytes: $0) }
                for b in bytes[split..<second] { h.combine(b) }
                bytes[second...].withUnsafeBytes { h.combine(bytes: $0) }
                #expect(h.finalize() == whole, "split at \(split), \(second)")
            }
        }
    }
}

@Suite("deterministic CBOR")
struct DeterministicCBORTests {
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    @Test(
        "RFC 8949 appendix A and v3 normalisation",
        arguments: [
            (JSONValue.int(0), "00"),
            (.int(23), "17"),
            (.int(24), "1818"),
            (.int(100), "1864"),
            (.int(1000), "1903e8"),
            (.int(1_000_000), "1a000f4240"),
            (.int(1_000_000_000_000), "1b000000e8d4a51000"),
            (.int(-1), "20"),
            (.int(-24), "37"),
            (.int(-25), "3818"),
            (.int(-1000), "3903e7"),
            (.int(.min), "3b7fffffffffffffff"),
            (.double(0.0), "00"),
            (.double(-0.0), "00"),
            (.double(1.0), "01"),
            (.double(-4.0), "23"),
            (.double(65504.0), "19ffe0"),
            (.double(9_223_372_036_854_775_808.0), "1b8000000000000000"),
            (.double(-9_223_372_036_854_775_808.0), "3b7fffffffffffffff"),
            (.double(1.5), "f93e00"),
            (.double(1.1), "fb3ff199999999999a"),
            (.double(-4.1), "fbc010666666666666"),
            (.double(0.00006103515625), "f90400"),
            (.double(5.960464477539063e-8), "f90001"),
            (.double(100000.5), "fa47c35040"),
            (.double(3.4028234663852886e+38), "fa7f7fffff"),
            (.double(1e20), "fb4415af1d78b58c40"),
            (.double(1.0e+300), "fb7e37e43c8800759c"),
            (.double(.infinity), "f97c00"),
            (.double(-.infinity), "f9fc00"),
            (.double(.nan), "f97e00"),
            (.bool(false), "f4"),
            (.bool(true), "f5"),
            (.null, "f6"),
            (.string(""), "60"),
            (.string("IETF"), "6449455446"),
            (.string("\"\\"), "62225c"),
            (.string("ü"), "62c3bc"),
            (.string("水"), "63e6b0b4"),
            (.array([]), "80"),
            (.array([1, [2, 3], [4, 5]]), "8301820203820405"),
            (.object([:]), "a0"),
            (.object(["a": 1, "b": [2, 3]]), "a26161016162820203"),
            (.object(["z": 1, "aa": 2]), "a2617a0162616102"),
            (.object(["aaa": 1, "ÿ": 2]), "a262c3bf0263616161" + "01"),
        ])
    func encodings(value: JSONValue, expected: String) {
        #expect(Self.hex(DeterministicCBOR.encode(value)) == expected)
    }

    @Test("encoding straight into the hasher hashes the encoded bytes")
    func hashingMatchesBytes() throws {
        let value = try JSONParser.parse(#"{"c": 0.0, "b": -0.0, "a": {"b": [1, "two", true, null, 2.5]}}"#)
        var h = MurmurHash3()
        DeterministicCBOR.encode(value, into: &h)
        #expect(h.finalize() == MurmurHash3.hash(DeterministicCBOR.encode(value)))
    }
}
