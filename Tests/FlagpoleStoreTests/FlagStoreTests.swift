import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Testing

@Suite("Flag store against a real Redis", .timeLimit(.minutes(2)))
struct FlagStoreTests {
    static let boolFlag: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]

    func change(_ action: String, _ build: (inout StoreChange) -> Void) -> StoreChange {
        var c = StoreChange(audit: AuditEntry(action: action, actor: "tester@host", reason: "test", at: 1_700_000_000, flags: []))
        build(&c)
        c.audit.flags = c.changedFlags + c.removeDefinitions
        return c
    }

    @Test("writes atomically, bumps the revision, and reads back what it wrote")
    func roundTrip() async throws {
        try await RedisServer.withServer { server in
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            #expect(try await store.revision() == 0)
            let r1 = try await store.apply(
                change("sync") {
                    $0.setDefinitions = ["a": Self.boolFlag, "b": ["state": "ENABLED", "variants": ["x": 1.5], "defaultVariant": "x"]]
                    $0.meta = ["flagSetMetadata": #"{"version":"7"}"#]
                    $0.historySnapshot = ["flags": ["a": Self.boolFlag]]
                }, expectedRevision: 0)
            #expect(r1 == 1)
            let r2 = try await store.apply(
                change("set") {
                    $0.setOverrides = ["a": OverrideRecord(override: .variant("on"), actor: "ann@host", reason: "launch", at: 1, revision: 0)]
                    $0.requireFlags = ["a"]
                }, expectedRevision: 1)
            #expect(r2 == 2)
            let snapshot = try await store.read()
            #expect(snapshot.revision == 2)
            #expect(snapshot.definitions["b"]?["variants"]?["x"] == .double(1.5))
            #expect(snapshot.overrides["a"]?.override == .variant("on"))
            #expect(snapshot.overrides["a"]?.revision == 2)
            #expect(snapshot.effectiveDefinition(of: "a")?["defaultVariant"] == "on")
            #expect(snapshot.flagSetMetadata["version"] == "7")
            #expect(snapshot.meta["format"] == "1")
            let audit = try await store.auditEntries()
            #expect(audit.map(\.action) == ["set", "sync"])
            #expect(audit[0].revision == 2 && audit[0].actor == "tester@host" && audit[0].flags == ["a"])
            #expect(try await store.historyRevisions() == [1])
        }
    }

    @Test("the first write stores an environment ID that later writes keep; a meta without one gets one on the next write")
    func environmentID() async throws {
        try await RedisServer.withServer { server in
            let admin = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: admin, environment: "prod")
            #expect(try await store.environmentID() == nil)
            try await store.apply(change("sync") { $0.setDefinitions = ["a": Self.boolFlag] }, expectedRevision: 0)
            let first = try #require(try await store.environmentID())
            #expect(first.count == 32 && first.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            // A change's own meta fields cannot replace it.
            try await store.apply(
                change("set") {
                    $0.setOverrides = ["a": OverrideRecord(override: .variant("on"), actor: "ann@host", reason: nil, at: 1, revision: 0)]
                    $0.meta = [StoreLayout.environmentIDField: "forged"]
                }, expectedRevision: 1)
            try await store.setMeta(["sourceHash": "x", StoreLayout.environmentIDField: "forged"])
            #expect(try await store.environmentID() == first)
            #expect(try await store.read().meta[StoreLayout.environmentIDField] == first)

            // Data from a Flagpole older than the field: the next write names it.
            _ = try await admin.send("HDEL", store.layout.meta, StoreLayout.environmentIDField)
            try await store.apply(change("set") { $0.removeOverrides = ["a"] }, expectedRevision: 2)
            let second = try #require(try await store.environmentID())
            #expect(second != first)

            // Another environment, and the bookkeeping write that can create meta, get their own.
            let other = try FlagStore(client: admin, environment: "staging")
            try await other.setMeta(["sourceHash": "y"])
            let third = try #require(try await other.environmentID())
            #expect(third != second)
        }
    }

    @Test(
        "a change event whose revisions are not whole numbers from 0 is refused, never a trap",
        arguments: [
            #"{"revision":1e300,"previousRevision":1}"#, #"{"revision":2,"previousRevision":-1e300}"#, #"{"revision":1.5,"previousRevision":0}"#,
            #"{"revision":-2,"previousRevision":-3}"#, #"{"revision":"2","previousRevision":1}"#,
            #"{"revision":99999999999999999999,"previousRevision":1}"#,
        ])
    func changeEventRevisions(_ message: String) throws {
        #expect(throws: StoreError.self) { try ChangeEvent(message: Array(message.utf8)) }
        #expect(try ChangeEvent(message: Array(#"{"revision":2,"previousRevision":1}"#.utf8)).revision == 2)
    }

    @Test("two writers that read the same revision: exactly one wins, the other writes nothing")
    func conflict() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: client, environment: "prod")
            try await store.apply(change("sync") { $0.setDefinitions = ["a": Self.boolFlag] }, expectedRevision: 0)
            let results = await withTaskGroup(of: Result<Int64, any Error>.self) { group in
                for name in ["x", "y"] {
                    group.addTask {
                        let s = try! FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
                        do {
                            return .success(try await s.apply(self.change("sync") { $0.setDefinitions = [name: Self.boolFlag] }, expectedRevision: 1))
                        } catch { return .failure(error) }
                    }
                }
                var out: [Result<Int64, any Error>] = []
                for await r in group { out.append(r) }
                return out
            }
            let wins = results.compactMap { try? $0.get() }
            #expect(wins == [2])
            let failure = results.compactMap { r -> StoreError? in if case .failure(let e) = r { return e as? StoreError } else { return nil } }
            #expect(failure.count == 1 && failure[0].code == .conflict)
            let snapshot = try await store.read()
            #expect(snapshot.revision == 2)
            #expect(snapshot.definitions.count == 2)
            #expect(try await store.auditEntries().count == 2)
        }
    }

    @Test("a key of the wrong type written by hand is a clear error naming the key; nothing is written")
    func wrongType() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: client, environment: "prod")
            _ = try await client.send("SET", "flagpole:{prod}:flags", "oops")
            await #expect {
                try await store.apply(change("sync") { $0.setDefinitions = ["a": Self.boolFlag] }, expectedRevision: 0)
            } throws: { error in
                let e = error as! StoreError
                return e.code == .corruptData && e.key == "flagpole:{prod}:flags" && e.message.contains("Flagpole did not write it")
            }
            await #expect {
                _ = try await store.read()
            } throws: { error in
                (error as! StoreError).key == "flagpole:{prod}:flags"
            }
            #expect(try await client.send("GET", "flagpole:{prod}:revision") == .null)
            #expect(try await client.send("EXISTS", "flagpole:{prod}:audit") == .integer(0))

            _ = try await client.send("DEL", "flagpole:{prod}:flags")
            _ = try await client.send("SET", "flagpole:{prod}:revision", "twelve")
            await #expect {
                _ = try await store.revision()
            } throws: { error in
                (error as! StoreError).message.contains("should hold a revision number, found 'twelve'")
            }
        }
    }

    @Test("data written by a newer Flagpole is refused, not overwritten")
    func newerFormat() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: client, environment: "prod")
            _ = try await client.send("HSET", "flagpole:{prod}:meta", "format", "2")
            await #expect { _ = try await store.read() } throws: { ($0 as! StoreError).code == .newerFormat }
            await #expect {
                try await store.apply(change("sync") { $0.setDefinitions = ["a": Self.boolFlag] }, expectedRevision: 0)
            } throws: { ($0 as! StoreError).code == .newerFormat }
            #expect(try await client.send("HLEN", "flagpole:{prod}:flags") == .integer(0))
        }
    }

    @Test("malformed entries are reported by key and field; the other flags still read")
    func malformedEntries() async throws {
        try await RedisServer.withServer { server in
            let client = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: client, environment: "prod")
            try await store.apply(change("sync") { $0.setDefinitions = ["a": Self.boolFlag, "b": Self.boolFlag] }, expectedRevision: 0)
            _ = try await client.send("HSET", "flagpole:{prod}:flags", "b", "{not json")
            _ = try await client.send("HSET", "flagpole:{prod}:overrides", "a", "[1]")
            let snapshot = try await store.read()
            #expect(snapshot.definitions.keys.sorted() == ["a"])
            #expect(snapshot.overrides.isEmpty)
            #expect(snapshot.problems.count == 2)
            #expect(snapshot.problems.contains { $0.message.hasPrefix("flagpole:{prod}:flags field 'b'") })
            #expect(snapshot.problems.contains { $0.message.hasPrefix("flagpole:{prod}:overrides field 'a'") })
        }
    }

    @Test("an override on a missing flag writes nothing")
    func missingFlag() async throws {
        try await RedisServer.withServer { server in
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            await #expect {
                try await store.apply(
                    change("set") {
                        $0.setOverrides = ["nope": OverrideRecord(override: .enabled(false), actor: "a", reason: nil, at: 0, revision: 0)]
                        $0.requireFlags = ["nope"]
                    }, expectedRevision: 0)
            } throws: { ($0 as! StoreError).code == .flagNotFound }
            #expect(try await store.revision() == 0)
        }
    }

    @Test("publishes one change event per write, with the changed flags inline")
    func changeEvents() async throws {
        try await RedisServer.withServer { server in
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            var events = RedisSubscriber(configuration: server.configuration).subscribe(to: [store.layout.changes]).makeAsyncIterator()
            guard case .subscribed = await events.next() else { Issue.record("no subscription"); return }
            try await store.apply(change("sync") { $0.setDefinitions = ["a": Self.boolFlag, "b": Self.boolFlag] }, expectedRevision: 0)
            try await store.apply(
                change("disable") {
                    $0.setOverrides = ["a": OverrideRecord(override: .enabled(false), actor: "x", reason: nil, at: 0, revision: 0)]
                }, expectedRevision: 1)
            try await store.apply(change("sync") { $0.removeDefinitions = ["b"] }, expectedRevision: 2)
            var received: [ChangeEvent] = []
            while received.count < 3, let event = await events.next() {
                if case .message(let m) = event { received.append(try ChangeEvent(message: m.payload)) }
            }
            #expect(received.map(\.revision) == [1, 2, 3])
            #expect(received.map(\.previousRevision) == [0, 1, 2])
            #expect(received[0].changed == ["a", "b"])
            #expect(received[0].flags?["a"]?.definition == Self.boolFlag)
            #expect(received[1].changed == ["a"])
            #expect(received[1].flags?["a"]?.override?["state"] == "DISABLED")
            #expect(received[2].removed == ["b"] && received[2].changed.isEmpty)
        }
    }

    @Test("the history keeps only the newest synced sets")
    func boundedHistory() async throws {
        try await RedisServer.withServer { server in
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "test")
            for i in 0..<5 {
                try await store.apply(
                    change("sync") {
                        $0.setDefinitions = ["f\(i)": Self.boolFlag]
                        $0.historySnapshot = ["flags": ["f\(i)": Self.boolFlag]]
                        $0.historyLimit = 3
                    }, expectedRevision: Int64(i))
            }
            #expect(try await store.historyRevisions() == [5, 4, 3])
            #expect(try await store.historySnapshot(revision: 4)["flags"]?["f3"] != nil)
            await #expect { _ = try await store.historySnapshot(revision: 1) } throws: { error in
                let e = error as! StoreError
                return e.code == .revisionNotFound && e.message.contains("kept: 5, 4, 3")
            }
        }
    }
}
