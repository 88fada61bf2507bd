import ArgumentParser
import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Testing

@testable import flagctl

@Suite("flagctl doctor", .timeLimit(.minutes(2)))
struct DoctorCommandTests {
    /// A flag folder with two environment folders, removed when the test ends.
    func withFlagFolder<T>(_ body: (String) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-doctor-\(UUID().uuidString.prefix(8))")
        for env in ["prod", "test"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(env), withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        return try await body(dir.path)
    }

    @Test("parses the shared options")
    func parse() throws {
        let command = try Flagctl.parseAsRoot(["doctor", "--redis", "redis://h:1", "--flags", "/tmp/f", "--json"]) as! DoctorCommand
        #expect(command.global.redis == "redis://h:1")
        #expect(command.global.flags == "/tmp/f")
        #expect(command.json)
        #expect(throws: (any Error).self) { try Flagctl.parseAsRoot(["doctor", "--bogus"]) }
    }

    @Test("reports a healthy Redis and the flag folder, and exits 0")
    func healthy() async throws {
        try await RedisServer.withServer { server in
            try await withFlagFolder { flags in
                let r = try FlagctlProcess.run(["doctor", "--flags", flags], environment: ["FLAGPOLE_REDIS_URL": server.url])
                #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
                #expect(r.stdout.contains("127.0.0.1:\(server.port), Redis 7."))
                #expect(r.stdout.contains("round trip"))
                #expect(r.stdout.contains("hiredis 0.14"))
                #expect(r.stdout.contains("environments: prod, test"))
                #expect(r.stdout.contains("All checks passed."))
            }
        }
    }

    @Test("with --env: a never-synced environment is a failed check naming it and the Redis; a synced one is fine")
    func environment() async throws {
        try await RedisServer.withServer { server in
            try await withFlagFolder { flags in
                let never = try FlagctlProcess.run(["doctor", "--flags", flags, "--env", "nosuchenv", "--redis", server.url])
                #expect(never.status == 1, "\(never.stdout)")
                #expect(never.stdout.contains("environment 'nosuchenv' was never synced into 127.0.0.1:\(server.port)"), "\(never.stdout)")
                try "flags:\n  a:\n    state: ENABLED\n    variants: {x: 1}\n    defaultVariant: x\n"
                    .write(toFile: flags + "/test/a.yaml", atomically: true, encoding: .utf8)
                #expect(try FlagctlProcess.run(["sync", "--env", "test", "--flags", flags, "--redis", server.url]).status == 0)
                let synced = try FlagctlProcess.run(["doctor", "--flags", flags, "--env", "test", "--redis", server.url])
                #expect(synced.status == 0 && synced.stdout.contains("'test' at revision 1, 1 flag"), "\(synced.stdout)")
                // Without --env (FLAGPOLE_ENV alone) the environment is not checked: ./run runs doctor before its first sync.
                let unset = try FlagctlProcess.run(["doctor", "--flags", flags, "--redis", server.url], environment: ["FLAGPOLE_ENV": "nosuchenv"])
                #expect(unset.status == 0, "\(unset.stdout)")
            }
        }
    }

    @Test("reports a stopped Redis by address within 5 seconds, and exits 1")
    func stopped() async throws {
        let server = try await RedisServer.start()
        let url = server.url
        server.remove()
        let r = try FlagctlProcess.run(["doctor", "--redis", url])
        #expect(r.status == 1)
        #expect(r.stdout.contains("cannot reach 127.0.0.1:\(server.port)"))
        #expect(r.stdout.contains("refused"))
        #expect(r.elapsed < .seconds(5))
    }

    @Test("a read-only ACL user is told which commands it may not run")
    func restrictedUser() async throws {
        try await RedisServer.withServer { server in
            let admin = RedisClient(configuration: server.configuration)
            _ = try await admin.send(
                "ACL", "SETUSER", "reader", "on", ">pw", "~flagpole:*", "&flagpole:*", "+get", "+hgetall", "+xrevrange",
                "+subscribe", "+ping", "+info", "+acl|whoami", "+acl|dryrun")
            let r = try await withFlagFolder { flags in
                try FlagctlProcess.run(["doctor", "--redis", "redis://reader:pw@127.0.0.1:\(server.port)", "--flags", flags])
            }
            #expect(r.status == 0, "\(r.stdout)")
            #expect(r.stdout.contains("authenticated as 'reader'"))
            #expect(r.stdout.contains("may run GET (read)"))
            #expect(r.stdout.contains("not EVALSHA (write)"))
            #expect(!r.stdout.contains("pw@"))
        }
    }

    @Test("a missing flag folder fails the check")
    func missingFlags() async throws {
        try await RedisServer.withServer { server in
            let r = try FlagctlProcess.run(["doctor", "--redis", server.url, "--flags", "/nonexistent/flags"])
            #expect(r.status == 1)
            #expect(r.stdout.contains("no flag folder at /nonexistent/flags"))
        }
    }

    @Test("--json prints a machine-readable report")
    func json() async throws {
        try await RedisServer.withServer { server in
            let r = try await withFlagFolder { flags in
                try FlagctlProcess.run(["doctor", "--json", "--redis", server.url, "--flags", flags])
            }
            #expect(r.status == 0)
            let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let checks = report?["checks"] as? [[String: Any]]
            #expect(checks?.contains { $0["name"] as? String == "redis" && $0["status"] as? String == "ok" } == true)
        }
    }

    @Test("history's FLAGS column names up to three flags, then says how many more")
    func historyFlagsCell() {
        #expect(HistoryCommand.flagsCell([]) == "-")
        #expect(HistoryCommand.flagsCell(["a", "b", "c"]) == "a,b,c")
        #expect(HistoryCommand.flagsCell(["a", "b", "c", "d", "e"]) == "a,b +3 more")
    }
}
