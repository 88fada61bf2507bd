import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

/// Every call has one deadline (connect timeout + command timeout) from the moment it is made.
@Suite("Redis call deadlines and cancellation", .timeLimit(.minutes(1)))
struct DeadlineTests {
    /// Slack for a loaded 2-core machine running suites in parallel.
    static let slack: Duration = .milliseconds(250)

    @Test("8 callers queued on a server that stops answering all fail within their own deadline")
    func queuedCallers() async throws {
        try await RedisServer.withServer { server async throws in
            var config = server.configuration
            config.connectTimeout = .milliseconds(200)
            config.commandTimeout = .milliseconds(300)
            let client = RedisClient(configuration: config)
            #expect(try await client.send("PING") == .status("PONG"))
            server.pause()
            defer { server.resume() }
            let outcomes = await withTaskGroup(of: (Duration, RedisError.Code?).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let start = ContinuousClock.now
                        do {
                            _ = try await client.send("PING")
                            return (start.duration(to: .now), nil)
                        } catch {
                            return (start.duration(to: .now), (error as? RedisError)?.code)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.count == 8)
            for (elapsed, code) in outcomes {
                // The first caller times out on the open connection; a later one reconnects. When that
                // connect's handshake times out too (a loaded machine), the client backs off and the
                // callers still queued fail at once with `.reconnecting`, as documented on RedisClient.
                #expect(code == .timeout || code == .reconnecting, "a call ended with \(String(describing: code))")
                // Queued callers get more slack: a clean-clone CI run at load saw 7 of them fail together
                // at 1.6 s (released by the reconnect's failure, not by their own timers). Waiting in
                // turn behind each other would take up to 8 × 500 ms = 4 s, which this still fails.
                #expect(elapsed <= config.callTimeout + Self.queuedSlack, "a call waited \(elapsed), past its deadline of \(config.callTimeout)")
            }
        }
    }

    /// Slack for the queued callers' test: see there.
    static let queuedSlack: Duration = .milliseconds(1_500)

    @Test("three dead Sentinels: connecting fails within the connect timeout, not one timeout per Sentinel")
    func deadSentinels() async throws {
        let holes = try (0..<3).map { _ in try BlackHoleListener() }
        var config = try RedisConfiguration(
            url: "redis-sentinel://" + holes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") + "/flagpole-primary")
        config.connectTimeout = .milliseconds(300)
        config.commandTimeout = .milliseconds(300)
        let client = RedisClient(configuration: config)
        let start = ContinuousClock.now
        let error = await #expect(throws: RedisError.self) { _ = try await client.send("PING") }
        let elapsed = start.duration(to: .now)
        #expect(elapsed <= config.connectTimeout + Self.slack, "took \(elapsed) with 3 dead Sentinels and a connect timeout of 300 ms")
        for hole in holes { #expect(error?.description.contains("127.0.0.1:\(hole.port)") == true) }
        await client.close()
    }

    @Test("cancelling the task ends the wait at once, queued or running, and frees the client's thread")
    func cancellation() async throws {
        try await RedisServer.withServer { server async throws in
            let client = RedisClient(configuration: server.configuration)  // command timeout 5 s
            let admin = RedisClient(configuration: server.configuration)
            #expect(try await client.send("PING") == .status("PONG"))
            let blocked = Task { try await client.send("BLPOP", "never-pushed", "0") }
            try await waitUntil("the BLPOP to block on the server") {
                try await admin.send("CLIENT", "LIST").string?.contains("cmd=blpop") == true
            }
            let queued = Task { try await client.send("PING") }
            for (task, what) in [(queued, "queued"), (blocked, "running")] {
                let start = ContinuousClock.now
                task.cancel()
                let result = await task.result
                #expect(start.duration(to: .now) < .milliseconds(200), "the \(what) call took \(start.duration(to: .now)) to end")
                #expect(throws: RedisError.self) { try result.get() }
                if case .failure(let error as RedisError) = result { #expect(error.code == .cancelled) }
            }
            // The thread is free long before the BLPOP's 5 s command timeout.
            let start = ContinuousClock.now
            #expect(try await client.send("PING") == .status("PONG"))
            #expect(start.duration(to: .now) < .seconds(1))
            try await waitUntil("the abandoned BLPOP's connection to close") {
                try await admin.send("CLIENT", "LIST").string?.contains("cmd=blpop") == false
            }
        }
    }

    @Test("the command timeout bounds the whole reply, not each read of it")
    func slowReply() async throws {
        try await RedisServer.withServer { server async throws in
            let admin = RedisClient(configuration: server.configuration)
            _ = try await admin.send(["SET", "big", .bytes([UInt8](repeating: 7, count: 512 * 1024))])
            let proxy = try TCPProxy(upstreamPort: server.port)
            defer { proxy.stop() }
            var config = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: proxy.port))
            config.commandTimeout = .milliseconds(300)
            let client = RedisClient(configuration: config)
            #expect(try await client.send("PING") == .status("PONG"))
            // 8 KB every 10 ms: each read gets data at once, the whole 512 KB takes about 640 ms.
            proxy.throttle(bytesPerTenMilliseconds: 8 * 1024)
            let start = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) { _ = try await client.send("GET", "big") }
            #expect(error?.code == .timeout)
            #expect(start.duration(to: .now) <= config.commandTimeout + Self.slack)
            proxy.throttle(bytesPerTenMilliseconds: 0)
            #expect(try await client.send("GET", "big").bytes?.count == 512 * 1024)
        }
    }

    @Test(
        "invalid timeouts are refused at configuration, before anything is sent",
        arguments: [
            Duration.zero, .milliseconds(-5), .seconds(7200),
        ])
    func invalidTimeouts(value: Duration) async throws {
        try await RedisServer.withServer { server async throws in
            for setting in ["connectTimeout", "commandTimeout"] {
                var config = server.configuration
                if setting == "connectTimeout" { config.connectTimeout = value } else { config.commandTimeout = value }
                let refused = #expect(throws: RedisError.self) { try config.validate() }
                #expect(refused?.code == .invalidConfiguration)
                #expect(refused?.message.contains(setting) == true)
                #expect(throws: RedisError.self) { _ = try RedisConnection(configuration: config) }
                // A paused server would make a zero ("forever") timeout hang: refused at once instead.
                server.pause()
                let start = ContinuousClock.now
                let error = await #expect(throws: RedisError.self) { _ = try await RedisClient(configuration: config).send("PING") }
                server.resume()
                #expect(error?.code == .invalidConfiguration)
                #expect(start.duration(to: .now) < .milliseconds(100))
            }
        }
    }

    @Test("a backoff that cannot work is refused; an extreme one never traps")
    func backoffRange() throws {
        var config = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: 6379))
        for backoff in [
            RedisConfiguration.Backoff(initial: .zero), .init(initial: .seconds(2), maximum: .seconds(1)),
            .init(multiplier: .nan), .init(multiplier: 0.5), .init(multiplier: .infinity),
        ] {
            config.backoff = backoff
            #expect(throws: RedisError.self) { try config.validate() }
        }
        let extreme = RedisConfiguration.Backoff(initial: .seconds(1e9), maximum: .seconds(1e15), multiplier: 1e300)
        #expect(extreme.delay(afterFailures: Int.max) <= .seconds(86_400 * 365))
        #expect(RedisConfiguration.Backoff(multiplier: .nan).delay(afterFailures: 3, random: .nan) <= .seconds(5))
    }
}
