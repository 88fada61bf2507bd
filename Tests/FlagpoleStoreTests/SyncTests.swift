import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

/// A temporary flags folder with one environment, `prod`.
final class FlagFolder: @unchecked Sendable {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-sync-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func write(_ name: String, _ text: String, env: String = "prod") throws {
        try FileManager.default.createDirectory(at: root.appendingPathComponent(env), withIntermediateDirectories: true)
        try text.write(to: root.appendingPathComponent(env).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func remove(_ name: String, env: String = "prod") throws {
        try FileManager.default.removeItem(at: root.appendingPathComponent(env).appendingPathComponent(name))
    }

    var directory: FlagDirectory { FlagDirectory(root: root.path) }
}

let twoFlags = """
    flags:
      checkout:
        state: ENABLED
        variants: {"on": true, "off": false}
        defaultVariant: "off"
        targeting: {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
      banner:
        state: ENABLED
        variants: {red: "#f00", blue: "#00f"}
        defaultVariant: red
    """

@Suite("flagctl sync and runtime changes against a real Redis", .timeLimit(.minutes(2)))
struct SyncTests {
    func control(_ server: RedisServer, _ folder: FlagFolder) throws -> EnvironmentControl {
        try EnvironmentControl(environment: "prod", client: RedisClient(configuration: server.configuration), directory: folder.directory)
    }

    @Test("sync writes the files, then a second sync writes nothing and says so")
    func syncAndNoop() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            let control = try control(server, folder)
            guard case .applied(let plan, let revision) = try await control.sync(.init()) else { Issue.record("not applied"); return }
            #expect(plan.added == ["banner", "checkout"])
            #expect(revision == 1)
            guard case .noChange = try await control.sync(.init()) else { Issue.record("expected no change"); return }
            #expect(try await control.store.revision() == 1)
            #expect(try await control.store.auditEntries().count == 1)
            let live = try await control.store.read()
            #expect(live.meta["contentHash"] == plan.contentHash)
            #expect(live.meta["syncedBy"]?.contains("@") == true)
            #expect(live.definitions["checkout"]?["targeting"]?["if"] != nil)
        }
    }

