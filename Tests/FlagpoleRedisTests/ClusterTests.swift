import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@Suite("Redis Cluster", .timeLimit(.minutes(2)))
struct ClusterTests {
    /// Keys whose slots fall on every node of a 3-node cluster.
    static let keys = (0..<30).map { "key:\($0)" }

    @Test("commands, pipelines and transactions go to the node that owns their slot")
    func routing() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.configuration)
            for key in Self.keys { _ = try await client.send("SET", key, "v-\(key)") }
            var owners: Set<Int> = []
            for key in Self.keys {
                let owner = try cluster.owner(of: key)
                owners.insert(owner.port)
                // The server agrees on the slot, and the key is on its owner.
                let direct = try RedisConnection(configuration: owner.configuration)
                #expect(try direct.send(["CLUSTER", "KEYSLOT", RedisArgument(key)]).integer == Int64(RedisHashSlot.slot(of: key)))
                #expect(try direct.send(["GET", RedisArgument(key)]).string == "v-\(key)")
            }
            #expect(owners.count == 3)
            // A pipeline across slots: every reply in command order.
            let replies = try await client.pipeline(Self.keys.map { RedisCommand("GET", $0) } + [RedisCommand("PING")])
            #expect(replies.dropLast().map(\.string) == Self.keys.map { "v-\($0)" })
            #expect(replies.last == .status("PONG"))
            // A transaction on one hash tag.
            let tx = try await client.transaction([["INCR", "{prod}:a"], ["INCR", "{prod}:b"], ["GET", "{prod}:a"]])
            #expect(tx == [.integer(1), .integer(1), .bulkString(Array("1".utf8))])
            // A transaction across slots is refused before anything is sent.
            await #expect(throws: RedisError.self) { try await client.transaction([["SET", "a", "1"], ["SET", "b", "1"]]) }
            let err = await #expect(throws: RedisError.self) { try await client.transaction([["SET", "a", "1"], ["SET", "b", "1"]]) }
            #expect(err?.serverErrorPrefix == "CROSSSLOT")
        }
    }

    @Test("a redis:// URL of one node switches to cluster mode at the first MOVED")
    func detectsCluster() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.nodes[0].configuration)
            for key in Self.keys { _ = try await client.send("SET", key, "x") }
            for key in Self.keys {
                let direct = try RedisConnection(configuration: try cluster.owner(of: key).configuration)
                #expect(try direct.send(["GET", RedisArgument(key)]).string == "x")
            }
            #expect(try await client.pipeline(Self.keys.map { RedisCommand("GET", $0) }).allSatisfy { $0.string == "x" })
        }
    }

    @Test("MOVED after a slot is resharded to another node is followed")
    func moved() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.configuration)
            let key = "{moving}:revision"
            let slot = RedisHashSlot.slot(of: key)
            _ = try await client.send("SET", key, "1")
            _ = try await client.send("HSET", "{moving}:flags", "a", "1")
            let source = try cluster.owner(ofSlot: slot)
            let target = cluster.nodes.first { $0 !== source }!
            try await cluster.moveSlot(slot, to: target)
            #expect(try cluster.owner(ofSlot: slot) === target)
            // The client still thinks the slot is on the source: it gets MOVED and follows it.
            #expect(try await client.send("INCR", key).integer == 2)
            #expect(
                try await client.transaction([["GET", "{moving}:revision"], ["HGET", "{moving}:flags", "a"]])
                    == [.bulkString(Array("2".utf8)), .bulkString(Array("1".utf8))])
            let direct = try RedisConnection(configuration: target.configuration)
            #expect(try direct.send(["GET", RedisArgument(key)]).string == "2")
        }
    }

    @Test("ASK during a slot migration is followed, for reads and writes")
    func ask() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.configuration)
            let moved = "{mig}:moved", stays = "{mig}:stays", fresh = "{mig}:fresh"
            let slot = RedisHashSlot.slot(of: moved)
            _ = try await client.send("SET", moved, "m")
            _ = try await client.send("SET", stays, "s")
            let source = try cluster.owner(ofSlot: slot)
            let target = cluster.nodes.first { $0 !== source }!
            try cluster.beginMigration(slot: slot, to: target)
            try cluster.migrate(keys: [moved], slot: slot, to: target)
            // The source no longer has `moved`: it answers ASK, and the client asks the target.
            #expect(try await client.send("GET", moved).string == "m")
            #expect(try await client.send("GET", stays).string == "s")
            // A new key of a migrating slot is created on the target.
            _ = try await client.send("SET", fresh, "f")
            let onTarget = try RedisConnection(configuration: target.configuration)
            #expect(try onTarget.send(["ASKING"]) == .status("OK"))
            #expect(try onTarget.send(["GET", RedisArgument(fresh)]).string == "f")
            try cluster.migrate(keys: [stays], slot: slot, to: target)
            try await cluster.finishMigration(slot: slot, to: target)
            #expect(
                try await client.pipeline([["GET", "{mig}:moved"], ["GET", "{mig}:stays"], ["GET", "{mig}:fresh"]]).map(\.string) == ["m", "s", "f"])
        }
    }

    @Test("EVALSHA runs on the node that owns the script's keys (EVAL fallback on each node)")
    func scripts() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.configuration)
            let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])")
            var nodes: Set<Int> = []
            for env in ["prod", "staging", "dev", "test", "qa"] {
                let keys: [RedisArgument] = [RedisArgument("flagpole:{\(env)}:flags"), RedisArgument("flagpole:{\(env)}:revision")]
                #expect(try await client.evaluate(script, keys: keys, arguments: ["x"]).integer == 1)
                #expect(try await client.evaluate(script, keys: keys, arguments: ["y"]).integer == 2)
                let owner = try cluster.owner(of: "flagpole:{\(env)}:revision")
                nodes.insert(owner.port)
                #expect(
                    try RedisConnection(configuration: owner.configuration).send(["GET", RedisArgument("flagpole:{\(env)}:revision")]).string == "2")
            }
            #expect(nodes.count > 1)
        }
    }

    @Test("the node that owns a slot restarts: the client recovers")
    func nodeRestart() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.configuration)
            let key = "flagpole:{prod}:revision"  // the slot of environment prod's keys
            _ = try await client.send("SET", key, "before")
            let owner = try cluster.owner(of: key)
            owner.kill()
            await #expect(throws: RedisError.self) { _ = try await client.send("GET", key) }
            try await owner.restart()
            let restarted = ContinuousClock.now
            var failedAttempts = 0
            try await waitUntil("the client to write to the restarted node") {
                if (try? await client.send("SET", key, "after")) != nil { return true }
                failedAttempts += 1
                return false
            }
            let recovery = restarted.duration(to: .now)
            let after = try await client.send("GET", key).string
            #expect(after == "after")
            // The other nodes were reachable all along.
            #expect(try await client.send("SET", "{other}:k", "1") == .status("OK"))
            FaultTable.record(
                fault: "Redis Cluster: the node holding environment prod's slot killed (SIGKILL) and restarted",
                checked: "commands to its slot fail while it is down; the same client writes to it again after the restart, and to the other nodes",
                passed: after == "after",
                figure: "recovered \(FaultTable.ms(recovery)) after the restart (\(failedAttempts) failed attempts)")
        }
    }

    @Test("the subscriber moves to another node when its node dies (one it learned, not a seed), and keeps receiving")
    func subscriberFailover() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: cluster.configuration)
            // Only the node that will die as a seed: the subscriber must find the others itself.
            var config = cluster.configuration
            config.topology = .cluster(seeds: [.tcp(host: "127.0.0.1", port: cluster.nodes[0].port)])
            let subscriber = RedisSubscriber(configuration: config)
            // A SIGKILLed node closes the socket, so the loss is seen at once, without a ping; a short
            // ping interval would only add spurious losses on a loaded machine.
            let stream = subscriber.subscribe(to: ["flagpole:{prod}:changes"], pingInterval: .seconds(5))
            let received = Received()
            let reader = Task { for await event in stream { await received.record(event) } }
            defer { reader.cancel() }
            try await waitUntil("subscribed") { await received.subscribedCount == 1 }
            // PUBLISH is broadcast: whichever node the client publishes on, the subscriber hears it.
            _ = try await client.send("PUBLISH", "flagpole:{prod}:changes", "one")
            try await waitUntil("the first message") { await received.messages == ["one"] }
            cluster.nodes[0].kill()  // the only seed, where the subscriber is
            try await waitUntil("resubscribed on another node") { await received.subscribedCount == 2 }
            var n = 0
            try await waitUntil("a message after the node died") {
                n += 1
                _ = try? await client.send("PUBLISH", "flagpole:{prod}:changes", "two-\(n)")
                return await received.messages.contains { $0.hasPrefix("two-") }
            }
            #expect(await received.disconnects == 1)
        }
    }
}
