import FlagpoleCore
import Foundation
import Testing

@testable import flagctl

/// `flagctl freeze status`, the binary: the windows, which apply now, and when each starts and
/// ends next, in its zone and in UTC; bad input is a clear error.
@Suite("flagctl freeze status (the binary)")
struct FreezeCommandTests {
    static let config = """
        freezeWindows:
          - name: weekend
            from: "fri 16:00"
            to: "mon 08:00"
            timezone: Europe/Berlin
            environments: [prod]
            reason: nobody watches
          - name: nights
            from: "22:00"
            to: "06:00"
            timezone: America/New_York
            environments: [test]
        """

    func withFlags<T>(_ config: String, _ body: (URL) throws -> T) throws -> T {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-freeze-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
        try config.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: root) }
        return try body(root)
    }

    @Test("frozen: until when in the window's zone, the current occurrence and the next, in local time and UTC")
    func frozen() throws {
        try withFlags(Self.config) { root in
            let r = try FlagctlProcess.run(["freeze", "status", "--env", "prod", "--at", "2026-03-27T16:00:00Z", "--flags", root.path])
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "prod is FROZEN at Fri 2026-03-27 16:00 UTC: frozen until Mon 2026-03-30 08:00 CEST (weekend: nobody watches).")
            #expect(
                lines.contains("  IN FORCE since Fri 2026-03-27 16:00 CET (15:00 UTC), until Mon 2026-03-30 08:00 CEST (06:00 UTC)"), "\(r.stdout)")
            #expect(lines.contains("  then: Fri 2026-04-03 16:00 CEST (14:00 UTC) to Mon 2026-04-06 08:00 CEST (06:00 UTC)"), "\(r.stdout)")
            #expect(!r.stdout.contains("nights"), "a window of another environment is not shown with --env prod")
        }
    }

    @Test("not frozen, as JSON: every window with its next occurrence")
    func json() throws {
        try withFlags(Self.config) { root in
            let r = try FlagctlProcess.run(["freeze", "status", "--json", "--at", "2026-11-01T12:00:00Z", "--flags", root.path])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try JSONParser.parse(r.stdout)
            #expect(doc["frozen"] == .null && doc["environment"] == .null)
            let nights = try #require(doc["windows"]?.arrayValue?.first { $0["name"] == "nights" })
            #expect(nights["active"] == false && nights["current"] == .null)
            // The first night after the clocks went back in New York: 22:00 EST is 03:00 UTC.
            #expect(nights["next"]?["startLocal"] == "Sun 2026-11-01 22:00 EST")
            #expect(nights["next"]?["startUTC"] == "Mon 2026-11-02 03:00 UTC")
            #expect(nights["timezone"] == "America/New_York")
        }
    }

    @Test("an unknown zone, or a bad --at, is a clear error")
    func errors() throws {
        try withFlags("freezeWindows:\n  - {name: w, from: \"22:00\", to: \"06:00\", timezone: Europe/Berln}\n") { root in
            let r = try FlagctlProcess.run(["freeze", "status", "--flags", root.path])
            #expect(r.status == 1)
            #expect(r.stderr.contains("flagpole.yaml:2:") && r.stderr.contains("Europe/Berln"), "\(r.stderr)")
            let bad = try FlagctlProcess.run(["freeze", "status", "--at", "friday", "--flags", root.path])
            #expect(bad.status == 2 && bad.stderr.contains("--at 'friday' is not an RFC 3339 time"), "\(bad.stderr)")
        }
    }
}
