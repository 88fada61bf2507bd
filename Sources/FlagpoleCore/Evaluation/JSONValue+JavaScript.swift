/// The JavaScript coercions JsonLogic is defined by (json-logic-js): truthiness, `ToNumber`,
/// `ToString`, loose and strict equality, and relational comparison. Strings compare by their
/// code units, never by Unicode canonical equivalence as Swift's `==` would.
extension JSONValue {
    /// JsonLogic truthiness: `null`, `false`, `0`, `NaN`, `""` and `[]` are false; everything else,
    /// `{}` included, is true.
    @inline(__always)
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return !(d == 0 || d.isNaN)
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object: return true
        }
    }

    /// JavaScript `ToNumber`: `null` → 0, booleans → 0/1, strings parsed as JavaScript number
    /// literals (`""` → 0, garbage → NaN), arrays through their string form, objects → NaN.
    var jsNumber: Double {
        switch self {
        case .null: return 0
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .string(let s): return JSONValue.jsNumber(parsing: s)
        case .array(let a):
            if a.isEmpty { return 0 }
            return JSONValue.jsNumber(parsing: jsString)
        case .object: return .nan
        }
    }

    /// JavaScript `ToString` (`String(value)`): numbers as JavaScript prints them, arrays joined
    /// with commas (nested `null` as empty), objects as `[object Object]`.
    var jsString: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return JSONValue.jsString(d)
        case .string(let s): return s
        case .array(let a):
            var out = ""
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                if !e.isNull { out += e.jsString }
            }
            return out
        case .object: return "[object Object]"
        }
    }

    /// The string `Array.prototype.join` uses for an element: like ``jsString`` but `null` is empty.
    var jsJoinString: String {
        isNull ? "" : jsString
    }

    /// JavaScript `==`.
    static func looseEquals(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        case (.int(let x), .int(let y)): return x == y
        case (.int, .double), (.double, .int), (.double, .double): return a.jsNumber == b.jsNumber
        case (.string(let x), .string(let y)): return utf8Equal(x, y)
        case (.bool(let x), .bool(let y)): return x == y
        case (.int, .string), (.double, .string), (.string, .int), (.string, .double):
            return a.jsNumber == b.jsNumber
        case (.bool(let x), _): return looseEquals(.int(x ? 1 : 0), b)
        case (_, .bool(let y)): return looseEquals(a, .int(y ? 1 : 0))
        case (.array, .array), (.array, .object), (.object, .array), (.object, .object):
            // Distinct objects are never equal in JavaScript.
            return false
        case (.array, _), (.object, _): return looseEquals(.string(a.jsString), b)
        case (_, .array), (_, .object): return looseEquals(a, .string(b.jsString))
        }
    }

    /// JavaScript `===` (one number type: `1 === 1.0`).
    static func strictEquals(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.int(let x), .int(let y)): return x == y
        case (.int, .double), (.double, .int), (.double, .double): return a.jsNumber == b.jsNumber
        case (.string(let x), .string(let y)): return utf8Equal(x, y)
        case (.bool(let x), .bool(let y)): return x == y
        default: return false
        }
    }

    /// The outcome of a JavaScript relational comparison.
    enum JSOrder {
        case less, equal, greater, unordered
    }

    /// JavaScript's abstract relational comparison: two strings (after `ToPrimitive`) compare by
    /// UTF-16 code units, anything else as numbers, where NaN is unordered.
    static func jsCompare(_ a: JSONValue, _ b: JSONValue) -> JSOrder {
        if case .int(let x) = a, case .int(let y) = b {
            return x < y ? .less : (x == y ? .equal : .greater)
        }
        let pa = a.jsPrimitive, pb = b.jsPrimitive
        if case .string(let x) = pa, case .string(let y) = pb {
            if utf8Equal(x, y) { return .equal }
            return x.utf16.lexicographicallyPrecedes(y.utf16) ? .less : .greater
        }
        let x = pa.jsNumber, y = pb.jsNumber
        if x < y { return .less }
        if x > y { return .greater }
        if x == y { return .equal }
        return .unordered
    }

    /// `ToPrimitive`: arrays and objects become their string form.
    private var jsPrimitive: JSONValue {
        switch self {
        case .array, .object: return .string(jsString)
        default: return self
        }
    }

    /// Byte-wise (code point) string equality.
    @inline(__always)
    static func utf8Equal(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return withUTF8Bytes(a) { pa in
            withUTF8Bytes(b) { pb in pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) }
        }
    }

    /// JavaScript's `Number::toString` for doubles: integers without a decimal point, the shortest
    /// round-tripping digits, exponent form outside [1e-7, 1e21) (`1e+21`, `1e-7`).
    static func jsString(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        if d == 0 { return "0" }
        if d == d.rounded(.towardZero), d.magnitude < 9.2e18 { return String(Int64(d)) }
        // Swift prints the same shortest digits; only the layout differs.
        let text = d.magnitude.description
        var digits: [UInt8] = []
        var pointAt = -1
        var exponent = 0
        var i = text.utf8.startIndex
        let u = text.utf8
        while i != u.endIndex {
            let c = u[i]
            if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                exponent = Int(String(text[u.index(after: i)...])) ?? 0
                break
            }
            if c == UInt8(ascii: ".") {
                pointAt = digits.count
            } else {
                digits.append(c)
            }
            i = u.index(after: i)
        }
        if pointAt < 0 { pointAt = digits.count }
        // value = 0.d1d2… × 10^n
        var n = pointAt + exponent
        while digits.first == UInt8(ascii: "0") {
            digits.removeFirst()
            n -= 1
        }
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        let k = digits.count
        var out = d < 0 ? "-" : ""
        let ds = String(decoding: digits, as: UTF8.self)
        if k <= n && n <= 21 {
            out += ds + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            let split = ds.index(ds.startIndex, offsetBy: n)
            out += ds[..<split] + "." + ds[split...]
        } else if -6 < n && n <= 0 {
            out += "0." + String(repeating: "0", count: -n) + ds
        } else {
            let e = n - 1
            out += String(ds.prefix(1))
            if k > 1 { out += "." + ds.dropFirst() }
            out += "e" + (e < 0 ? "-" : "+") + String(e.magnitude)
        }
        return out
    }

    /// JavaScript `ToNumber` applied to a string.
    static func jsNumber(parsing s: String) -> Double {
        var u = Substring(s).utf8[...]
        while let f = u.first, isJSSpace(f) { u = u.dropFirst() }
        while let l = u.last, isJSSpace(l) { u = u.dropLast() }
        // Non-ASCII white space (NBSP, BOM, line separators, …).
        var t = Substring(u)
        while let f = t.unicodeScalars.first, isJSSpace(f) { t = t.dropFirst() }
        while let l = t.unicodeScalars.last, isJSSpace(l) { t = t.dropLast() }
        if t.isEmpty { return 0 }
        switch t {
        case "Infinity", "+Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: break
        }
        let bytes = Array(t.utf8)
        if bytes.count > 2, bytes[0] == UInt8(ascii: "0") {
            let radix: Int
            switch bytes[1] {
            case UInt8(ascii: "x"), UInt8(ascii: "X"): radix = 16
            case UInt8(ascii: "o"), UInt8(ascii: "O"): radix = 8
            case UInt8(ascii: "b"), UInt8(ascii: "B"): radix = 2
            default: radix = 0
            }
            if radix != 0 {
                var value = 0.0
                for b in bytes[2...] {
                    guard let digit = hexDigit(b), digit < radix else { return .nan }
                    value = value * Double(radix) + Double(digit)
                }
                return value
            }
        }
        guard isDecimalLiteral(bytes) else { return .nan }
        return Double(t) ?? .nan
    }

    private static func hexDigit(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(b - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(b - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    /// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
    private static func isDecimalLiteral(_ b: [UInt8]) -> Bool {
        var i = 0
        let n = b.count
        func digits() -> Int {
            let start = i
            while i < n, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") { i += 1 }
            return i - start
        }
        if i < n, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
        var mantissa = digits()
        if i < n, b[i] == UInt8(ascii: ".") {
            i += 1
            mantissa += digits()
        }
        guard mantissa > 0 else { return false }
        if i < n, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < n, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return i == n
    }

    @inline(__always)
    private static func isJSSpace(_ b: UInt8) -> Bool {
        b == 0x20 || (b >= 0x09 && b <= 0x0D)
    }

    private static func isJSSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x20, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
            return true
        default:
            return false
        }
    }

    /// json-logic-js `substr`: JavaScript `String.prototype.substr`, plus a negative length that
    /// drops characters from the end. Counts Unicode scalars.
    static func substring(_ source: String, start: Double, length: Double?) -> String {
        let scalars = Array(source.unicodeScalars)
        let n = Double(scalars.count)
        func integer(_ d: Double) -> Double { d.isNaN ? 0 : d.rounded(.towardZero) }
        let s = integer(start)
        let from = s < 0 ? max(n + s, 0) : min(s, n)
        var to = n
        if let length {
            let l = integer(length)
            to = l < 0 ? max(n + l, from) : min(from + l, n)
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[Int(from)..<Int(to)])
        return String(out)
    }

    /// Calls `body` with the UTF-8 bytes of `s`, without copying native strings.
    @inline(__always)
    static func withUTF8Bytes<R>(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = s.utf8.withContiguousStorageIfAvailable(body) { return r }
        return Array(s.utf8).withUnsafeBufferPointer(body)
    }

    /// Byte-wise `hasPrefix` (JavaScript `startsWith`; no Unicode normalisation).
    static func utf8HasPrefix(_ s: String, _ prefix: String) -> Bool {
        withUTF8Bytes(s) { a in
            withUTF8Bytes(prefix) { p in
                p.count <= a.count && (p.count == 0 || memcmp(a.baseAddress!, p.baseAddress!, p.count))
            }
        }
    }

    /// Byte-wise `hasSuffix` (JavaScript `endsWith`).
    static func utf8HasSuffix(_ s: String, _ suffix: String) -> Bool {
        withUTF8Bytes(s) { a in
            withUTF8Bytes(suffix) { p in
                p.count <= a.count && (p.count == 0 || memcmp(a.baseAddress! + (a.count - p.count), p.baseAddress!, p.count))
            }
        }
    }

    /// Byte-wise substring test (JavaScript `includes`); the empty string is in every string.
    static func utf8Contains(_ s: String, _ needle: String) -> Bool {
        withUTF8Bytes(s) { a in
            withUTF8Bytes(needle) { p in
                if p.count == 0 { return true }
                if p.count > a.count { return false }
                let first = p[0]
                var i = 0
                let last = a.count - p.count
                while i <= last {
                    if a[i] == first && memcmp(a.baseAddress! + i, p.baseAddress!, p.count) { return true }
                    i += 1
                }
                return false
            }
        }
    }

    /// Whether `count` bytes at `a` and `b` are equal.
    @inline(__always)
    private static func memcmp(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var i = 0
        while i < count {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }
}
