import FlagpoleTesting
import Foundation
import Testing

@testable import FlagpoleRedis

@Suite("Redis layer hardening", .timeLimit(.minutes(1)))
struct RedisHardeningTests {
    struct Abandoned: Error {}

    @Test("WATCH and MULTI left by a withConnection body (thrown or returned) do not reach the next caller")
    func sessionStateCleanedUp() async throws {
        try await RedisServer.withServer { server async throws in
            let client = RedisClient(configuration: server.configuration)
            let other = RedisClient(configuration: server.configuration)
            await #expect(throws: Abandoned.self) {
                try await client.withConnection { connection in
                    _ = try connection.send(["WATCH", "w"])
                    _ = try connection.send(["MULTI"])
                    throw Abandoned()
                }
            }
            // With MULTI still open this would be QUEUED, not done.
            #expect(try await client.send("SET", "w", "1") == .status("OK"))
            #expect(try await other.send("GET", "w").string == "1")

            // A body that WATCHes and decides not to write: the next transaction must not be
            // aborted because someone else touched that key.
            _ = try await client.withConnection { connection in try connection.send(["WATCH", "w"]) }
            _ = try await other.send("SET", "w", "2")
            #expect(try await client.transaction([["SET", "w", "3"]]) == [.status("OK")])
            #expect(try await other.send("GET", "w").string == "3")
        }
    }

    @Test("ports and slots from the server are checked: a bad MOVED is an error reply, not a trap")
    func serverSuppliedPorts() async throws {
        #expect(Redirect(.error("MOVED 3999 127.0.0.1:99999999999")) == nil)
        #expect(Redirect(.error("ASK 3999 127.0.0.1:0")) == nil)
        #expect(Redirect(.error("MOVED 3999 127.0.0.1:-1")) == nil)
        #expect(Redirect(.error("MOVED 3999 127.0.0.1:7000"))?.description == "MOVED 3999 127.0.0.1:7000")
        let slots: (Int64) -> RedisReply = { port in
            .array([.array([.integer(0), .integer(16383), .array([.bulkString(Array("127.0.0.1".utf8)), .integer(port)])])])
        }
        let asked = RedisConfiguration.Endpoint.tcp(host: "127.0.0.1", port: 7000)
        #expect(ConnectionSlot.parseSlots(slots(7001), askedHost: asked)?[5] == .tcp(host: "127.0.0.1", port: 7001))
        for bad: Int64 in [0, -1, 65536, Int64(Int32.max) + 1, .max] {
            #expect(ConnectionSlot.parseSlots(slots(bad), askedHost: asked) == nil)
        }
        #expect(SentinelResolver.switchedPrimary(Array("m 10.0.0.1 6379 10.0.0.2 99999999999".utf8), masterName: "m") == nil)
        #expect(SentinelResolver.switchedPrimary(Array("m 10.0.0.1 6379 10.0.0.2 6380".utf8), masterName: "m") == .tcp(host: "10.0.0.2", port: 6380))
        #expect(throws: RedisError.self) { try RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: 1 << 40)).validate() }

        // End to end: a server whose error reply looks like a redirect to an impossible port.
        try await RedisServer.withServer { server async throws in
            let client = RedisClient(configuration: server.configuration)
            let error = await #expect(throws: RedisError.self) {
                _ = try await client.send("EVAL", "return redis.error_reply('MOVED 3999 127.0.0.1:99999999999')", "0")
            }
            #expect(error?.code == .serverError)
            #expect(try await client.send("PING") == .status("PONG"))
        }
    }

    @Test("duration conversions never trap: a huge ping interval or backoff works")
    func hugeDurations() async throws {
        try await RedisServer.withServer { server async throws in
            var config = server.configuration
            config.backoff = .init(initial: .seconds(1), maximum: .seconds(1e12))
            let subscriber = RedisSubscriber(configuration: config)
            var events = subscriber.subscribe(to: ["c"], pingInterval: .seconds(1e13)).makeAsyncIterator()
            guard case .subscribed = await events.next() else { Issue.record("expected .subscribed"); return }
            _ = try await RedisClient(configuration: server.configuration).send("PUBLISH", "c", "hi")
            guard case .message(let m)? = await events.next() else { Issue.record("expected the message"); return }
            #expect(m.payload == Array("hi".utf8))
        }
    }

    @Test("READONLY in a pipeline: the client asks the Sentinels again and resends to the new primary")
    func readonlyPipeline() async throws {
        try await RedisSentinelSetup.withSetup { setup in
            // The Sentinel behind a proxy, so that the client's +switch-master subscription can be
            // silenced: it then learns of the failover only from the READONLY replies.
            let proxy = try TCPProxy(upstreamPort: setup.sentinels[0].port)
            defer { proxy.stop() }
            var config = try RedisConfiguration(url: "redis-sentinel://127.0.0.1:\(proxy.port)/\(setup.masterName)")
            config.backoff = setup.configuration.backoff
            let client = RedisClient(configuration: config)
            let before = try setup.primary()
            _ = try await client.send("SET", "p", "0")
            try await waitUntil("the client's failover watch subscribed") { proxy.subscriberConnections == 1 }
            proxy.blackhole(subscribersOnly: true)

            let after = try await setup.failover()
            // What the Sentinels do to the old primary when they next look at it.
            _ = try RedisConnection(configuration: before.configuration).send(["REPLICAOF", "127.0.0.1", RedisArgument(after.port)])
            try await waitUntil("the old primary made a replica") {
                (try? RedisConnection(configuration: before.configuration).send(["ROLE"]))?.array?.first?.string == "slave"
            }
            let replies = try await client.pipeline([["SET", "p", "1"], ["GET", "p"], ["INCR", "n"]])
            #expect(replies[0] == .status("OK"))
            #expect(replies[2] == .integer(1))
            let onNew = try RedisConnection(configuration: after.configuration)
            #expect(try onNew.send(["GET", "p"]).string == "1")
            #expect(try await client.send("CONFIG", "GET", "port").array?.last?.string == "\(after.port)")
        }
    }

    @Test("subscribers that lose their connection together come back spread over the reconnect spread")
    func jitteredFirstReconnect() async throws {
        try await RedisServer.withServer { server async throws in
            var spread = server.configuration
            spread.backoff.reconnectSpread = .milliseconds(600)
            let config = spread
            let clock = ContinuousClock()
            let killedAt = Killed()
            let back = await withTaskGroup(of: Duration?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var events = RedisSubscriber(configuration: config).subscribe(to: ["c"]).makeAsyncIterator()
                        guard case .subscribed = await events.next() else { return nil }
                        await killedAt.arrive()
                        while let event = await events.next() {
                            if case .subscribed = event, let killed = await killedAt.instant { return killed.duration(to: clock.now) }
                        }
                        return nil
                    }
                }
                await killedAt.waitForArrivals(8)
                let admin = RedisClient(configuration: server.configuration)
                await killedAt.set(clock.now)
                _ = try? await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
                return await group.reduce(into: [Duration?]()) { $0.append($1) }
            }
            let delays = back.compactMap { $0 }
            #expect(delays.count == 8)
            guard let first = delays.min(), let last = delays.max() else { return }
            // All back at once before (within a few ms); now spread over the 600 ms window.
            #expect(last - first > .milliseconds(100), "reconnects between \(first) and \(last)")
            #expect(last < .milliseconds(600) + .milliseconds(400))
        }
    }

    @Test("a consumer behind by more than the buffer loses old messages, never .subscribed or .disconnected")
    func controlEventsKept() async throws {
        try await RedisServer.withServer { server async throws in
            let admin = RedisClient(configuration: server.configuration)
            var events = RedisSubscriber(configuration: server.configuration)
                .subscribe(to: ["c"], pingInterval: .milliseconds(100), bufferLimit: 5).makeAsyncIterator()
            guard case .subscribed = await events.next() else { Issue.record("expected .subscribed"); return }
            // Not reading: a flood, the connection cut, and another flood after resubscribing.
            _ = try await admin.pipeline((0..<50).map { RedisCommand("PUBLISH", "c", "a\($0)") })
            try await waitUntil("the subscriber's connection on the server") {
                try await admin.send("PUBSUB", "NUMSUB", "c").array?.last == .integer(1)
            }
            _ = try await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
            try await waitUntil("the subscriber back") {
                try await admin.send("PUBSUB", "NUMSUB", "c").array?.last == .integer(1)
            }
            _ = try await admin.pipeline((0..<1000).map { RedisCommand("PUBLISH", "c", "b\($0)") })
            var seen: [String] = []
            while seen.last != "m:b999" {
                switch await events.next() {
                case .subscribed?: seen.append("subscribed")
                case .disconnected?: seen.append("disconnected")
                case .message(let m)?: seen.append("m:" + String(decoding: m.payload, as: UTF8.self))
                case nil: Issue.record("the sequence ended"); return
                }
            }
            // The reader may still be delivering the last flood while this loop reads, so the
            // number of messages that survive varies; the control events always do.
            #expect(seen.filter { !$0.hasPrefix("m:") } == ["disconnected", "subscribed"])
            #expect(seen.filter { $0.hasPrefix("m:a") }.count <= 5)
            #expect(seen.filter { $0.hasPrefix("m:") }.count < 1050)
        }
    }
}

/// When the subscriptions were cut, and how many were up before.
actor Killed {
    var instant: ContinuousClock.Instant?
    private var arrived = 0
    private var waiter: (count: Int, continuation: CheckedContinuation<Void, Never>)?

    func set(_ instant: ContinuousClock.Instant) { self.instant = instant }

    func arrive() {
        arrived += 1
        if let w = waiter, arrived >= w.count {
            waiter = nil
            w.continuation.resume()
        }
    }

    func waitForArrivals(_ count: Int) async {
        if arrived >= count { return }
        await withCheckedContinuation { waiter = (count, $0) }
    }
}
