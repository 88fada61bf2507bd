/// Redis Cluster hash slots: which of the 16,384 slots a key (and so a command) belongs to.
package enum RedisHashSlot {
    /// The number of slots in a Redis Cluster.
    package static let count = 16_384

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as the Redis Cluster
    /// specification defines it: `crc16("123456789") == 0x31C3`.
    package static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    /// The slot of a key: the CRC16 of its hash tag (the text between the first `{` and the next
    /// `}`, when not empty) or of the whole key, modulo 16,384.
    package static func slot<C: BidirectionalCollection>(of key: C) -> Int where C.Element == UInt8 {
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return Int(crc16(key[afterOpen..<close])) & (count - 1)
            }
        }
        return Int(crc16(key)) & (count - 1)
    }

    /// The slot of a key given as text.
    package static func slot(of key: String) -> Int { slot(of: Array(key.utf8)) }

    private static let table: [UInt16] = (0..<256).map { i in
        var crc = UInt16(i) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

extension RedisCommand {
    /// The command's first key, by the command's key layout: the first argument for most commands,
    /// the first of `numkeys` keys for `EVAL`/`EVALSHA`/`FCALL`, nothing for commands without keys
    /// (`PING`, `INFO`, `PUBLISH`, …). Used to route the command on a cluster.
    package var firstKey: [UInt8]? {
        guard arguments.count > 1 else { return nil }
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count > 3, let n = Int(String(decoding: arguments[2].bytes, as: UTF8.self)), n > 0 else { return nil }
            return arguments[3].bytes
        case "OBJECT", "XINFO", "MEMORY":
            return arguments.count > 2 ? arguments[2].bytes : nil
        case let n where Self.keyless.contains(n):
            return nil
        default:
            return arguments[1].bytes
        }
    }

    /// The hash slot of ``firstKey``, or nil for a command without keys.
    package var hashSlot: Int? { firstKey.map { RedisHashSlot.slot(of: $0) } }

    private static let keyless: Set<String> = [
        "PING", "ECHO", "INFO", "TIME", "ACL", "AUTH", "HELLO", "SELECT", "CLIENT", "CLUSTER", "CONFIG", "COMMAND",
        "DBSIZE", "DEBUG", "FLUSHALL", "FLUSHDB", "FUNCTION", "KEYS", "LASTSAVE", "LATENCY", "MODULE", "MONITOR",
        "MULTI", "EXEC", "DISCARD", "UNWATCH", "PUBLISH", "PUBSUB", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE",
        "PUNSUBSCRIBE", "SSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY", "READWRITE", "ROLE", "SAVE", "BGSAVE",
        "BGREWRITEAOF", "SCAN", "SCRIPT", "SENTINEL", "SHUTDOWN", "SLOWLOG", "SWAPDB", "WAIT", "ASKING", "REPLICAOF",
        "SLAVEOF", "FAILOVER", "RESET", "LOLWUT",
    ]
}
