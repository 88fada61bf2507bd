/// One argument of a Redis command: any bytes (binary safe).
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public var bytes: [UInt8]

    public init(_ string: String) { bytes = Array(string.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init<I: BinaryInteger>(_ integer: I) { bytes = Array(String(integer).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }

    /// Bytes as an argument.
    public static func bytes(_ b: [UInt8]) -> RedisArgument { RedisArgument(bytes: b) }
}

/// A Redis command: its name and arguments, e.g. `["SET", "key", .bytes(payload)]`.
public struct RedisCommand: Sendable, Hashable, ExpressibleByArrayLiteral {
    public var arguments: [RedisArgument]

    public init(_ arguments: [RedisArgument]) { self.arguments = arguments }
    public init(arrayLiteral elements: RedisArgument...) { arguments = elements }
    /// A command from words: `RedisCommand("GET", key)`.
    public init(_ words: String...) { arguments = words.map { RedisArgument($0) } }

    /// The command's name in upper case (`GET`, `CLIENT KILL` is `CLIENT`), for errors and logs.
    public var name: String {
        guard let first = arguments.first else { return "" }
        return String(decoding: first.bytes, as: UTF8.self).uppercased()
    }
}
