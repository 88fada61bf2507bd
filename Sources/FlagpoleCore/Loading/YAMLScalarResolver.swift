/// Resolves a YAML scalar to a JSON value the way flagd does: Go's yaml.v3 decoding into
/// `interface{}` (YAML 1.2 core schema, plus yaml.v3's compatibility rules), then `encoding/json`.
///
/// yaml.v3 `resolve.go`, in short: `true|True|TRUE|false|False|FALSE` are booleans;
/// `~|null|Null|NULL|` (empty) are null; YAML 1.1's `yes/no/on/off/y/n` are strings;
/// underscores are dropped from numbers, then Go's `strconv.ParseInt(s, 0, 64)` decides integers
/// (so `0x1F`, `0o17`, `0b101` and the old octal `017` are integers); otherwise a YAML-style float
/// (`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`) is a float; `.inf`/`.nan` are floats JSON
/// cannot carry; timestamps decode to their text; everything else is a string.
enum YAMLScalarResolver {
    /// The outcome for one scalar.
    enum Resolution: Equatable {
        /// A JSON value, with a note when the text would read differently elsewhere.
        case value(JSONValue, note: Note?)
        /// The scalar cannot become JSON (a `.inf`, or a value that contradicts its tag).
        case invalid(String)
    }

    /// Why a scalar deserves a warning.
    enum Note: Equatable {
        /// A YAML 1.1 boolean word kept as a string.
        case yaml11Boolean
        /// An unsigned integer beyond Int64, kept as a float.
        case integerTooLarge
        /// A tag flagd ignores.
        case ignoredTag(String)
    }

