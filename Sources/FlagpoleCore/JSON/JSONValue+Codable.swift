/// `JSONValue` is `Codable`, so an object flag's value goes straight into `JSONEncoder`, and any
/// `Decodable` type can be read from one (``JSONValue/decode(_:)`` in the client library).
///
/// Decoding keeps integers apart from floating-point numbers as the parser does: a number that
/// decodes as `Int64` is ``JSONValue/int(_:)``, any other number ``JSONValue/double(_:)``.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            var object: [String: JSONValue] = [:]
            for key in container.allKeys { object[key.stringValue] = try container.decode(JSONValue.self, forKey: key) }
            self = .object(object)
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var array: [JSONValue] = []
            if let count = container.count { array.reserveCapacity(count) }
            while !container.isAtEnd { array.append(try container.decode(JSONValue.self)) }
            self = .array(array)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? container.decode(Double.self) {
            self = .double(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a JSON value (null, boolean, number, string, array or object)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let a):
            var c = encoder.unkeyedContainer()
            for element in a { try c.encode(element) }
        case .object(let o):
            var c = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in o.sorted(by: { $0.key < $1.key }) { try c.encode(value, forKey: AnyKey(key)) }
        }
    }

    /// Any string as a coding key.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text, e.g. `{"title":"Hi","sizes":[1,2]}`.
    public var description: String { jsonString }
}

extension EvaluationReason: CustomStringConvertible {
    /// The OpenFeature name: `STATIC`, `TARGETING_MATCH`, `DEFAULT`, `DISABLED`, `ERROR`, `STALE`.
    public var description: String { rawValue }
}

extension EvaluationErrorCode: CustomStringConvertible {
    /// The OpenFeature name, e.g. `FLAG_NOT_FOUND`.
    public var description: String { rawValue }
}

extension EvaluationDetails: CustomStringConvertible {
    /// One readable line: `new-checkout = true (variant on, TARGETING_MATCH)`, or with the error
    /// `limit = 10 (default, ERROR TYPE_MISMATCH: …)`.
    public var description: String {
        let value = (self.value as? JSONValue)?.jsonString ?? (self.value as? String).map { JSONValue.string($0).jsonString } ?? "\(self.value)"
        var parts: [String] = [variant.map { "variant \($0)" } ?? "default"]
        var why = reason.rawValue
        if let errorCode { why += " \(errorCode.rawValue)" + (errorMessage.map { ": \($0)" } ?? "") }
        parts.append(why)
        return "\(flagKey) = \(value) (\(parts.joined(separator: ", ")))"
    }
}
