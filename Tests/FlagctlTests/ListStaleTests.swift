import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

@testable import flagctl

/// `flagctl list --stale` (the binary) against a real Redis with a hand-written evaluation hash.
@Suite("flagctl list --stale", .timeLimit(.minutes(2)))
struct ListStaleTests {
    /// 2027-02-12T10:00:00Z, passed as --as-of.
    static let asOf = "2027-02-12T10:00:00Z"
    static let now: Int64 = CivilTime.parseTimestamp(asOf)!
    static let day: Int64 = 86_400

    static let flags = """
        flags:
          old-checkout:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            metadata: {expires: "2027-01-31", owner: team-payments}
          legacy-banner:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            metadata: {owner: growth}
          new-search:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
          fresh:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            metadata: {owner: web}
          garbled:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
        """

    @Test("lists the expired, the long-unevaluated, the never-evaluated and the unreadable, with owners; exit 0; JSON too")
    func lists() async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-stale-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            try Self.flags.write(to: root.appendingPathComponent("prod/flags.yaml"), atomically: true, encoding: .utf8)
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            let sync = try FlagctlProcess.run(["sync", "--flags", root.path], environment: env)
            #expect(sync.status == 0, "\(sync.stderr)")

            // Before any client reported: everything is "no evaluation recorded", and the note says why.
            let empty = try FlagctlProcess.run(["list", "--stale", "--as-of", Self.asOf], environment: env)
            #expect(empty.status == 0, "\(empty.stderr)")
            #expect(empty.stdout.contains("5 of 5 flag(s) in prod"), "\(empty.stdout)")
            #expect(empty.stdout.contains("no client has recorded an evaluation"), "\(empty.stdout)")

            let layout = try StoreLayout(environment: "prod")
            let admin = RedisClient(configuration: server.configuration)
            _ = try await admin.send(
                "HSET", layout.evaluated, "old-checkout", "\(Self.now - Self.day)", "legacy-banner", "\(Self.now - 41 * Self.day - 60)",
                "fresh", "\(Self.now - 2 * Self.day)", "garbled", "yesterday", "long-gone-flag", "\(Self.now - 400 * Self.day)")

            let table = try FlagctlProcess.run(["list", "--stale", "--as-of", Self.asOf], environment: env)
            #expect(table.status == 0, "\(table.stderr)")
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("FLAG") == true && lines.first?.contains("OWNER") == true, "\(table.stdout)")
            func line(_ flag: String) -> String? { lines.first { $0.hasPrefix(flag + " ") } }
            #expect(line("old-checkout")?.contains("team-payments") == true && line("old-checkout")?.contains("expired 11 days ago") == true)
            #expect(line("legacy-banner")?.contains("growth") == true && line("legacy-banner")?.contains("last evaluated 41 days ago") == true)
            #expect(line("new-search")?.contains("no evaluation recorded") == true)
            #expect(line("new-search")?.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "-", "no owner: -")
            #expect(line("garbled")?.contains("unreadable evaluation time 'yesterday'") == true)
            #expect(line("fresh") == nil && line("long-gone-flag") == nil)
            #expect(table.stdout.contains("4 of 5 flag(s) in prod expired or not evaluated for 30 days, as of 2027-02-12 10:00:00Z"))
            #expect(!table.stdout.contains("no client has recorded"))

            // --days moves the threshold: 1 day lists "fresh" (2 days ago) too.
            let strict = try FlagctlProcess.run(["list", "--stale", "--days", "1", "--as-of", Self.asOf], environment: env)
            #expect(strict.status == 0 && strict.stdout.contains("fresh ") && strict.stdout.contains("last evaluated 2 days ago"), "\(strict.stdout)")

            let json = try FlagctlProcess.run(["list", "--stale", "--json", "--as-of", Self.asOf], environment: env)
            #expect(json.status == 0, "\(json.stderr)")
            let parsed = try JSONParser.parse(json.stdout)
            #expect(parsed["environment"] == "prod" && parsed["days"] == 30 && parsed["asOf"] == .int(Self.now))
            #expect(parsed["liveFlags"] == 5 && parsed["flagsWithEvaluations"] == 4)
            let rows = parsed["flags"]?.arrayValue ?? []
            #expect(rows.compactMap { $0["flag"]?.stringValue } == ["garbled", "legacy-banner", "new-search", "old-checkout"])
            let old = rows.first { $0["flag"] == "old-checkout" }
            #expect(old?["expired"] == true && old?["expiredDaysAgo"] == 11 && old?["owner"] == "team-payments" && old?["expires"] == "2027-01-31")
            #expect(old?["evaluation"] == "recent" && old?["lastEvaluated"] == .int(Self.now - Self.day))
            let banner = rows.first { $0["flag"] == "legacy-banner" }
            #expect(banner?["evaluation"] == "old" && banner?["lastEvaluatedDaysAgo"] == 41 && banner?["expired"] == false)
            #expect(rows.first { $0["flag"] == "new-search" }?["evaluation"] == "none")
            #expect(rows.first { $0["flag"] == "garbled" }?["unreadableValue"] == "yesterday")
        }
    }

    @Test("--days and --as-of are checked, and only go with --stale")
    func usage() throws {
        let command = try #require(try ListCommand.parseAsRoot(["--stale", "--days", "7", "--as-of", "2027-01-31"]) as? ListCommand)
        #expect(command.stale && command.days == 7 && command.now == CivilTime.parseDate("2027-01-31")! * 86_400)
        #expect(throws: (any Error).self) { try ListCommand.parseAsRoot(["--days", "7"]) }
        #expect(throws: (any Error).self) { try ListCommand.parseAsRoot(["--stale", "--days", "0"]) }
        #expect(throws: (any Error).self) { try ListCommand.parseAsRoot(["--stale", "--as-of", "next week"]) }
        let refused = try FlagctlProcess.run(["list", "--stale", "--days", "-3", "--env", "prod"])
        #expect(refused.status != 0 && refused.stderr.contains("--days"), "\(refused.stderr)")
    }
}