    static let yaml11BooleanWords: Set<String> = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "on", "On", "ON", "off", "Off", "OFF",
    ]

    private static let coreTag = "tag:yaml.org,2002:"

    /// Resolves a scalar.
    /// - Parameters:
    ///   - text: The scalar's text.
    ///   - plain: Whether it was written unquoted (quoted and block scalars are always strings).
    ///   - tag: The explicit tag (`""` when none, `"!"` for the non-specific tag).
    static func resolve(_ text: String, plain: Bool, tag: String) -> Resolution {
        switch tag {
        case "":
            return plain ? resolvePlain(text) : .value(.string(text), note: nil)
        case "!", coreTag + "str":
            return .value(.string(text), note: nil)
        case coreTag + "null", coreTag + "bool", coreTag + "int", coreTag + "float":
            let wanted = String(tag.dropFirst(coreTag.count))
            guard case .value(let v, _) = resolvePlain(text) else {
                return .invalid("cannot read \"\(text)\" as !!\(wanted)")
            }
            switch (wanted, v) {
            case ("null", .null), ("bool", .bool), ("int", .int), ("float", .double):
                return .value(v, note: nil)
            case ("float", .int(let i)):
                return .value(.double(Double(i)), note: nil)
            default:
                return .invalid("cannot read \"\(text)\" as !!\(wanted)")
            }
        case coreTag + "timestamp", coreTag + "binary":
            return .value(.string(text), note: nil)
        default:
            return .value(.string(text), note: .ignoredTag(tag))
        }
    }

    private static func resolvePlain(_ text: String) -> Resolution {
        // Most plain scalars are words: a letter that starts no boolean, null, YAML 1.1 word or
        // number (t, f, n, y, o in either case) makes a string at once.
        if let first = text.utf8.first {
            switch first {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                switch first | 0x20 {
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "y"), UInt8(ascii: "o"): break
                default: return .value(.string(text), note: nil)
                }
            default: break
            }
        }
        switch text {
        case "true", "True", "TRUE": return .value(.bool(true), note: nil)
        case "false", "False", "FALSE": return .value(.bool(false), note: nil)
        case "", "~", "null", "Null", "NULL": return .value(.null, note: nil)
        case ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF":
            return .invalid("\(text) is not a number JSON can carry")
        default: break
        }
        if yaml11BooleanWords.contains(text) { return .value(.string(text), note: .yaml11Boolean) }
        guard let first = text.unicodeScalars.first else { return .value(.string(text), note: nil) }
        if first == "." {
            if let d = parseGoFloat(text) { return .value(.double(d), note: nil) }
            return .value(.string(text), note: nil)
        }
        guard first == "+" || first == "-" || ("0"..."9").contains(first) else {
            return .value(.string(text), note: nil)
        }
        let plain = text.filter { $0 != "_" }
        if let i = parseGoInt(plain) { return .value(.int(i), note: nil) }
        if let u = parseGoUnsigned(plain) { return .value(.double(Double(u)), note: .integerTooLarge) }
        if isYAMLStyleFloat(plain), let d = parseGoFloat(plain) { return .value(.double(d), note: nil) }
        return .value(.string(text), note: nil)
    }

    /// `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`/`0o`/`0b` prefixes or a leading `0` for octal.
    static func parseGoInt(_ s: String) -> Int64? {
        var body = Substring(s)
        var negative = false
        if body.first == "+" || body.first == "-" {
            negative = body.first == "-"
            body = body.dropFirst()
        }
        guard let magnitude = parseGoMagnitude(body) else { return nil }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// `strconv.ParseUint(s, 0, 64)`: no sign.
    static func parseGoUnsigned(_ s: String) -> UInt64? {
        parseGoMagnitude(Substring(s))
    }

    private static func parseGoMagnitude(_ s: Substring) -> UInt64? {
        var digits = s
        var radix = 10
        let lower = s.lowercased()
        if lower.hasPrefix("0x") {
            radix = 16
            digits = s.dropFirst(2)
        } else if lower.hasPrefix("0o") {
            radix = 8
            digits = s.dropFirst(2)
        } else if lower.hasPrefix("0b") {
            radix = 2
            digits = s.dropFirst(2)
        } else if s.count > 1, s.first == "0" {
            radix = 8
            digits = s.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return nil }
        return UInt64(digits, radix: radix)
    }

    /// yaml.v3's `yamlStyleFloat`.
    static func isYAMLStyleFloat(_ s: String) -> Bool {
        var u = Substring(s).unicodeScalars[...]
        func digits() -> Int {
            var n = 0
            while let c = u.first, ("0"..."9").contains(c) {
                u = u.dropFirst()
                n += 1
            }
            return n
        }
        if u.first == "+" || u.first == "-" { u = u.dropFirst() }
        if u.first == "." {
            u = u.dropFirst()
            guard digits() > 0 else { return false }
        } else {
            guard digits() > 0 else { return false }
            if u.first == "." {
                u = u.dropFirst()
                _ = digits()
            }
        }
        if u.first == "e" || u.first == "E" {
            u = u.dropFirst()
            if u.first == "+" || u.first == "-" { u = u.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return u.isEmpty
    }

    /// A finite decimal float, as `strconv.ParseFloat` reads the forms YAML produces; out-of-range
    /// values are not floats (Go reports a range error, and yaml.v3 then keeps the text).
    static func parseGoFloat(_ s: String) -> Double? {
        var text = s
        if text.hasSuffix(".") { text += "0" }
        if text.hasPrefix(".") { text = "0" + text }
        if text.hasPrefix("-.") { text = "-0" + text.dropFirst() }
        if text.hasPrefix("+.") { text = "0" + text.dropFirst() }
        guard isYAMLStyleFloat(text), let d = Double(text), d.isFinite else { return nil }
        return d
    }

    /// A map key the way flagd's YAML conversion stringifies it (Go's `fmt.Sprintf("%v", key)`).
    static func keyString(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return goFormat(d)
        case .null: return "<nil>"
        case .array, .object: return value.jsonString
        }
    }

    /// Go's `%v` for a `float64` (`strconv` `'g'` with the shortest digits): the `%e` form when the
    /// decimal exponent is below -4 or at least 6, so `1e6` prints `1e+06` and `1.0` prints `1`.
    static func goFormat(_ d: Double) -> String {
        if d == 0 { return d.sign == .minus ? "-0" : "0" }
        let (negative, digits, exponent) = shortestDigits(d)
        let sign = negative ? "-" : ""
        if exponent < -4 || exponent >= 6 {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let e = abs(exponent)
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
        }
        if exponent < 0 {
            return sign + "0." + String(repeating: "0", count: -exponent - 1) + digits
        }
        if digits.count <= exponent + 1 {
            return sign + digits + String(repeating: "0", count: exponent + 1 - digits.count)
        }
        let point = digits.index(digits.startIndex, offsetBy: exponent + 1)
        return sign + digits[..<point] + "." + digits[point...]
    }

    /// The shortest round-trip decimal digits of `d` and the decimal exponent of the first digit.
    private static func shortestDigits(_ d: Double) -> (negative: Bool, digits: String, exponent: Int) {
        var text = "\(d.magnitude)"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = String(parts[0])
        let fracPart = parts.count > 1 ? String(parts[1]) : ""
        var all = intPart + fracPart
        var pointPos = intPart.count
        while all.first == "0" && all.count > 1 {
            all.removeFirst()
            pointPos -= 1
        }
        while all.last == "0" && all.count > 1 { all.removeLast() }
        return (d.sign == .minus, all, exponent + pointPos - 1)
    }
}
