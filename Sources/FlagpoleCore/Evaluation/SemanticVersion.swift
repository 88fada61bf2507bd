/// A semantic version as `sem_ver` reads it (NOTES.md §4.2): one leading `v`/`V` stripped, partial
/// versions padded (`1` → `1.0.0`, `1.2-rc` → `1.2.0-rc`), then strict SemVer 2.0.0. Numbers of
/// any size compare correctly; build metadata is accepted and ignored.
///
/// Parsing allocates nothing for ordinary versions: the numbers are integers and the pre-release
/// part a slice of the original text. Numbers longer than 19 digits keep their digits aside.
struct SemanticVersion: Sendable {
    /// Major, minor and patch; `UInt64.max` stands for a number longer than 19 digits, whose digits
    /// are in ``bigDigits``.
    var major: UInt64
    var minor: UInt64
    var patch: UInt64
    /// The pre-release identifiers, dot-separated, or nil when there are none.
    var prerelease: Substring?
    /// The digits of numbers too long for 64 bits (major, minor, patch), when there are any.
    var bigDigits: BigDigits?

    /// `0.0.0`, a placeholder.
    static let zero = SemanticVersion(major: 0, minor: 0, patch: 0, prerelease: nil, bigDigits: nil)

    private init(major: UInt64, minor: UInt64, patch: UInt64, prerelease: Substring?, bigDigits: BigDigits?) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
        self.bigDigits = bigDigits
    }

    /// Digits of numbers too long for 64 bits.
    final class BigDigits: Sendable {
        let parts: [Substring?]

        init(_ parts: [Substring?]) {
            self.parts = parts
        }
    }

    /// Parses `text`, or returns nil when it is not a version.
    init?(_ text: String) {
        guard let p = JSONValue.withUTF8Bytes(text, { SemanticVersion.parse($0) }) else { return nil }
        let u = text.utf8
        func slice(_ r: Range<Int>) -> Substring {
            Substring(u[u.index(u.startIndex, offsetBy: r.lowerBound)..<u.index(u.startIndex, offsetBy: r.upperBound)])
        }
        func number(_ n: Parsed.Number) -> UInt64 {
            if case .small(let v) = n { return v }
            return .max
        }
        func digits(_ n: Parsed.Number) -> Substring? {
            if case .big(let r) = n { return slice(r) }
            return nil
        }
        major = number(p.major)
        minor = number(p.minor)
        patch = number(p.patch)
        prerelease = p.prerelease.map(slice)
        if major == .max || minor == .max || patch == .max {
            bigDigits = BigDigits([digits(p.major), digits(p.minor), digits(p.patch)])
        } else {
            bigDigits = nil
        }
    }

    /// Parsing result in byte offsets.
    private struct Parsed {
        enum Number {
            case small(UInt64)
            case big(Range<Int>)
        }
        var major: Number = .small(0)
        var minor: Number = .small(0)
        var patch: Number = .small(0)
        var prerelease: Range<Int>?
    }

    private static func parse(_ b: UnsafeBufferPointer<UInt8>) -> Parsed? {
        let n = b.count
        var i = 0
        if n > 0 && (b[0] == UInt8(ascii: "v") || b[0] == UInt8(ascii: "V")) { i = 1 }
        var parsed = Parsed()
        // major[.minor[.patch]]; missing parts are 0.
        var component = 0
        while true {
            let start = i
            var value: UInt64 = 0
            while i < n, isDigit(b[i]) {
                if i - start < 19 { value = value * 10 + UInt64(b[i] - 0x30) }
                i += 1
            }
            let length = i - start
            guard length > 0, b[start] != UInt8(ascii: "0") || length == 1 else { return nil }
            let number: Parsed.Number = length <= 19 ? .small(value) : .big(start..<i)
            switch component {
            case 0: parsed.major = number
            case 1: parsed.minor = number
            default: parsed.patch = number
            }
            component += 1
            guard i < n, b[i] == UInt8(ascii: ".") else { break }
            guard component < 3 else { return nil }
            i += 1
        }
        if i < n, b[i] == UInt8(ascii: "-") {
            i += 1
            let start = i
            guard let end = scanIdentifiers(b, from: i, prerelease: true) else { return nil }
            parsed.prerelease = start..<end
            i = end
        }
        if i < n, b[i] == UInt8(ascii: "+") {
            guard let end = scanIdentifiers(b, from: i + 1, prerelease: false) else { return nil }
            i = end
        }
        return i == n ? parsed : nil
    }

    /// Scans dot-separated identifiers (`[0-9A-Za-z-]+`) up to a `+` (pre-release) or the end;
    /// numeric pre-release identifiers must not have leading zeros. Returns where they end.
    private static func scanIdentifiers(_ b: UnsafeBufferPointer<UInt8>, from start: Int, prerelease: Bool) -> Int? {
        let n = b.count
        var i = start
        while true {
            let idStart = i
            var numeric = true
            while i < n {
                let c = b[i]
                if isDigit(c) {
                    // digits keep an identifier numeric
                } else if isLetter(c) || c == UInt8(ascii: "-") {
                    numeric = false
                } else {
                    break
                }
                i += 1
            }
            let length = i - idStart
            guard length > 0 else { return nil }
            if prerelease, numeric, length > 1, b[idStart] == UInt8(ascii: "0") { return nil }
            guard i < n, b[i] == UInt8(ascii: ".") else { return i }
            i += 1
        }
    }

    @inline(__always) private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    @inline(__always) private static func isLetter(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// Compares two digit strings without leading zeros by value.
    private static func compareNumbers(_ a: Substring.UTF8View, _ b: Substring.UTF8View) -> Int {
        if a.count != b.count { return a.count < b.count ? -1 : 1 }
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return 0
    }

    /// Compares component `k` (0 major, 1 minor, 2 patch) of two versions.
    @inline(__always)
    private static func compare(_ x: UInt64, _ y: UInt64, _ k: Int, _ a: SemanticVersion, _ b: SemanticVersion) -> Int {
        if x != .max && y != .max { return x == y ? 0 : (x < y ? -1 : 1) }
        func digits(_ v: UInt64, _ version: SemanticVersion) -> Substring {
            version.bigDigits?.parts[k] ?? Substring(String(v))
        }
        return compareNumbers(digits(x, a).utf8, digits(y, b).utf8)
    }

    /// SemVer 2.0.0 precedence: -1, 0 or 1. Build metadata does not count.
    static func compare(_ a: SemanticVersion, _ b: SemanticVersion) -> Int {
        var c = compare(a.major, b.major, 0, a, b)
        if c != 0 { return c }
        c = compare(a.minor, b.minor, 1, a, b)
        if c != 0 { return c }
        c = compare(a.patch, b.patch, 2, a, b)
        if c != 0 { return c }
        switch (a.prerelease, b.prerelease) {
        case (nil, nil): return 0
        case (nil, _): return 1  // a release ranks above its pre-releases
        case (_, nil): return -1
        case (let x?, let y?): return comparePrerelease(x, y)
        }
    }

    private static func comparePrerelease(_ a: Substring, _ b: Substring) -> Int {
        var ia = a.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).makeIterator()
        var ib = b.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?):
                let xn = x.allSatisfy(isDigit), yn = y.allSatisfy(isDigit)
                let c: Int
                if xn && yn {
                    c = compareNumbers(x, y)
                } else if xn != yn {
                    c = xn ? -1 : 1  // numeric identifiers rank below alphanumeric ones
                } else if x.elementsEqual(y) {
                    c = 0
                } else {
                    c = x.lexicographicallyPrecedes(y) ? -1 : 1
                }
                if c != 0 { return c }
            }
        }
    }

    /// Applies a `sem_ver` operator.
    static func evaluate(_ a: SemanticVersion, _ op: SemVerOperator, _ b: SemanticVersion) -> Bool {
        switch op {
        case .equal: return compare(a, b) == 0
        case .notEqual: return compare(a, b) != 0
        case .less: return compare(a, b) < 0
        case .lessOrEqual: return compare(a, b) <= 0
        case .greater: return compare(a, b) > 0
        case .greaterOrEqual: return compare(a, b) >= 0
        case .tilde:
            return compare(a.major, b.major, 0, a, b) == 0 && compare(a.minor, b.minor, 1, a, b) == 0
        case .caret:
            return compare(a.major, b.major, 0, a, b) == 0
        }
    }
}
