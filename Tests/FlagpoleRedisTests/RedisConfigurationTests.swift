import Testing

@testable import FlagpoleRedis

@Suite("Redis URLs")
struct RedisConfigurationTests {
    @Test("parses redis:// URLs")
    func tcp() throws {
        let c = try RedisConfiguration(url: "redis://flagctl:s3cr%40t@redis.internal:6380/2")
        #expect(c.endpoint == .tcp(host: "redis.internal", port: 6380))
        #expect(c.username == "flagctl")
        #expect(c.password == "s3cr@t")
        #expect(c.database == 2)
        #expect(c.address == "redis.internal:6380")
        #expect(c.redactedURL == "redis://flagctl:***@redis.internal:6380/2")
    }

    @Test("a password alone, IPv6 and defaults")
    func passwordOnly() throws {
        let a = try RedisConfiguration(url: "redis://:pw@[::1]:7000")
        #expect(a.endpoint == .tcp(host: "::1", port: 7000))
        #expect(a.username == nil)
        #expect(a.password == "pw")
        #expect(a.address == "[::1]:7000")
        let b = try RedisConfiguration(url: "redis://localhost")
        #expect(b.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(b.database == 0)
    }

    @Test("parses unix:// URLs")
    func unix() throws {
        let c = try RedisConfiguration(url: "unix:///run/redis/redis.sock?db=3&password=x%26y")
        #expect(c.endpoint == .unix(path: "/run/redis/redis.sock"))
        #expect(c.database == 3)
        #expect(c.password == "x&y")
        #expect(c.address == "unix:/run/redis/redis.sock")
    }

