/// A place in a source file: 1-based line and column (columns count Unicode scalars).
package struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    package var line: Int
    package var column: Int

    package init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    package var description: String { "\(line):\(column)" }
}

/// Malformed JSON text, with where it went wrong.
package struct JSONParseError: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var location: SourceLocation

    package var description: String { "\(location): \(message)" }
}

/// Where each value of a parsed document starts, keyed by JSON Pointer (RFC 6901: `/flags/my-flag`).
package struct JSONSourceMap: Sendable {
    /// The start of every value, by JSON Pointer. The root is `""`.
    package var locations: [String: SourceLocation] = [:]
    /// Object members that appeared more than once: pointer of the member, and every place it stood.
    package var duplicateKeys: [(pointer: String, locations: [SourceLocation])] = []

    package init() {}

    /// The location of the value at `pointer`, or of its nearest ancestor that has one.
    package func location(of pointer: String) -> SourceLocation? {
        var p = pointer
        while true {
            if let l = locations[p] { return l }
            guard let slash = p.lastIndex(of: "/") else { return nil }
            p = String(p[..<slash])
        }
    }

    /// Escapes one reference token for a JSON Pointer (`~` → `~0`, `/` → `~1`).
    package static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var out = ""
        for c in token {
            switch c {
            case "~": out += "~0"
            case "/": out += "~1"
            default: out.append(c)
            }
        }
        return out
    }
}

