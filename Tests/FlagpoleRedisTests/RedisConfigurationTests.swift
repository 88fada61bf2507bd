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

    @Test("rejects bad URLs without echoing the password", arguments: [
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

    @Test("script SHA-1 matches Redis's")
    func sha1() {
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        #expect(SHA1.hex([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }
}
