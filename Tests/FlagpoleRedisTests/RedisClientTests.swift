import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@Suite("Redis client against a real server", .timeLimit(.minutes(2)))
struct RedisClientTests {
    @Test("decodes every reply type")
    func replyTypes() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            #expect(try await client.send("SET", "k", "v") == .status("OK"))
            #expect(try await client.send("GET", "k") == .bulkString(Array("v".utf8)))
            #expect(try await client.send("INCR", "n") == .integer(1))
            #expect(try await client.send("GET", "missing") == .null)
            #expect(try await client.send("RPUSH", "l", "a", "b") == .integer(2))
            #expect(try await client.send("LRANGE", "l", "0", "-1") == .array([.bulkString([97]), .bulkString([98])]))
            // A nested array: EVAL returning a table of tables.
            let nested = try await client.send("EVAL", "return {1, {'x', {2}}, redis.status_reply('fine')}", "0")
            #expect(nested == .array([.integer(1), .array([.bulkString([120]), .array([.integer(2)])]), .status("fine")]))
            let pipelined = try await client.pipeline([["INCR", "k"], ["GET", "k"]])
            #expect(pipelined[0].errorMessage?.hasPrefix("ERR value is not an integer") == true)
            #expect(pipelined[1].string == "v")
            await #expect {
                _ = try await client.send("INCR", "k")
            } throws: { error in
                let e = error as! RedisError
                return e.code == .serverError && e.command == "INCR" && e.description.contains(server.configuration.address)
            }
        }
    }

    @Test("round-trips a 1 MB binary value, every byte value included")
    func binary() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            var value = [UInt8](repeating: 0, count: 1 << 20)
            var x: UInt32 = 2_463_534_242
            for i in value.indices {
                x ^= x << 13; x ^= x >> 17; x ^= x << 5
                value[i] = UInt8(truncatingIfNeeded: x)
            }
            value[0] = 0
            value[1] = 13
            value[2] = 10
            let key: [UInt8] = [0, 255, 10, 13, 32]
            _ = try await client.send([.bytes(key), .bytes(value)].reduce(into: RedisCommand(["SET"])) { $0.arguments.append($1) })
            let back = try await client.send(["GET", .bytes(key)])
            #expect(back.bytes == value)
            #expect(try await client.send(["STRLEN", .bytes(key)]) == .integer(1 << 20))
        }
    }

    @Test("pipelines 10,000 commands in one round trip")
    func pipeline() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let commands = (0..<10_000).map { RedisCommand("SET", "key:\($0)", "\($0)") }
            let replies = try await client.pipeline(commands)
            #expect(replies.count == 10_000)
            #expect(replies.allSatisfy { $0 == .status("OK") })
            let gets = try await client.pipeline((0..<10_000).map { RedisCommand("GET", "key:\($0)") })
            #expect(gets.enumerated().allSatisfy { $0.element.string == "\($0.offset)" })
            #expect(try await client.send("DBSIZE") == .integer(10_000))
        }
    }

    @Test("MULTI/EXEC runs atomically, and a WATCHed change aborts it")
    func transactions() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let results = try await client.transaction([["SET", "a", "1"], ["INCR", "a"], ["GET", "a"]])
            #expect(results == [.status("OK"), .integer(2), .bulkString(Array("2".utf8))])

            let other = RedisClient(configuration: server.configuration)
            let aborted = try await client.withConnection { connection -> Bool in
                _ = try connection.send(["WATCH", "a"])
                // Another client changes the key between WATCH and EXEC.
                let c = try RedisConnection(configuration: server.configuration)
                _ = try c.send(["SET", "a", "changed"])
                return try connection.transaction([["SET", "a", "mine"]]) == nil
            }
            #expect(aborted)
            #expect(try await other.send("GET", "a").string == "changed")

            await #expect {
                _ = try await client.transaction([["SET", "b", "1"], ["NOSUCHCOMMAND"]])
            } throws: { error in
                (error as! RedisError).code == .serverError
            }
            #expect(try await client.send("EXISTS", "b") == .integer(0))
        }
    }

    @Test("EVALSHA falls back to EVAL after SCRIPT FLUSH")
    func scripts() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            #expect(try await client.evaluate(script, keys: ["counter"], arguments: ["5"]) == .integer(5))
            #expect(try await client.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(1)]))
            _ = try await client.send("SCRIPT", "FLUSH")
            #expect(try await client.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(0)]))
            #expect(try await client.evaluate(script, keys: ["counter"], arguments: ["2"]) == .integer(7))
            #expect(try await client.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(1)]))
        }
    }

    @Test("connects over a unix socket and selects the database")
    func unixSocket() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: try RedisConfiguration(url: server.unixURL + "?db=3"))
            _ = try await client.send("SET", "where", "db3")
            let tcp = RedisClient(configuration: server.configuration)
            #expect(try await tcp.send("GET", "where") == .null)
            _ = try await tcp.send("SELECT", "3")
            #expect(try await tcp.send("GET", "where").string == "db3")
        }
    }

    @Test("an ACL user refused a command gets a clear error")
    func aclRefusal() async throws {
        try await RedisServer.withServer { server in
            let admin = RedisClient(configuration: server.configuration)
            _ = try await admin.send("ACL", "SETUSER", "reader", "on", ">readerpw", "~flagpole:*", "+get", "+ping")
            var config = try RedisConfiguration(url: "redis://reader:readerpw@127.0.0.1:\(server.port)")
            config.connectTimeout = .seconds(2)
            let reader = RedisClient(configuration: config)
            #expect(try await reader.send("GET", "flagpole:x") == .null)
            await #expect {
                _ = try await reader.send("SET", "flagpole:x", "1")
            } throws: { error in
                let e = error as! RedisError
                return e.code == .permissionDenied && e.command == "SET" && e.description.contains("NOPERM")
                    && !e.description.contains("readerpw")
            }
        }
    }

    @Test("a wrong password is refused, and the error never shows it")
    func wrongPassword() async throws {
        try await RedisServer.withServer(.init(password: "right-pw")) { server in
            let good = RedisClient(configuration: server.configuration)
            #expect(try await good.send("PING") == .status("PONG"))
            for url in ["redis://:wrong-pw@127.0.0.1:\(server.port)", "redis://127.0.0.1:\(server.port)"] {
                let bad = RedisClient(configuration: try RedisConfiguration(url: url))
                await #expect {
                    _ = try await bad.send("PING")
                } throws: { error in
                    let e = error as! RedisError
                    return e.code == .authenticationFailed && !e.description.contains("wrong-pw")
                }
            }
        }
    }

    @Test("a host that never answers the connect fails within the connect timeout")
    func unreachable() async throws {
        // A listener with a full backlog drops new SYNs: the connect hangs, as to a black-holed host.
        let blackHole = try BlackHoleListener()
        var config = try RedisConfiguration(url: "redis://127.0.0.1:\(blackHole.port)")
        config.connectTimeout = .milliseconds(300)
        let started = ContinuousClock.now
        let client = RedisClient(configuration: config)
        await #expect {
            _ = try await client.send("PING")
        } throws: { error in
            let e = error as! RedisError
            return (e.code == .timeout || e.code == .connectionFailed) && e.description.contains("127.0.0.1:\(blackHole.port)")
        }
        #expect(started.duration(to: .now) < .seconds(2))
    }

    @Test("a server that stops answering fails the command within its timeout")
    func frozenServer() async throws {
        try await RedisServer.withServer { server in
            var config = server.configuration
            config.commandTimeout = .milliseconds(300)
            let client = RedisClient(configuration: config)
            #expect(try await client.send("PING") == .status("PONG"))
            server.pause()
            defer { server.resume() }
            let started = ContinuousClock.now
            await #expect {
                _ = try await client.send("PING")
            } throws: { error in
                (error as! RedisError).code == .timeout
            }
            #expect(started.duration(to: .now) < .seconds(2))
            server.resume()
            try await waitUntil("the client to reconnect") { (try? await client.send("PING")) == .status("PONG") }
        }
    }

    @Test("a refused connection is a clear error naming the address")
    func refused() async throws {
        let port = try RedisServer.freePort()
        let client = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(port)"))
        await #expect {
            _ = try await client.send("PING")
        } throws: { error in
            let e = error as! RedisError
            return e.code == .connectionFailed && e.description.contains("127.0.0.1:\(port)") && e.description.contains("refused")
        }
        // Within the backoff window the next call fails at once, saying it is reconnecting.
        await #expect {
            _ = try await client.send("PING")
        } throws: { error in
            let code = (error as! RedisError).code
            return code == .reconnecting || code == .connectionFailed
        }
    }
}

/// A loopback listener whose accept queue is full, so that further connects hang.
final class BlackHoleListener {
    let fd: Int32
    let port: Int
    private var fillers: [Int32] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        guard listen(fd, 0) == 0 else { throw RedisServerError("listen failed") }
        // Fill the backlog with non-blocking connects that are never accepted.
        for _ in 0..<4 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
            var target = addr
            _ = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(c)
        }
    }

    deinit {
        for c in fillers { close(c) }
        close(fd)
    }
}