/// A strict RFC 8259 JSON parser that keeps integers apart from floats and can record
/// where every value starts.
package struct JSONParser {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var map: JSONSourceMap?
    /// The other way of recording locations: a log in document order, pointers built on demand.
    private var log: LocationLog?
    /// Whether a key repeated while recording a log (the log cannot say where the first stood).
    private var sawDuplicateKey = false
    private var depth = 0
    /// A checkpoint for column counting: on line `line`, byte `columnIndex` is at `columnValue`.
    /// Locations are asked for in increasing order, so counting from it keeps parsing linear.
    private var columnIndex = 0
    private var columnValue = 1

    /// Nesting deeper than this is refused rather than risking the stack.
    package static let maximumDepth = 512

    private init(bytes: [UInt8], recordLocations: Bool, logLocations: Bool = false) {
        self.bytes = bytes
        self.map = recordLocations ? JSONSourceMap() : nil
        if logLocations {
            var log = LocationLog()
            log.reserveCapacity(bytes.count / 16)
            self.log = log
        }
    }

    /// Parses a complete JSON document.
    package static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses a complete JSON document from UTF-8 bytes.
    package static func parse(bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(bytes: bytes, recordLocations: false)
        return try p.parseDocument()
    }

    /// Parses a complete JSON document and records where each value starts.
    package static func parseWithSourceMap(_ text: String) throws(JSONParseError) -> (JSONValue, JSONSourceMap) {
        var p = JSONParser(bytes: Array(text.utf8), recordLocations: true)
        let v = try p.parseDocument()
        return (v, p.map!)
    }

    /// Parses a complete JSON document and logs where each value starts; `nil` when an object
    /// repeats a key (``parseWithSourceMap(_:)`` says where both stood).
    static func parseWithLocationLog(_ text: String) throws(JSONParseError) -> (JSONValue, LocationLog)? {
        var p = JSONParser(bytes: Array(text.utf8), recordLocations: false, logLocations: true)
        let v = try p.parseDocument()
        return p.sawDuplicateKey ? nil : (v, p.log!)
    }

    private mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3; lineStart = 3 }
        skipWhitespace()
        let v = try parseValue(pointer: "", path: LocationLog.root)
        skipWhitespace()
        if index < bytes.count { throw error("unexpected text after the JSON value") }
        return v
    }

    private var location: SourceLocation {
        mutating get {
            // Columns count scalars, not bytes: count the non-continuation bytes since the checkpoint
            // (or the line start, when the line changed or we moved back).
            if columnIndex < lineStart || columnIndex > index {
                columnIndex = lineStart
                columnValue = 1
            }
            var i = columnIndex
            var col = columnValue
            while i < index && i < bytes.count {
                if bytes[i] & 0xC0 != 0x80 { col += 1 }
                i += 1
            }
            columnIndex = i
            columnValue = col
            return SourceLocation(line: line, column: col)
        }
    }

    private mutating func error(_ message: String) -> JSONParseError {
        JSONParseError(message: message, location: location)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: index += 1
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
            default: return
            }
        }
    }

    private mutating func parseValue(pointer: String, path: Int32) throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input, expected a value") }
        if map != nil {
            map!.locations[pointer] = location
        } else if log != nil {
            let l = location
            log!.value(path, line: l.line, column: l.column)
        }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(pointer: pointer, path: path)
        case UInt8(ascii: "["): return try parseArray(pointer: pointer, path: path)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))', expected a value")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        let ok = literal.withUTF8Buffer { lit in
            index + count <= bytes.count && bytes[index..<index + count].elementsEqual(lit)
        }
        guard ok else { throw error("invalid literal, expected '\(literal)'") }
        index += count
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > JSONParser.maximumDepth { throw error("nesting deeper than \(JSONParser.maximumDepth) levels") }
    }

    private mutating func parseObject(pointer: String, path: Int32) throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var object: [String: JSONValue] = [:]
        var seenAt: [String: SourceLocation] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a string key in object")
            }
            let keyLocation = map == nil ? SourceLocation(line: 0, column: 0) : location
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after object key \"\(key)\"")
            }
            index += 1
            skipWhitespace()
            let childPointer = map == nil ? "" : pointer + "/" + JSONSourceMap.escape(key)
            let childPath = log == nil ? LocationLog.root : log!.child(path, key: key)
            if map != nil {
                if let first = seenAt[key] {
                    if let i = map!.duplicateKeys.firstIndex(where: { $0.pointer == childPointer }) {
                        map!.duplicateKeys[i].locations.append(keyLocation)
                    } else {
                        map!.duplicateKeys.append((childPointer, [first, keyLocation]))
                    }
                } else {
                    seenAt[key] = keyLocation
                }
            }
            let value = try parseValue(pointer: childPointer, path: childPath)
            if object.updateValue(value, forKey: key) != nil, log != nil { sawDuplicateKey = true }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input inside an object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(object)
            }
            throw error("expected ',' or '}' in object")
        }
    }

    private mutating func parseArray(pointer: String, path: Int32) throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(array)
        }
        while true {
            skipWhitespace()
            let childPointer = map == nil ? "" : pointer + "/" + String(array.count)
            let childPath = log == nil ? LocationLog.root : log!.child(path, index: array.count)
            array.append(try parseValue(pointer: childPointer, path: childPath))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input inside an array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(array)
            }
            throw error("expected ',' or ']' in array")
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = index
        var plain = true
        // Fast path: no escapes.
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                if plain {
                    let s = String(decoding: bytes[runStart..<index], as: UTF8.self)
                    index += 1
                    return s
                }
                scalars.append(contentsOf: String(decoding: bytes[runStart..<index], as: UTF8.self).unicodeScalars)
                index += 1
                return String(scalars)
            }
            if b < 0x20 { throw error("control character in string; escape it") }
            if b == UInt8(ascii: "\\") {
                plain = false
                scalars.append(contentsOf: String(decoding: bytes[runStart..<index], as: UTF8.self).unicodeScalars)
                index += 1
                guard index < bytes.count else { break }
                switch bytes[index] {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code) {
                        // A high surrogate must be followed by a low one.
                        if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "\\"), bytes[index + 2] == UInt8(ascii: "u") {
                            index += 2
                            let low = try parseHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("invalid UTF-16 surrogate pair") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            throw error("lone UTF-16 surrogate in string")
                        }
                    } else if (0xDC00..<0xE000).contains(code) {
                        throw error("lone UTF-16 surrogate in string")
                    }
                    scalars.append(Unicode.Scalar(code)!)
                default:
                    throw error("invalid escape sequence in string")
                }
                index += 1
                runStart = index
                continue
            }
            index += 1
        }
        throw error("unterminated string")
    }

    /// Reads `XXXX` after `\u`; leaves `index` on the last hex digit.
    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 < bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for i in 1...4 {
            let c = bytes[index + i]
            v <<= 4
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v |= UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v |= UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v |= UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
        }
        index += 4
        return v
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        var isFloat = false
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error("numbers may not have leading zeros") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isFloat = true
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digit expected after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isFloat = true
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digit expected in exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if !isFloat, let i = Int64(text) { return .int(i) }
        guard let d = Double(text) else { throw error("invalid number '\(text)'") }
        return .double(d)
    }

    @inline(__always) private func isDigit(_ b: UInt8) -> Bool {
        b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
    }
}
