import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@Suite("Redis Sentinel", .timeLimit(.minutes(2)))
struct SentinelTests {
    @Test("connects to the primary the Sentinels name, follows a failover, and the subscriber keeps receiving")
    func failover() async throws {
        try await RedisSentinelSetup.withSetup { setup in
            // A dead Sentinel first: the client tries the next one.
            var config = setup.configuration
            guard case .sentinel(let name, let sentinels) = config.topology else { Issue.record("not a Sentinel URL"); return }
            config.topology = .sentinel(masterName: name, sentinels: [.tcp(host: "127.0.0.1", port: try RedisServer.freePort())] + sentinels)
            let client = RedisClient(configuration: config)
            let before = try setup.primary()
            _ = try await client.send("SET", "k", "before")
            #expect(try await client.send("CONFIG", "GET", "port").array?.last?.string == "\(before.port)")

            let subscriber = RedisSubscriber(configuration: config)
            let stream = subscriber.subscribe(to: ["changes"], pingInterval: .milliseconds(500))
            let received = Received()
            let reader = Task { for await event in stream { await received.record(event) } }
            defer { reader.cancel() }
            try await waitUntil("subscribed") { await received.subscribedCount == 1 }
            _ = try await client.send("PUBLISH", "changes", "one")
            try await waitUntil("the first message") { await received.messages == ["one"] }

            let after = try await setup.failover()
            #expect(after !== before)
            // The client moves to the new primary (the Sentinel announces it) and writes there.
            try await waitUntil("the client on the new primary") {
                (try? await client.send("CONFIG", "GET", "port"))?.array?.last?.string == "\(after.port)"
            }
            _ = try await client.send("SET", "k", "after")
            #expect(try RedisConnection(configuration: after.configuration).send(["GET", "k"]).string == "after")
            // The subscriber moved too: a message published on the new primary arrives.
            var n = 0
            try await waitUntil("a message after the failover") {
                n += 1
                _ = try? await client.send("PUBLISH", "changes", "two-\(n)")
                return await received.messages.contains { $0.hasPrefix("two-") }
            }
            #expect(await received.subscribedCount >= 2)
        }
    }

    @Test("confirmPrimary moves to the primary the Sentinels name as soon as they name it, before +switch-master is heard")
    func confirmPrimary() async throws {
        try await RedisSentinelSetup.withSetup { setup in
            let client = RedisClient(configuration: setup.configuration)
            try await client.confirmPrimary()  // connects when not connected yet
            let before = try setup.primary()
            #expect(try await client.send("CONFIG", "GET", "port").array?.last?.string == "\(before.port)")
            try await client.confirmPrimary()  // already there: stays
            #expect(try await client.send("CONFIG", "GET", "port").array?.last?.string == "\(before.port)")

            // failover() returns once every Sentinel names the new primary; no waiting for the client's watch.
            let after = try await setup.failover()
            #expect(after !== before)
            try await client.confirmPrimary()
            #expect(try await client.send("CONFIG", "GET", "port").array?.last?.string == "\(after.port)")
            _ = try await client.send("SET", "k", "confirmed")
            #expect(try RedisConnection(configuration: after.configuration).send(["GET", "k"]).string == "confirmed")
        }
    }

    @Test("confirmPrimary does nothing on a standalone server")
    func confirmPrimaryStandalone() async throws {
        let client = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(try RedisServer.freePort())"))
        try await client.confirmPrimary()  // no server there: a no-op, not a connection attempt
    }

    @Test("errors name every Sentinel tried and why, never the password")
    func unreachable() async throws {
        let a = try RedisServer.freePort(), b = try RedisServer.freePort()
        var config = try RedisConfiguration(url: "redis-sentinel://:hunter2@127.0.0.1:\(a),127.0.0.1:\(b)/flagpole-primary?sentinelPassword=hunter3")
        config.connectTimeout = .milliseconds(500)
        let client = RedisClient(configuration: config)
        let error = await #expect(throws: RedisError.self) { _ = try await client.send("PING") }
        let text = error?.description ?? ""
        #expect(text.contains("127.0.0.1:\(a)") && text.contains("127.0.0.1:\(b)"))
        #expect(text.contains("flagpole-primary"))
        #expect(!text.contains("hunter2") && !text.contains("hunter3"))
    }

    @Test("passwords on the data servers and on the Sentinels; a wrong Sentinel password is said, never shown")
    func passwords() async throws {
        try await RedisSentinelSetup.withSetup(replicas: 0, password: "data-pw", sentinelPassword: "sentinel-pw") { setup in
            let client = RedisClient(configuration: setup.configuration)
            _ = try await client.send("SET", "k", "v")
            #expect(try await client.send("GET", "k").string == "v")
            var wrong = setup.configuration
            wrong.sentinelPassword = "hunter2"
            let error = await #expect(throws: RedisError.self) { _ = try await RedisClient(configuration: wrong).send("PING") }
            let text = error?.description ?? ""
            #expect(error?.code == .authenticationFailed && text.contains("authentication"))
            #expect(!text.contains("hunter2") && !text.contains("data-pw") && !text.contains("sentinel-pw"))
        }
    }

    @Test("a master name the Sentinels do not monitor is reported as such")
    func unknownMaster() async throws {
        try await RedisSentinelSetup.withSetup(replicas: 0) { setup in
            var config = setup.configuration
            config.topology = .sentinel(masterName: "nope", sentinels: [.tcp(host: "127.0.0.1", port: setup.sentinels[0].port)])
            let error = await #expect(throws: RedisError.self) { _ = try await RedisClient(configuration: config).send("PING") }
            #expect(error?.message.contains("does not monitor 'nope'") == true)
        }
    }
}
