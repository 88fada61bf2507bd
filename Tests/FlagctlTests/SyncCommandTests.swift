import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

@Suite("flagctl sync, diff and runtime commands (the binary)", .timeLimit(.minutes(3)))
struct SyncCommandTests {
    let flags = """
        {"flags": {
          "checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
          "limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "low"}
        }}
        """

    func folder(_ text: String) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
        try text.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
        return root
    }

    @Test("sync, no-op sync, set, diff --exit-code, history and status, as a person sees them")
    func walkthrough() async throws {
        try await RedisServer.withServer { server in
            let root = try folder(flags)
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            let first = try FlagctlProcess.run(["sync", "--flags", root.path], environment: env)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("prod: synced revision 0 → 1") && first.stdout.contains("+ checkout"))
            let again = try FlagctlProcess.run(["--flags", root.path, "sync"], environment: env)
            #expect(again.stdout.contains("prod: no change (revision 1); nothing written"))
            let same = try FlagctlProcess.run(["diff", "--flags", root.path, "--exit-code"], environment: env)
            #expect(same.status == 0 && same.stdout.contains("agree"))

            let set = try FlagctlProcess.run(["set", "limit", "high", "--reason", "load test", "--actor", "ann"], environment: env)
            #expect(set.status == 0 && set.stdout.contains("limit is now variant \"high\" (revision 2)"))
            let differs = try FlagctlProcess.run(["diff", "--flags", root.path, "--exit-code"], environment: env)
            #expect(differs.status == 1)
            #expect(differs.stdout.contains("limit: overridden — variant \"high\" by ann (load test)"))
            #expect(differs.stdout.contains("to make the files agree: set defaultVariant: high"))

            let history = try FlagctlProcess.run(["history", "limit", "--since", "1h"], environment: env)
            #expect(history.stdout.contains("set") && history.stdout.contains("ann") && history.stdout.contains("load test"))
            let status = try FlagctlProcess.run(["status", "--flags", root.path, "--json"], environment: env)
            let json = try JSONParser.parse(status.stdout)
            #expect(json["revision"] == 2)
            #expect(json["overrides"]?["limit"]?["variant"] == "high")

            let bad = try FlagctlProcess.run(["set", "limit", "huge"], environment: env)
            #expect(bad.status == 1 && bad.stderr.contains("flag 'limit' has no variant 'huge' (variants: high, low)"))
            let missing = try FlagctlProcess.run(["disable", "nope"], environment: env)
            #expect(missing.status == 1 && missing.stderr.contains("flag 'nope' is not in prod"))
            let noEnv = try FlagctlProcess.run(["list"], environment: ["FLAGPOLE_REDIS_URL": server.url])
            #expect(noEnv.status == 2 && noEnv.stderr.contains("no environment: pass --env NAME or set FLAGPOLE_ENV"))
        }
    }

    @Test("invalid files: sync prints file:line:column and exits 1, writing nothing")
    func invalidFiles() async throws {
        try await RedisServer.withServer { server in
            let root = try folder(#"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"}}}"#)
            defer { try? FileManager.default.removeItem(at: root) }
            let r = try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", server.url])
            #expect(r.status == 1)
            #expect(r.stdout.contains("prod/flags.json:1:") && r.stdout.contains("x:"))
            #expect(r.stdout.contains("nothing was written"))
            #expect(try await RedisClient(configuration: server.configuration).send("EXISTS", "flagpole:{prod}:revision") == .integer(0))
        }
    }

    @Test("Redis unreachable, wrong credentials, or a key written by hand: a clear error and exit 1")
    func badInput() async throws {
        try await RedisServer.withServer(.init(password: "secret")) { server in
            let root = try folder(flags)
            defer { try? FileManager.default.removeItem(at: root) }
            let port = try RedisServer.freePort()
            let down = try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", "redis://127.0.0.1:\(port)"])
            #expect(down.status == 1 && down.stderr.contains("127.0.0.1:\(port)") && down.stderr.contains("refused"))
            let wrong = try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", "redis://:nope@127.0.0.1:\(server.port)"])
            #expect(wrong.status == 1 && wrong.stderr.contains("authentication") && !wrong.stderr.contains("nope"))
            _ = try await RedisClient(configuration: server.configuration).send("SET", "flagpole:{prod}:overrides", "hand-written")
            let corrupt = try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", server.url])
            #expect(corrupt.status == 1 && corrupt.stderr.contains("flagpole:{prod}:overrides holds the wrong kind of value"))
        }
    }

    @Test("a sync killed with kill -9 at any moment leaves a whole revision, never a mix")
    func killNine() async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-kill-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            func writeFlags(version: Int) throws {
                var o: [String: JSONValue] = [:]
                for i in 0..<5_000 {
                    o["flag-\(i)"] = ["state": "ENABLED", "variants": ["a": .int(Int64(version)), "b": .int(Int64(i))], "defaultVariant": "a"]
                }
                try JSONValue.object(["flags": .object(o)]).jsonString.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            }
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            try writeFlags(version: 0)
            #expect(try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", server.url]).status == 0)
            var killedBeforeWriting = 0, completed = 0
            let moments = [20, 60, 120, 200, 300, 450, 900, 3000]  // ms after the start; the last ones usually after the write
            for (i, delay) in moments.enumerated() {
                try writeFlags(version: i + 1)
                let before = try await store.revision()
                let p = Process()
                p.executableURL = FlagctlProcess.executable
                p.arguments = ["sync", "--env", "prod", "--flags", root.path, "--redis", server.url]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                try await Task.sleep(for: .milliseconds(delay))
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                // Whatever the moment: the live set is exactly one synced revision.
                let live = try await store.read()
                #expect(live.revision == before || live.revision == before + 1)
                #expect(live.definitions.count == 5_000)
                let hash = FlagDocument.contentHash(flags: live.definitions, metadata: live.flagSetMetadata)
                #expect(hash == live.meta["contentHash"], "revision \(live.revision) is not whole")
                let versions = Set(live.definitions.values.compactMap { $0["variants"]?["a"] })
                #expect(versions.count == 1)
                #expect(try await store.auditEntries(limit: 1000).count == Int(live.revision))
                if live.revision == before { killedBeforeWriting += 1 } else { completed += 1 }
            }
            // Both outcomes are fine; the point is that neither is ever a mix.
            #expect(killedBeforeWriting + completed == moments.count)
            FaultTable.record(
                fault: "flagctl sync of 5,000 flags killed with kill -9 (at \(moments.count) moments)",
                checked: "the live set is one whole revision: content hash, one version of every flag, one audit entry a revision",
                passed: killedBeforeWriting + completed == moments.count,
                figure: "\(killedBeforeWriting) left the previous revision whole, \(completed) the new one; 0 mixes")
        }
    }
}
