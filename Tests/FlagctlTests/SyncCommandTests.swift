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

    @Test("a sync killed with kill -9 at any moment leaves a whole revision, never a mix — also with its script in flight")
    func killNine() async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-kill-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            let flagCount = 5_000
            /// Flag i of version v: variant a is v, b is i; nothing else tells versions apart.
            func definition(version: Int, flag i: Int) -> JSONValue {
                ["state": "ENABLED", "variants": ["a": .int(Int64(version)), "b": .int(Int64(i))], "defaultVariant": "a"]
            }
            func writeFlags(version: Int) throws {
                var o: [String: JSONValue] = [:]
                for i in 0..<flagCount { o["flag-\(i)"] = definition(version: version, flag: i) }
                try JSONValue.object(["flags": .object(o)]).jsonString.write(
                    to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            }
            let admin = RedisClient(configuration: server.configuration)
            let store = try FlagStore(client: admin, environment: "prod")
            /// Write-script runs Redis completed (EVAL and EVALSHA calls that did not fail).
            func scriptRuns() async throws -> Int {
                let info = try await admin.send("INFO", "commandstats").string ?? ""
                var runs = 0
                for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_eval:") || line.hasPrefix("cmdstat_evalsha:") {
                    var fields: [String: Int] = [:]
                    for part in line.split(separator: ":", maxSplits: 1)[1].split(separator: ",") {
                        let kv = part.split(separator: "=")
                        if kv.count == 2 { fields[String(kv[0])] = Int(kv[1]) }
                    }
                    runs += (fields["calls"] ?? 0) - (fields["failed_calls"] ?? 0)
                }
                return runs
            }
            /// The connection whose write script Redis holds (CLIENT PAUSE WRITE), if any: its id.
            func heldScript() async throws -> String? {
                let list = try await admin.send("CLIENT", "LIST").string ?? ""
                for line in list.split(whereSeparator: \.isNewline) {
                    var f: [Substring: Substring] = [:]
                    for part in line.split(separator: " ") {
                        if let eq = part.firstIndex(of: "=") { f[part[..<eq]] = part[part.index(after: eq)...] }
                    }
                    if f["flags"]?.contains("b") == true, f["cmd"] == "evalsha" || f["cmd"] == "eval" { return f["id"].map(String.init) }
                }
                return nil
            }
            func connected(_ id: String) async throws -> Bool {
                (try await admin.send("CLIENT", "LIST").string ?? "").contains("id=\(id) ")
            }
            func startSync() throws -> Process {
                let p = Process()
                p.executableURL = FlagctlProcess.executable
                p.arguments = ["sync", "--env", "prod", "--flags", root.path, "--redis", server.url]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                return p
            }

            /// What one kill left, computed from the live data.
            struct Left {
                var revision: Int64
                var previous = 0, new = 0, neither = 0
                var hashMatches: Bool
                var auditEntries: Int
                var scriptRuns: Int
                /// Every flag of exactly one version, the revision and content hash to match, one audit entry a revision.
                var isWhole: Bool
            }
            func inspect(previous: Int, new: Int, before: Int64, runsBefore: Int) async throws -> Left {
                let live = try await store.read()
                var left = Left(
                    revision: live.revision,
                    hashMatches: FlagDocument.contentHash(flags: live.definitions, metadata: live.flagSetMetadata) == live.meta["contentHash"],
                    auditEntries: try await store.auditEntries(limit: 1000).count, scriptRuns: try await scriptRuns() - runsBefore, isWhole: false)
                for i in 0..<flagCount {
                    switch live.definitions["flag-\(i)"] {
                    case definition(version: previous, flag: i)?: left.previous += 1
                    case definition(version: new, flag: i)?: left.new += 1
                    default: left.neither += 1
                    }
                }
                let onePrevious = left.previous == flagCount && live.revision == before
                let oneNew = left.new == flagCount && live.revision == before + 1
                left.isWhole =
                    (onePrevious || oneNew) && live.definitions.count == flagCount && left.hashMatches
                    && left.auditEntries == Int(live.revision)
                return left
            }

            try writeFlags(version: 0)
            #expect(try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", server.url]).status == 0)
            var live = 0  // the version Redis holds
            var mixes = 0
            var log: [String] = []

            // Kills at moments after the start: before, during or after the write, as it falls.
            var timed = (previous: 0, new: 0, inconsistent: 0)
            let moments = [20, 60, 150, 300, 1000]  // ms
            for delay in moments {
                try writeFlags(version: live + 1)
                let before = try await store.revision(), runsBefore = try await scriptRuns()
                let p = try startSync()
                try await Task.sleep(for: .milliseconds(delay))  // the moment of the kill is the input here, not a wait
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                let left = try await inspect(previous: live, new: live + 1, before: before, runsBefore: runsBefore)
                if !left.isWhole { mixes += 1 }
                // The revision moved exactly when Redis ran the script.
                if (left.scriptRuns > 0) != (left.revision == before + 1) { timed.inconsistent += 1 }
                if left.revision == before { timed.previous += 1 } else { timed.new += 1 }
                log.append(
                    "\(delay) ms: revision \(left.revision), \(left.previous)/\(left.new)/\(left.neither) flags of previous/new/neither, script runs \(left.scriptRuns)"
                )
                if left.revision == before + 1 { live += 1 }
            }

            // In flight, held: Redis holds the write script (CLIENT PAUSE WRITE) when the kill lands.
            try writeFlags(version: live + 1)
            var before = try await store.revision()
            var runsBefore = try await scriptRuns()
            _ = try await admin.send("CLIENT", "PAUSE", "60000", "WRITE")
            var p = try startSync()
            var held: String?
            try await waitUntil("Redis holds the sync's write script", timeout: .seconds(30)) {
                held = try await heldScript()
                return held != nil
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            try await waitUntil("Redis sees the killed connection go") { try await !connected(held!) }
            _ = try await admin.send("CLIENT", "UNPAUSE")
            let heldLeft = try await inspect(previous: live, new: live + 1, before: before, runsBefore: runsBefore)
            if !heldLeft.isWhole { mixes += 1 }
            let heldThenDropped = heldLeft.revision == before && heldLeft.scriptRuns == 0 && heldLeft.previous == flagCount
            log.append(
                "held: revision \(heldLeft.revision), \(heldLeft.previous)/\(heldLeft.new)/\(heldLeft.neither), script runs \(heldLeft.scriptRuns)")
            if heldLeft.revision == before + 1 { live += 1 }

            // In flight, run: the sync is frozen (SIGSTOP) with its script held, Redis runs the
            // script, and the kill lands before flagctl ever reads the reply.
            try writeFlags(version: live + 1)
            before = try await store.revision()
            runsBefore = try await scriptRuns()
            _ = try await admin.send("CLIENT", "PAUSE", "60000", "WRITE")
            p = try startSync()
            try await waitUntil("Redis holds the sync's write script", timeout: .seconds(30)) { try await heldScript() != nil }
            kill(p.processIdentifier, SIGSTOP)
            _ = try await admin.send("CLIENT", "UNPAUSE")
            try await waitUntil("Redis runs the script of the frozen sync") { try await store.revision() == before + 1 }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let frozenLeft = try await inspect(previous: live, new: live + 1, before: before, runsBefore: runsBefore)
            if !frozenLeft.isWhole { mixes += 1 }
            let ranUnacknowledged =
                frozenLeft.revision == before + 1 && frozenLeft.scriptRuns == 1 && frozenLeft.new == flagCount
                && p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL
            log.append(
                "frozen: revision \(frozenLeft.revision), \(frozenLeft.previous)/\(frozenLeft.new)/\(frozenLeft.neither), script runs \(frozenLeft.scriptRuns)"
            )

            #expect(mixes == 0, "\(log)")
            #expect(timed.inconsistent == 0, "\(log)")
            #expect(heldThenDropped, "\(log)")
            #expect(ranUnacknowledged, "\(log)")
            let kills = moments.count + 2
            FaultTable.record(
                fault:
                    "flagctl sync of 5,000 flags killed with kill -9 (\(kills) kills: \(moments.count) at moments, 2 with its write script in flight)",
                checked:
                    "after each kill every flag's definition is compared with both versions: all of one version, matching revision, content hash and one audit entry a revision; the in-flight kills land while Redis holds the script (CLIENT PAUSE WRITE) or after Redis ran it with flagctl frozen before reading the reply",
                passed: mixes == 0 && timed.inconsistent == 0 && heldThenDropped && ranUnacknowledged,
                figure:
                    "\(mixes) mixes of \(kills); at moments: \(timed.previous) left the previous revision whole, \(timed.new) the new; in flight: held → \(heldThenDropped ? "previous whole, script never ran" : "UNEXPECTED"), run while frozen → \(ranUnacknowledged ? "new whole, never acknowledged" : "UNEXPECTED")"
            )
        }
    }
}
