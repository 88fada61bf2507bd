/// One argument of a Redis command: any bytes (binary safe).
package struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    package var bytes: [UInt8]

    package init(_ string: String) { bytes = Array(string.utf8) }
    package init(bytes: [UInt8]) { self.bytes = bytes }
    package init<I: BinaryInteger>(_ integer: I) { bytes = Array(String(integer).utf8) }
    package init(stringLiteral value: String) { self.init(value) }
    package init(integerLiteral value: Int) { self.init(value) }

    /// Bytes as an argument.
    package static func bytes(_ b: [UInt8]) -> RedisArgument { RedisArgument(bytes: b) }
}

/// A Redis command: its name and arguments, e.g. `["SET", "key", .bytes(payload)]`.
package struct RedisCommand: Sendable, Hashable, ExpressibleByArrayLiteral {
    package var arguments: [RedisArgument]

    package init(_ arguments: [RedisArgument]) { self.arguments = arguments }
    package init(arrayLiteral elements: RedisArgument...) { arguments = elements }
    /// A command from words: `RedisCommand("GET", key)`.
    package init(_ words: String...) { arguments = words.map { RedisArgument($0) } }

    /// The command's name in upper case (`GET`, `CLIENT KILL` is `CLIENT`), for errors and logs.
    package var name: String {
        guard let first = arguments.first else { return "" }
        return String(decoding: first.bytes, as: UTF8.self).uppercased()
    }
}