    @Test(
        "rejects bad URLs without echoing the password",
        arguments: [
            "http://127.0.0.1:6379", "redis://u:hunter2@host:99999", "redis://u:hunter2@host/x", "unix://relative.sock",
            "unix:///tmp/r.sock?bogus=1",
        ])
    func invalid(url: String) {
        #expect {
            _ = try RedisConfiguration(url: url)
        } throws: { error in
            let e = error as! RedisError
            return e.code == .invalidURL && !e.description.contains("hunter2")
        }
    }

    @Test("parses redis-sentinel:// URLs")
    func sentinel() throws {
        let c = try RedisConfiguration(
            url: "redis-sentinel://app:s3cr%40t@10.0.0.1:26379,[::1]:26380,sentinel-c/flagpole-primary?db=2&sentinelPassword=sp&sentinelUser=watch")
        #expect(
            c.topology
                == .sentinel(
                    masterName: "flagpole-primary",
                    sentinels: [
                        .tcp(host: "10.0.0.1", port: 26379), .tcp(host: "::1", port: 26380), .tcp(host: "sentinel-c", port: 26379),
                    ]))
        #expect(c.endpoint == .tcp(host: "10.0.0.1", port: 26379))
        #expect(c.username == "app")
        #expect(c.password == "s3cr@t")
        #expect(c.database == 2)
        #expect(c.sentinelPassword == "sp")
        #expect(c.sentinelUsername == "watch")
        #expect(c.address == "flagpole-primary via sentinels 10.0.0.1:26379,[::1]:26380,sentinel-c:26379")
        #expect(
            c.redactedURL
                == "redis-sentinel://app:***@10.0.0.1:26379,[::1]:26380,sentinel-c:26379/flagpole-primary?db=2&sentinelPassword=***&sentinelUser=watch"
        )
        #expect(try RedisConfiguration(url: c.redactedURL).topology == c.topology)
    }

    @Test("parses redis-cluster:// URLs")
    func cluster() throws {
        let c = try RedisConfiguration(url: "redis-cluster://:pw@10.0.0.1:7000,10.0.0.2,10.0.0.3:7002?maxRedirects=3")
        #expect(
            c.topology
                == .cluster(seeds: [.tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 6379), .tcp(host: "10.0.0.3", port: 7002)]))
        #expect(c.password == "pw")
        #expect(c.maxRedirects == 3)
        #expect(c.address == "cluster 10.0.0.1:7000,10.0.0.2:6379,10.0.0.3:7002")
        #expect(c.redactedURL == "redis-cluster://:***@10.0.0.1:7000,10.0.0.2:6379,10.0.0.3:7002")
        #expect(try RedisConfiguration(url: "redis://h:1").topology == .standalone)
    }

    @Test(
        "rejects bad Sentinel and Cluster URLs with a reason, without echoing passwords",
        arguments: [
            ("redis-sentinel://h1:26379,h2:26379", "name the monitored primary"),
            ("redis-sentinel://h1:26379/", "name the monitored primary"),
            ("redis-sentinel:///m", "name at least one Sentinel"),
            ("redis-sentinel://h1,,h2/m", "empty host"),
            ("redis-sentinel://u:hunter2@h1:99999/m", "port must be"),
            ("redis-sentinel://h1/m?sentinelPassword=hunter2&bogus=1", "unknown query parameter 'bogus'"),
            ("redis-sentinel://h1/m?db=x", "db must be"),
            ("redis-cluster://", "name at least one seed node"),
            ("redis-cluster://u:hunter2@h1:7000/3", "only database 0"),
            ("redis-cluster://h1?db=1", "unknown query parameter 'db'"),
        ])
    func invalidMultiNode(url: String, reason: String) {
        #expect {
            _ = try RedisConfiguration(url: url)
        } throws: { error in
            let e = error as! RedisError
            return e.code == .invalidURL && e.description.contains(reason) && !e.description.contains("hunter2")
        }
    }

    @Test("hash slots: CRC16 and hash tags as in the Redis Cluster specification")
    func hashSlots() {
        #expect(RedisHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisHashSlot.slot(of: "123456789") == 0x31C3 % 16384)
        #expect(RedisHashSlot.slot(of: "foo") == 12182)
        #expect(RedisHashSlot.slot(of: "bar") == 5061)
        #expect(RedisHashSlot.slot(of: "{user1000}.following") == RedisHashSlot.slot(of: "{user1000}.followers"))
        #expect(RedisHashSlot.slot(of: "foo{}{bar}") == Int(RedisHashSlot.crc16(Array("foo{}{bar}".utf8))) % 16384)
        #expect(RedisHashSlot.slot(of: "foo{{bar}}zap") == RedisHashSlot.slot(of: "{bar"))
        #expect(RedisHashSlot.slot(of: "foo{bar}{zap}") == RedisHashSlot.slot(of: "bar"))
        #expect(RedisHashSlot.slot(of: "flagpole:{prod}:flags") == RedisHashSlot.slot(of: "prod"))
    }

    @Test("the key a command is routed by")
    func firstKey() {
        #expect(RedisCommand("GET", "k").hashSlot == RedisHashSlot.slot(of: "k"))
        #expect(RedisCommand("EVALSHA", "abc", "2", "{a}1", "{a}2", "x").firstKey == Array("{a}1".utf8))
        #expect(RedisCommand("EVALSHA", "abc", "0", "x").firstKey == nil)
        #expect(RedisCommand("PUBLISH", "chan", "m").firstKey == nil)
        #expect(RedisCommand("OBJECT", "ENCODING", "k").firstKey == Array("k".utf8))
        #expect(RedisCommand("PING").firstKey == nil)
    }

    @Test("cluster redirects are read from error replies")
    func redirects() {
        guard case .moved(3999, .tcp("127.0.0.1", 6381))? = Redirect(.error("MOVED 3999 127.0.0.1:6381")) else {
            Issue.record("MOVED not parsed"); return
        }
        guard case .ask(12, .tcp("", 7000))? = Redirect(.error("ASK 12 :7000")) else { Issue.record("ASK not parsed"); return }
        guard case .tryAgain? = Redirect(.error("TRYAGAIN Multiple keys request during rehashing of slot")) else {
            Issue.record("TRYAGAIN not parsed"); return
        }
        #expect(Redirect(.error("ERR MOVED")) == nil)
        #expect(Redirect(.error("MOVED 99999 h:1")) == nil)
        #expect(Redirect(.status("OK")) == nil)
    }

    @Test("+switch-master messages name the new primary")
    func switchMaster() {
        #expect(
            SentinelResolver.switchedPrimary(Array("m 127.0.0.1 6379 127.0.0.1 6380".utf8), masterName: "m") == .tcp(host: "127.0.0.1", port: 6380))
        #expect(SentinelResolver.switchedPrimary(Array("other 127.0.0.1 6379 127.0.0.1 6380".utf8), masterName: "m") == nil)
    }

    @Test("FLAGPOLE_REDIS_URL names the server unless a URL is given")
    func resolve() throws {
        let env = ["FLAGPOLE_REDIS_URL": "redis://10.0.0.5:6390"]
        #expect(try RedisConfiguration.resolve(environment: env).address == "10.0.0.5:6390")
        #expect(try RedisConfiguration.resolve(url: "redis://h:1", environment: env).address == "h:1")
        #expect(try RedisConfiguration.resolve(environment: [:]).address == "127.0.0.1:6379")
    }

    @Test("backoff grows exponentially, is capped, and jitters within [d/2, d]")
    func backoff() {
        let b = RedisConfiguration.Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        #expect(b.delay(afterFailures: 1, random: 1) == .milliseconds(100))
        #expect(b.delay(afterFailures: 2, random: 1) == .milliseconds(200))
        #expect(b.delay(afterFailures: 3, random: 0) == .milliseconds(200))
        #expect(b.delay(afterFailures: 20, random: 1) == .seconds(1))
    }

    @Test("commands are encoded as RESP arrays of bulk strings, binary safe")
    func encoding() {
        #expect(RedisConnection.encode([["GET", "k"]]) == Array("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".utf8))
        let big = [UInt8](repeating: 0, count: 1234)
        let args: [RedisArgument] = ["SET", "", .bytes(big)] + (0..<9).map { RedisArgument($0) }
        #expect(
            RedisConnection.encode([RedisCommand(args), ["PING"]])
                == Array("*12\r\n$3\r\nSET\r\n$0\r\n\r\n$1234\r\n".utf8) + big + Array("\r\n".utf8)
                + (0..<9).flatMap { Array("$1\r\n\($0)\r\n".utf8) } + Array("*1\r\n$4\r\nPING\r\n".utf8))
        #expect(RedisConnection.encode([]) == [])
        let ten = [UInt8](repeating: 7, count: 10), hundred = [UInt8](repeating: 8, count: 100)
        #expect(
            RedisConnection.encode([RedisCommand((0..<10).map { _ in RedisArgument.bytes(ten) }), [.bytes(hundred)]])
                == Array("*10\r\n".utf8) + (0..<10).flatMap { _ in Array("$10\r\n".utf8) + ten + Array("\r\n".utf8) }
                + Array("*1\r\n$100\r\n".utf8) + hundred + Array("\r\n".utf8))
    }

    @Test("script SHA-1 matches Redis's")
    func sha1() {
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        #expect(SHA1.hex([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }
}
