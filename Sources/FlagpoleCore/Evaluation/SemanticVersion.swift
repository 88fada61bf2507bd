/// A semantic version as `sem_ver` reads it (NOTES.md §4.2): one leading `v`/`V` stripped, partial
/// versions padded (`1` → `1.0.0`, `1.2-rc` → `1.2.0-rc`), then strict SemVer 2.0.0. Numbers of
/// any size compare correctly; build metadata is accepted and ignored.
///
/// Parsing allocates nothing: numbers up to 19 digits are stored as integers, longer ones and the
/// pre-release part as slices of the original text.
struct SemanticVersion: Sendable {
    /// A version number: an integer, or the digits of one too large for 64 bits.
    enum Number: Sendable, Comparable {
        case small(UInt64)
        case big(Substring)

        init(digits: Substring) {
            let u = digits.utf8
            if u.count <= 19 {
                var v: UInt64 = 0
                for b in u { v = v * 10 + UInt64(b - 0x30) }
                self = .small(v)
            } else {
                self = .big(digits)
            }
        }

        static func < (a: Number, b: Number) -> Bool {
            switch (a, b) {
            case (.small(let x), .small(let y)): return x < y
            case (.small, .big): return true
            case (.big, .small): return false
            case (.big(let x), .big(let y)):
                if x.utf8.count != y.utf8.count { return x.utf8.count < y.utf8.count }
                return x.utf8.lexicographicallyPrecedes(y.utf8)
            }
        }

        static func == (a: Number, b: Number) -> Bool {
            switch (a, b) {
            case (.small(let x), .small(let y)): return x == y
            case (.big(let x), .big(let y)): return x.utf8.elementsEqual(y.utf8)
            default: return false
            }
        }
    }

    var major: Number
    var minor: Number
    var patch: Number
    /// The pre-release identifiers, dot-separated, or nil when there are none.
    var prerelease: Substring?

    /// Parses `text`, or returns nil when it is not a version.
    init?(_ text: String) {
        self.init(Substring(text))
    }

    /// Parses `text`, or returns nil when it is not a version.
    init?(_ text: Substring) {
        var s = text
        if let f = s.utf8.first, f == UInt8(ascii: "v") || f == UInt8(ascii: "V") {
            s = s.dropFirst()
        }
        let u = s.utf8
        // The numeric part ends at the first '-' or '+'.
        let numericEnd = u.firstIndex { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") } ?? u.endIndex
        var parts: (Substring?, Substring?, Substring?) = (nil, nil, nil)
        var count = 0
        var start = u.startIndex
        var i = u.startIndex
        while true {
            if i == numericEnd || u[i] == UInt8(ascii: ".") {
                let part = s[start..<i]
                guard count < 3, SemanticVersion.isNumericIdentifier(part) else { return nil }
                switch count {
                case 0: parts.0 = part
                case 1: parts.1 = part
                default: parts.2 = part
                }
                count += 1
                if i == numericEnd { break }
                start = u.index(after: i)
            }
            i = u.index(after: i)
        }
        major = Number(digits: parts.0!)
        minor = parts.1.map(Number.init(digits:)) ?? .small(0)
        patch = parts.2.map(Number.init(digits:)) ?? .small(0)
        prerelease = nil
        var rest = s[numericEnd...]
        if rest.utf8.first == UInt8(ascii: "-") {
            rest = rest.dropFirst()
            let end = rest.utf8.firstIndex(of: UInt8(ascii: "+")) ?? rest.utf8.endIndex
            let pre = rest[..<end]
            guard SemanticVersion.validIdentifiers(pre, prerelease: true) else { return nil }
            prerelease = pre
            rest = rest[end...]
        }
        if rest.utf8.first == UInt8(ascii: "+") {
            guard SemanticVersion.validIdentifiers(rest.dropFirst(), prerelease: false) else { return nil }
        } else if !rest.isEmpty {
            return nil
        }
    }

    /// `0` or digits without a leading zero.
    private static func isNumericIdentifier(_ s: Substring) -> Bool {
        let u = s.utf8
        guard let first = u.first else { return false }
        guard u.allSatisfy(isDigit) else { return false }
        return first != UInt8(ascii: "0") || u.count == 1
    }

    private static func validIdentifiers(_ s: Substring, prerelease: Bool) -> Bool {
        guard !s.isEmpty else { return false }
        for id in s.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !id.isEmpty else { return false }
            guard id.allSatisfy({ isDigit($0) || isLetter($0) || $0 == UInt8(ascii: "-") }) else { return false }
            // Numeric pre-release identifiers must not have leading zeros.
            if prerelease, id.allSatisfy(isDigit), id.count > 1, id.first == UInt8(ascii: "0") { return false }
        }
        return true
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

    @inline(__always)
    private static func compare(_ a: Number, _ b: Number) -> Int {
        a == b ? 0 : (a < b ? -1 : 1)
    }

    /// SemVer 2.0.0 precedence: -1, 0 or 1. Build metadata does not count.
    static func compare(_ a: SemanticVersion, _ b: SemanticVersion) -> Int {
        var c = compare(a.major, b.major)
        if c != 0 { return c }
        c = compare(a.minor, b.minor)
        if c != 0 { return c }
        c = compare(a.patch, b.patch)
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
            return a.major == b.major && a.minor == b.minor
        case .caret:
            return a.major == b.major
        }
    }
}
