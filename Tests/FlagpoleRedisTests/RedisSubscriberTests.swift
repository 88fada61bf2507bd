import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@Suite("Redis pub/sub and recovery", .timeLimit(.minutes(2)))
struct RedisSubscriberTests {
    @Test("delivers messages in publish order, from channels and patterns")
    func order() async throws {
        try await RedisServer.withServer { server in
            let subscriber = RedisSubscriber(configuration: server.configuration)
            var events = subscriber.subscribe(to: ["flags"], patterns: ["audit:*"]).makeAsyncIterator()
            guard case .subscribed = await events.next() else { Issue.record("expected .subscribed first"); return }
            let publisher = RedisClient(configuration: server.configuration)
            _ = try await publisher.pipeline((0..<500).map { RedisCommand("PUBLISH", "flags", "m\($0)") })
            _ = try await publisher.send("PUBLISH", "audit:prod", "pattern-hit")
            var received: [String] = []
            while received.count < 500 {
                guard case .message(let m)? = await events.next() else { continue }
                #expect(m.channel == "flags")
                received.append(String(decoding: m.payload, as: UTF8.self))
            }
            #expect(received == (0..<500).map { "m\($0)" })
            guard case .message(let p)? = await events.next() else { Issue.record("no pattern message"); return }
            #expect(p.pattern == "audit:*")
            #expect(p.channel == "audit:prod")
            #expect(p.payload == Array("pattern-hit".utf8))
        }
    }

    @Test("server killed mid-stream and restarted: the client recovers and the subscriber resumes")
    func killAndRestart() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let subscriber = RedisSubscriber(configuration: server.configuration)
            let stream = subscriber.subscribe(to: ["changes"], pingInterval: .milliseconds(200))
            let received = Received()
            let reader = Task {
                for await event in stream { await received.record(event) }
            }
            defer { reader.cancel() }
            try await waitUntil("the first subscription") { await received.subscribedCount == 1 }
            _ = try await client.send("PUBLISH", "changes", "before")
            try await waitUntil("the message before the crash") { await received.messages == ["before"] }

            // Kill the server while a writer is busy: some commands fail, none hangs.
            let writer = Task { () -> Int in
                var failures = 0
                for i in 0..<2_000 {
                    do { _ = try await client.send("SET", "k\(i)", "v") } catch { failures += 1 }
                }
                return failures
            }
            server.kill()
            let failures = await writer.value
            #expect(failures > 0)
            await #expect(throws: RedisError.self) { _ = try await client.send("PING") }
            try await waitUntil("the subscriber to notice") { await received.disconnects >= 1 }

            try await server.restart()
            try await waitUntil("the client to reconnect") { (try? await client.send("PING")) == .status("PONG") }
            try await waitUntil("the subscriber to resubscribe") { await received.subscribedCount == 2 }
            _ = try await client.send("PUBLISH", "changes", "after")
            try await waitUntil("the message after the restart") { await received.messages == ["before", "after"] }
        }
    }

    @Test("a silently dead connection is found by PING and replaced")
    func silentDeath() async throws {
        try await RedisServer.withServer { server in
            var config = server.configuration
            config.commandTimeout = .milliseconds(200)
            let subscriber = RedisSubscriber(configuration: config)
            let received = Received()
            let reader = Task {
                for await event in subscriber.subscribe(to: ["c"], pingInterval: .milliseconds(100)) { await received.record(event) }
            }
            defer { reader.cancel() }
            try await waitUntil("the subscription") { await received.subscribedCount == 1 }
            let admin = RedisClient(configuration: server.configuration)
            // Kill the subscriber's connection behind its back: the server drops it silently.
            _ = try await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
            try await waitUntil("the subscriber to resubscribe") { await received.subscribedCount == 2 }
            _ = try await admin.send("PUBLISH", "c", "still here")
            try await waitUntil("delivery on the new connection") { await received.messages == ["still here"] }
        }
    }

    @Test("stops its thread and connection when the consumer goes away")
    func cancellation() async throws {
        try await RedisServer.withServer { server in
            let subscriber = RedisSubscriber(configuration: server.configuration)
            let admin = RedisClient(configuration: server.configuration)
            let task = Task {
                for await _ in subscriber.subscribe(to: ["c"]) {}
            }
            try await waitUntil("the subscription") { try await admin.send("PUBSUB", "NUMSUB", "c").array?.last == .integer(1) }
            task.cancel()
            try await waitUntil("the subscription to end") { try await admin.send("PUBSUB", "NUMSUB", "c").array?.last == .integer(0) }
        }
    }
}

actor Received {
    var messages: [String] = []
    var subscribedCount = 0
    var disconnects = 0

    func record(_ event: RedisSubscriberEvent) {
        switch event {
        case .subscribed: subscribedCount += 1
        case .message(let m): messages.append(String(decoding: m.payload, as: UTF8.self))
        case .disconnected: disconnects += 1
        }
    }
}