    @Test("byte-identical files skip the comparison; any other byte makes sync compare everything")
    func fastPath() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            let control = try control(server, folder)
            _ = try await control.sync(.init())
            // A definition edited by hand in Redis (out of contract): the fast path trusts the last sync…
            let client = RedisClient(configuration: server.configuration)
            _ = try await client.send(
                "HSET", "flagpole:{prod}:flags", "banner", ##"{"state":"DISABLED","variants":{"red":"#f00"},"defaultVariant":"red"}"##)
            guard case .noChange = try await control.sync(.init()) else { Issue.record("expected the fast path"); return }
            // …diff finds the edit…
            let rows = LiveDiff.compare(load: try folder.directory.loadEnvironment("prod"), live: try await control.store.read())
            #expect(rows.first { $0.flag == "banner" }?.status == .definitionDiffers)
            // …and once the files change at all, sync compares everything and repairs it.
            try folder.write("flags.yaml", "# reviewed\n" + twoFlags)
            guard case .applied(let plan, _) = try await control.sync(.init()) else { Issue.record("expected a full sync"); return }
            #expect(plan.changed == ["banner"])
            guard case .noChange = try await control.sync(.init()) else { Issue.record("expected no change"); return }
        }
    }

    @Test("invalid files: nothing is written")
    func invalid() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", "flags:\n  broken:\n    state: ENABLED\n    variants: {a: 1}\n    defaultVariant: b\n")
            let control = try control(server, folder)
            guard case .invalid(let diagnostics) = try await control.sync(.init()) else { Issue.record("expected invalid"); return }
            #expect(diagnostics.contains { $0.flagKey == "broken" && $0.line == 5 })
            #expect(try await control.store.revision() == 0)
        }
    }

    @Test("dry run writes nothing; changes and removals are reported; --prune removes and drops overrides")
    func changesAndPrune() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            let control = try control(server, folder)
            _ = try await control.sync(.init())
            _ = try await control.apply(.enable(false), flag: "banner", actor: "ann", reason: "broken")
            try folder.write(
                "flags.yaml",
                twoFlags.replacingOccurrences(of: "defaultVariant: red", with: "defaultVariant: blue")
                    .replacingOccurrences(of: "  checkout:", with: "  checkout2:"))
            var dry = EnvironmentControl.SyncOptions()
            dry.dryRun = true
            guard case .planned(let plan) = try await control.sync(dry) else { Issue.record("expected a plan"); return }
            #expect(plan.added == ["checkout2"] && plan.changed == ["banner"] && plan.kept == ["checkout"] && plan.removed.isEmpty)
            #expect(try await control.store.revision() == 2)

            guard case .applied = try await control.sync(.init()) else { Issue.record("not applied"); return }
            var live = try await control.store.read()
            #expect(live.definitions["checkout"] != nil)
            // The sync kept the override: the kill switch stays on.
            #expect(live.overrides["banner"]?.override == .enabled(false))
            #expect(live.definitions["banner"]?["defaultVariant"] == "blue")

            _ = try await control.apply(.set(variant: "on"), flag: "checkout", actor: "ann", reason: nil)
            var prune = EnvironmentControl.SyncOptions()
            prune.prune = true
            guard case .applied(let pruned, _) = try await control.sync(prune) else { Issue.record("not applied"); return }
            #expect(pruned.removed == ["checkout"] && pruned.droppedOverrides == ["checkout"])
            live = try await control.store.read()
            #expect(live.definitions["checkout"] == nil && live.overrides["checkout"] == nil)
            let audit = try await control.store.auditEntries(limit: 1)[0]
            #expect(audit.details["droppedOverrides"] == ["checkout"])
        }
    }

    @Test("two syncs planned against the same revision: one wins, the other writes nothing")
    func concurrentSyncs() async throws {
        try await RedisServer.withServer { server in
            let a = try FlagFolder(), b = try FlagFolder()
            try a.write("flags.yaml", twoFlags)
            try b.write("flags.yaml", twoFlags.replacingOccurrences(of: "defaultVariant: red", with: "defaultVariant: blue"))
            let ca = try control(server, a), cb = try control(server, b)
            let live = try await ca.store.read()
            let planA = try SyncPlan.make(
                environment: "prod", load: try a.directory.loadEnvironment("prod"), fractionalAlgorithm: .v3, live: live,
                prune: false, unpin: [], actor: "a", reason: nil, git: nil, now: 1)
            let planB = try SyncPlan.make(
                environment: "prod", load: try b.directory.loadEnvironment("prod"), fractionalAlgorithm: .v3, live: live,
                prune: false, unpin: [], actor: "b", reason: nil, git: nil, now: 1)
            let started = ContinuousClock.now
            async let ra: Int64 = ca.store.apply(planA.change, expectedRevision: live.revision)
            async let rb: Int64 = cb.store.apply(planB.change, expectedRevision: live.revision)
            var results: [Result<Int64, any Error>] = []
            do { results.append(.success(try await ra)) } catch { results.append(.failure(error)) }
            do { results.append(.success(try await rb)) } catch { results.append(.failure(error)) }
            let both = started.duration(to: .now)
            let winners = results.filter { (try? $0.get()) == 1 }.count
            #expect(winners == 1)
            let conflicts = results.compactMap { r -> StoreError? in if case .failure(let e) = r { e as? StoreError } else { nil } }
            #expect(conflicts.count == 1 && conflicts[0].code == .conflict)
            let revision = try await ca.store.revision(), audited = try await ca.store.auditEntries().count
            #expect(revision == 1)
            #expect(audited == 1)
            // The live set is exactly the winner's files, not a mix of both.
            let after = try await ca.store.read()
            let winner = (try? results[0].get()) == 1 ? planA : planB
            #expect(after.meta["contentHash"] == winner.contentHash)
            #expect(FlagDocument.contentHash(flags: after.definitions, metadata: after.flagSetMetadata) == after.meta["contentHash"])
            FaultTable.record(
                fault: "two concurrent syncs planned against the same revision",
                checked: "one applies, the other is refused as a conflict and writes nothing; the live set is the winner's whole",
                passed: winners == 1 && conflicts.count == 1 && conflicts[0].code == .conflict && revision == 1 && audited == 1,
                figure:
                    "\(winners) applied, \(conflicts.count) conflict; revision \(revision), \(audited) audit entry; both answered in \(FaultTable.ms(both))"
            )
        }
    }

    // This test found that a connection closed while hiredis wrote (redisBufferWrite -> write()) raised SIGPIPE
    // and killed the process; RedisConnection now ignores SIGPIPE (when left at its default), so it gets EPIPE.
    @Test(
        "a sync whose connection is cut at any moment (its process killed) leaves a whole revision, the previous or the new, never a mix")
    func syncCutHalfway() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            func writeFlags(version: Int) throws {
                var o: [String: JSONValue] = [:]
                for i in 0..<5_000 {
                    o["flag-\(i)"] = ["state": "ENABLED", "variants": ["a": .int(Int64(version)), "b": .int(Int64(i))], "defaultVariant": "a"]
                }
                try folder.write("flags.json", JSONValue.object(["flags": .object(o)]).jsonString)
            }
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            try writeFlags(version: 0)
            guard case .applied = try await control(server, folder).sync(.init()) else { Issue.record("the first sync was not applied"); return }
            // Cuts spread over how long a whole sync changing every flag takes here (through a relay), and a little past it.
            try writeFlags(version: 100)
            let timing = try TCPProxy(upstreamPort: server.port)
            defer { timing.stop() }
            let first = ContinuousClock.now
            guard
                case .applied = try await EnvironmentControl(
                    environment: "prod", client: RedisClient(configuration: try RedisConfiguration(url: timing.url)), directory: folder.directory
                ).sync(.init())
            else { Issue.record("the timed sync was not applied"); return }
            let whole = first.duration(to: .now)
            var previous = 0, next = 0, mixes = 0
            var cutAfter: [String] = []
            for (i, fraction) in [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.2].enumerated() {
                let delay = whole * fraction
                try writeFlags(version: i + 1)
                let before = try await store.revision()
                // The sync talks to Redis through a relay that is closed under it, as a killed process's socket is.
                let proxy = try TCPProxy(upstreamPort: server.port)
                let syncing = try EnvironmentControl(
                    environment: "prod", client: RedisClient(configuration: try RedisConfiguration(url: proxy.url)), directory: folder.directory)
                let started = ContinuousClock.now
                let task = Task { try await syncing.sync(.init()) }
                try await Task.sleep(for: delay)  // where to cut, not a wait for a condition
                proxy.stop()
                cutAfter.append(FaultTable.ms(started.duration(to: .now)))
                _ = try? await task.value
                // Whatever the moment: the live set is exactly one synced revision.
                let live = try await store.read()
                #expect(live.revision == before || live.revision == before + 1)
                #expect(live.definitions.count == 5_000)
                let isWhole = FlagDocument.contentHash(flags: live.definitions, metadata: live.flagSetMetadata) == live.meta["contentHash"]
                let versions = Set(live.definitions.values.compactMap { $0["variants"]?["a"] })
                #expect(isWhole, "revision \(live.revision) is not whole")
                #expect(versions.count == 1)
                #expect(try await store.auditEntries(limit: 1000).count == Int(live.revision))
                if !isWhole || versions.count != 1 { mixes += 1 }
                if live.revision == before { previous += 1 } else { next += 1 }
            }
            FaultTable.record(
                fault: "a sync cut halfway (its Redis connection closed under it, as when the process is killed)",
                checked: "the live set is one whole revision (content hash, one version of 5,000 flags, one audit entry per revision)",
                passed: mixes == 0,
                figure:
                    "\(cutAfter.count) cuts over a \(FaultTable.ms(whole)) sync (at \(cutAfter.joined(separator: ", "))): \(previous) left the previous revision whole, \(next) the new one; \(mixes) mixes"
            )
        }
    }

    @Test("a pinned flag stays reverted through a plain sync; --unpin releases it")
    func pins() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            let control = try control(server, folder)
            _ = try await control.sync(.init())
            // What an automatic revert writes: the reverted state as an override, and a pin.
            var revert = StoreChange(audit: AuditEntry(action: "revert", actor: "watcher", at: 1, flags: ["checkout"]))
            revert.setOverrides["checkout"] = OverrideRecord(override: .variant("off"), actor: "watcher", reason: "errors", at: 1, revision: 0)
            revert.setPins["checkout"] = PinRecord(by: "watcher", reason: "error rate 9% > 2%", at: 1, revision: 0)
            try await control.store.apply(revert, expectedRevision: 1)

            try folder.write("flags.yaml", twoFlags.replacingOccurrences(of: "@example.com", with: "@example.org"))
            guard case .applied(let plan, _) = try await control.sync(.init()) else { Issue.record("not applied"); return }
            #expect(plan.pinned.keys.sorted() == ["checkout"])
            var live = try await control.store.read()
            #expect(live.effectiveDefinition(of: "checkout")?["defaultVariant"] == "off")
            #expect(live.pins["checkout"] != nil)
            await #expect { _ = try await control.apply(.clear(unpin: false), flag: "checkout", actor: "ann", reason: nil) } throws: {
                ($0 as! StoreError).code == .pinned
            }
            var unpin = EnvironmentControl.SyncOptions()
            unpin.unpin = ["checkout"]
            guard case .applied(let released, _) = try await control.sync(unpin) else { Issue.record("not applied"); return }
            #expect(released.unpinned == ["checkout"])
            live = try await control.store.read()
            #expect(live.pins.isEmpty && live.overrides.isEmpty)
        }
    }

    @Test("runtime changes are atomic, audited with actor and reason, and refuse unknown flags and variants")
    func runtimeChanges() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            let control = try control(server, folder)
            _ = try await control.sync(.init())
            let set = try await control.apply(.set(variant: "blue"), flag: "banner", actor: "ann@laptop", reason: "promo")
            #expect(set.revision == 2)
            let again = try await control.apply(.set(variant: "blue"), flag: "banner", actor: "ann@laptop", reason: "promo")
            #expect(again.revision == nil)
            _ = try await control.apply(.enable(false), flag: "checkout", actor: "bob", reason: "incident")
            _ = try await control.apply(.clear(unpin: false), flag: "banner", actor: "ann@laptop", reason: nil)
            let entries = try await control.store.auditEntries()
            #expect(entries.map(\.action) == ["clear", "disable", "set", "sync"])
            #expect(entries[2].actor == "ann@laptop" && entries[2].reason == "promo" && entries[2].details["after"]?["variant"] == "blue")
            await #expect { _ = try await control.apply(.set(variant: "green"), flag: "banner", actor: "x", reason: nil) } throws: { e in
                let e = e as! StoreError
                return e.code == .invalidInput && e.message.contains("variants: blue, red")
            }
            await #expect { _ = try await control.apply(.enable(true), flag: "bannr", actor: "x", reason: nil) } throws: { e in
                let e = e as! StoreError
                return e.code == .flagNotFound && e.message.contains("did you mean 'banner'")
            }
            #expect(try await control.store.revision() == 4)
        }
    }

    @Test("restore brings an earlier synced set back, audited")
    func restore() async throws {
        try await RedisServer.withServer { server in
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            let control = try control(server, folder)
            _ = try await control.sync(.init())
            try folder.write("flags.yaml", twoFlags.replacingOccurrences(of: "defaultVariant: red", with: "defaultVariant: blue"))
            _ = try await control.sync(.init())
            guard case .applied(let plan, let revision) = try await control.restore(revision: 1, actor: "ann", reason: "bad release", dryRun: false)
            else {
                Issue.record("not applied"); return
            }
            #expect(plan.changed == ["banner"] && revision == 3)
            #expect(try await control.store.read().definitions["banner"]?["defaultVariant"] == "red")
            let last = try await control.store.auditEntries(limit: 1)[0]
            #expect(last.action == "restore" && last.details["restoredRevision"] == 1 && last.reason == "bad release")
            await #expect { _ = try await control.restore(revision: 99, actor: "a", reason: nil, dryRun: false) } throws: {
                ($0 as! StoreError).code == .revisionNotFound
            }
        }
    }

    @Test("least privilege: the writer user can sync; the reader user can read and subscribe but not write")
    func accessRules() async throws {
        try await RedisServer.withServer { server in
            let admin = RedisClient(configuration: server.configuration)
            for (user, rules) in [("flagctl", AccessRules.writer), ("app", AccessRules.rules(for: .app, environment: "prod")!)] {
                let words = AccessRules.setUserArguments(user: user, password: "pw-\(user)", rules: rules)
                _ = try await admin.send(RedisCommand(words.map { RedisArgument($0) }))
            }
            let folder = try FlagFolder()
            try folder.write("flags.yaml", twoFlags)
            func client(_ user: String) throws -> RedisClient {
                RedisClient(configuration: try RedisConfiguration(url: "redis://\(user):pw-\(user)@127.0.0.1:\(server.port)"))
            }
            let writer = try EnvironmentControl(environment: "prod", client: try client("flagctl"), directory: folder.directory)
            guard case .applied = try await writer.sync(.init()) else { Issue.record("writer could not sync"); return }
            _ = try await writer.apply(.enable(false), flag: "banner", actor: "ann", reason: nil)
            _ = try await writer.store.auditEntries()

            let reader = try EnvironmentControl(environment: "prod", client: try client("app"), directory: folder.directory)
            let live = try await reader.store.read()
            #expect(live.definitions.count == 2 && live.revision == 2)
            #expect(try await reader.store.readFlags(["banner"])["banner"] != nil)
            await #expect { _ = try await reader.apply(.enable(true), flag: "banner", actor: "app", reason: nil) } throws: { e in
                (e as! StoreError).message.contains("NOPERM")
            }
            // The reader may subscribe to the change channel.
            var events = RedisSubscriber(configuration: try client("app").configuration).subscribe(to: [reader.store.layout.changes])
                .makeAsyncIterator()
            guard case .subscribed = await events.next() else { Issue.record("reader could not subscribe"); return }
            // And nothing outside flagpole:*.
            await #expect(throws: RedisError.self) { _ = try await client("app").send("GET", "other") }
        }
    }
}
