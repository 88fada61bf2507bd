import FlagpoleControl
import FlagpoleCore
import Foundation
import Testing

@testable import FlagpoleRollout

/// Freeze windows in IANA time zones, read from the system's tz database (Debian's tzdata), and in
/// fixed offsets: the rules of a zone, windows that cross midnight and daylight-saving changes
/// in both directions, and the errors for zones that do not exist.
@Suite("Freeze windows in time zones")
struct FreezeWindowZoneTests {
    /// Unix seconds of an RFC 3339 timestamp.
    static func t(_ text: String) -> Int64 { CivilTime.parseTimestamp(text)! }

    /// A zone from the system's tz database; fails the test, naming what is missing, without one.
    static func zone(_ name: String) throws -> ZoneRules {
        switch SystemZoneDatabase.rules(forZone: name) {
        case .success(let rules): return rules
        case .failure(let failure):
            Issue.record("the tz database is needed (install tzdata: scripts/install-deps.sh): \(name): \(failure.message)")
            throw failure
        }
    }

    static func window(_ from: String, _ to: String, zone: String) -> FreezeWindow {
        let text = "freezeWindows:\n  - {name: w, from: \"\(from)\", to: \"\(to)\", timezone: \"\(zone)\"}\n"
        let load = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: text, zones: SystemZoneDatabase.resolver())
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics)")
        return load.config.freezeWindows[0]
    }

    @Test("the offsets of Europe/Berlin and America/New_York change at the right instants, both ways")
    func transitions() throws {
        let berlin = try Self.zone("Europe/Berlin")
        #expect(berlin.offset(at: Self.t("2026-03-29T00:59:59Z")) == 3_600)
        #expect(berlin.offset(at: Self.t("2026-03-29T01:00:00Z")) == 7_200)
        #expect(berlin.offset(at: Self.t("2026-10-25T00:59:59Z")) == 7_200)
        #expect(berlin.offset(at: Self.t("2026-10-25T01:00:00Z")) == 3_600)
        #expect(berlin.localText(Self.t("2026-10-25T00:30:00Z")) == "Sun 2026-10-25 02:30 CEST")
        #expect(berlin.localText(Self.t("2026-10-25T01:30:00Z")) == "Sun 2026-10-25 02:30 CET")
        let newYork = try Self.zone("America/New_York")
        #expect(newYork.offset(at: Self.t("2026-03-08T06:59:59Z")) == -18_000)
        #expect(newYork.offset(at: Self.t("2026-03-08T07:00:00Z")) == -14_400)
        #expect(newYork.offset(at: Self.t("2026-11-01T05:59:59Z")) == -14_400)
        #expect(newYork.offset(at: Self.t("2026-11-01T06:00:00Z")) == -18_000)
        // Far past the file's table: the footer rule (second Sunday of March, first of November).
        #expect(newYork.offset(at: Self.t("2071-03-08T06:59:59Z")) == -18_000)
        #expect(newYork.offset(at: Self.t("2071-03-08T07:00:00Z")) == -14_400)
        #expect(newYork.offset(at: Self.t("2071-11-01T06:00:00Z")) == -18_000)
    }

    @Test(
        "the footer rule agrees with every transition the file lists under today's rules (from 2008)",
        arguments: ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
    func footerRule(name: String) throws {
        let zone = try Self.zone(name)
        let rule = try #require(zone.rule, "\(name) has no footer rule")
        let listed = zone.transitions.filter { $0.at >= Self.t("2008-01-01T00:00:00Z") }
        #expect(listed.count > 30, "\(name) lists \(listed.count) transitions since 2008")
        for transition in listed {
            #expect(rule.type(at: transition.at) == transition.type, "\(name) at \(transition.at)")
            #expect(rule.type(at: transition.at - 1) != transition.type, "\(name) just before \(transition.at)")
        }
    }

    @Test("a daily window that crosses midnight, in Berlin's winter and summer")
    func crossesMidnight() {
        let nights = Self.window("22:00", "06:00", zone: "Europe/Berlin")
        #expect(!nights.contains(unixTime: Self.t("2026-01-15T20:59:59Z")))
        #expect(nights.contains(unixTime: Self.t("2026-01-15T21:00:00Z")))  // 22:00 CET
        #expect(nights.contains(unixTime: Self.t("2026-01-16T04:59:59Z")))
        #expect(!nights.contains(unixTime: Self.t("2026-01-16T05:00:00Z")))  // 06:00 CET
        #expect(nights.contains(unixTime: Self.t("2026-07-15T20:00:00Z")))  // 22:00 CEST
        #expect(!nights.contains(unixTime: Self.t("2026-07-16T04:00:00Z")))  // 06:00 CEST
    }

    @Test("a window across the spring-forward night is in local time: 01:00-05:00 lasts three hours")
    func springForward() throws {
        let w = Self.window("01:00", "05:00", zone: "Europe/Berlin")
        let o = w.occurrence(endingAfter: Self.t("2026-03-28T23:00:00Z"))
        #expect(o?.start == Self.t("2026-03-29T00:00:00Z"))  // 01:00 CET
        #expect(o?.end == Self.t("2026-03-29T03:00:00Z"))  // 05:00 CEST
        let ny = Self.window("01:00", "05:00", zone: "America/New_York")
        let night = try #require(ny.occurrence(endingAfter: Self.t("2026-03-08T05:00:00Z")))
        #expect(night.start == Self.t("2026-03-08T06:00:00Z") && night.end == Self.t("2026-03-08T09:00:00Z"))  // 01:00 EST to 05:00 EDT
    }

    @Test("a window across the fall-back night lasts five hours for 01:00-05:00")
    func fallBack() {
        let w = Self.window("01:00", "05:00", zone: "Europe/Berlin")
        let o = w.occurrence(endingAfter: Self.t("2026-10-24T22:00:00Z"))
        #expect(o?.start == Self.t("2026-10-24T23:00:00Z"))  // 01:00 CEST
        #expect(o?.end == Self.t("2026-10-25T04:00:00Z"))  // 05:00 CET
        let ny = Self.window("sat 22:00", "sun 03:00", zone: "America/New_York")
        let n = ny.occurrence(endingAfter: Self.t("2026-10-31T12:00:00Z"))
        #expect(n?.start == Self.t("2026-11-01T02:00:00Z"))  // Sat 22:00 EDT
        #expect(n?.end == Self.t("2026-11-01T08:00:00Z"))  // Sun 03:00 EST: six hours
    }

    @Test("a start that does not exist is the jump; an ambiguous start is the earlier, an ambiguous end the later")
    func skippedAndRepeated() {
        let w = Self.window("02:30", "04:00", zone: "Europe/Berlin")
        // 02:30 does not exist on 2026-03-29: the window starts when clocks jump (01:00Z = 03:00 CEST).
        let spring = w.occurrence(endingAfter: Self.t("2026-03-28T23:00:00Z"))
        #expect(spring?.start == Self.t("2026-03-29T01:00:00Z") && spring?.end == Self.t("2026-03-29T02:00:00Z"))
        // 02:30 happens twice on 2026-10-25: from the first (00:30Z CEST), without a hole in the repeated hour.
        let autumn = w.occurrence(endingAfter: Self.t("2026-10-24T23:00:00Z"))
        #expect(autumn?.start == Self.t("2026-10-25T00:30:00Z") && autumn?.end == Self.t("2026-10-25T03:00:00Z"))
        #expect(w.contains(unixTime: Self.t("2026-10-25T01:15:00Z")))  // 02:15 CET, the second pass
        let ambiguousEnd = Self.window("01:00", "02:30", zone: "Europe/Berlin")
        #expect(ambiguousEnd.occurrence(endingAfter: Self.t("2026-10-24T22:00:00Z"))?.end == Self.t("2026-10-25T01:30:00Z"))
        // Wholly inside the skipped hour: no window that night; the next is the night after.
        let gap = Self.window("02:10", "02:50", zone: "Europe/Berlin")
        let next = gap.occurrence(endingAfter: Self.t("2026-03-28T23:00:00Z"))
        #expect(next?.start == Self.t("2026-03-30T00:10:00Z"))
    }

    @Test("fixed offsets still work, weekly and daily")
    func fixedOffsets() {
        let weekend = Self.window("fri 16:00", "mon 08:00", zone: "+01:00")
        #expect(weekend.schedule == .weekly(start: 4 * 1_440 + 960, end: 480, zone: .fixed(3_600)))
        #expect(weekend.contains(unixTime: Self.t("2026-07-03T15:00:00Z")))  // Fri 16:00+01:00, no DST
        #expect(!weekend.contains(unixTime: Self.t("2026-07-03T14:59:59Z")))
        #expect(!weekend.contains(unixTime: Self.t("2026-07-06T07:00:00Z")))
        let utc = Self.window("22:00", "06:00", zone: "UTC")
        #expect(utc.contains(unixTime: Self.t("2026-07-03T22:00:00Z")) && !utc.contains(unixTime: Self.t("2026-07-04T06:00:00Z")))
    }

    @Test("the freeze in force chains windows that touch, and says until when in the window's zone")
    func freezeHold() {
        let text = """
            freezeWindows:
              - {name: friday, from: "fri 16:00", to: "sat 00:00", timezone: Europe/Berlin, environments: [prod]}
              - {name: weekend, from: "sat 00:00", to: "mon 08:00", timezone: Europe/Berlin, reason: nobody watches}
            """
        let config = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: text, zones: SystemZoneDatabase.resolver()).config
        let friday = Self.t("2026-03-27T16:00:00Z")  // 17:00 CET
        let hold = config.freeze(environment: "prod", unixTime: friday)
        #expect(hold?.windows == ["friday"])
        #expect(hold?.until == Self.t("2026-03-30T06:00:00Z"))  // Monday 08:00 CEST: DST began on Sunday
        #expect(hold?.description == "frozen until Mon 2026-03-30 08:00 CEST (weekend: nobody watches)")
        #expect(config.freeze(environment: "test", unixTime: friday) == nil)
        #expect(config.freeze(environment: "prod", unixTime: Self.t("2026-03-30T06:00:00Z")) == nil)
    }

    @Test("an unknown zone is an error at its line with a suggestion; validate reports it")
    func unknownZone() throws {
        let load = ProjectConfigLoader.load(
            path: "flags/flagpole.yaml", text: "freezeWindows:\n  - name: w\n    from: \"22:00\"\n    to: \"06:00\"\n    timezone: Europe/Berln\n",
            zones: SystemZoneDatabase.resolver())
        #expect(load.config.freezeWindows.isEmpty)
        let d = try #require(load.diagnostics.first)
        #expect(load.diagnostics.count == 1)
        #expect(d.severity == .error && "\(d.file):\(d.line):\(d.column)" == "flags/flagpole.yaml:5:15", "\(d)")
        #expect(d.message.contains("\"Europe/Berln\": is not a zone of the tz database"), "\(d.message)")
        #expect(d.hint == "did you mean Europe/Berlin?")

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("freeze-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
        try "freezeWindows:\n  - {name: w, from: \"22:00\", to: \"06:00\", timezone: America/Nowhere}\n".write(
            to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
        let report = try FlagDirectory.validate(paths: [root.path])
        let error = try #require(report.diagnostics.first { $0.severity == .error })
        #expect(error.line == 2 && error.message.contains("America/Nowhere"), "\(error)")
    }

    @Test("a missing tz database is named, with how to install it")
    func missingDatabase() {
        guard case .failure(let failure) = SystemZoneDatabase.rules(forZone: "Europe/Berlin", directory: "/nonexistent/zoneinfo") else {
            Issue.record("a missing folder resolved")
            return
        }
        #expect(failure.message.contains("/nonexistent/zoneinfo") && failure.hint?.contains("tzdata") == true)
    }

    @Test("TZif bytes that are not a zone throw, whatever they are")
    func badTZif() throws {
        let berlin = try #require(FileManager.default.contents(atPath: SystemZoneDatabase.directory + "/Europe/Berlin"))
        let bytes = Array(berlin)
        for cut in [0, 4, 20, 44, 100, bytes.count / 2, bytes.count - 2] {
            #expect(throws: ZoneRules.FormatError.self) { try ZoneRules.parseTZif(Array(bytes[..<cut]), name: "x") }
        }
        var notTZif = bytes
        notTZif[0] = UInt8(ascii: "X")
        #expect(throws: ZoneRules.FormatError.self) { try ZoneRules.parseTZif(notTZif, name: "x") }
        #expect(throws: ZoneRules.FormatError.self) { try ZoneRules.parseTZif(Array("TZif2".utf8) + Array(repeating: 0xFF, count: 60), name: "x") }
        #expect(throws: ZoneRules.FormatError.self) { try PosixRule.parse("CET-1CEST,M13.5.0,M10.5.0/3") }
        #expect(throws: ZoneRules.FormatError.self) { try PosixRule.parse("CE-1") }
        #expect(try PosixRule.parse("<+0330>-3:30").standard.offset == 12_600)
    }
}
