/// One reply from Redis (RESP2), decoded into Swift values.
package enum RedisReply: Sendable, Hashable {
    /// A simple string such as `OK` or `QUEUED`.
    case status(String)
    /// An error reply such as `ERR unknown command`; inside a pipeline or transaction it is a value,
    /// elsewhere ``RedisClient`` throws it as a ``RedisError``.
    case error(String)
    case integer(Int64)
    /// A bulk string, binary safe.
    case bulkString([UInt8])
    /// The nil bulk string or nil array.
    case null
    case array([RedisReply])
}

extension RedisReply {
    /// A bulk string or status as UTF-8 text.
    package var string: String? {
        switch self {
        case .bulkString(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    /// A bulk string's bytes.
    package var bytes: [UInt8]? {
        if case .bulkString(let b) = self { return b }
        return nil
    }

    /// An integer reply, or a bulk string holding a decimal integer.
    package var integer: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulkString(let b): return Int64(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    package var array: [RedisReply]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The error text when this is an error reply.
    package var errorMessage: String? {
        if case .error(let e) = self { return e }
        return nil
    }

    /// A flat array of bulk strings as a dictionary (`HGETALL`, `CONFIG GET`, …).
    package var dictionary: [String: RedisReply]? {
        guard case .array(let a) = self, a.count % 2 == 0 else { return nil }
        var d: [String: RedisReply] = [:]
        d.reserveCapacity(a.count / 2)
        var i = 0
        while i < a.count {
            guard let k = a[i].string else { return nil }
            d[k] = a[i + 1]
            i += 2
        }
        return d
    }
}
