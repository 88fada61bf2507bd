import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import Foundation
import Testing

@testable import flagctl

/// `metadata.expires` and `metadata.owner`: `flagctl validate` warns about a flag past its expiry
/// (failing under --strict) and refuses an expiry that is not a date; "now" is injected.
@Suite("Expiring flags in flagctl validate")
struct FlagExpiryTests {
    static func flag(_ metadata: String) -> String {
        "flags:\n  old-checkout:\n    state: ENABLED\n    variants: {new: true, old: false}\n    defaultVariant: old\n    metadata:\n\(metadata)"
    }

    func withFile<T>(_ text: String, _ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-expiry-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("prod"), withIntermediateDirectories: true)
        try text.write(to: dir.appendingPathComponent("prod/a.yaml"), atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(dir.appendingPathComponent("prod").path)
    }

    /// 2027-02-12T10:00:00Z: eleven days (and ten hours) after 2027-01-31 ended.
    static let now: Int64 = CivilTime.parseTimestamp("2027-02-12T10:00:00Z")!

    @Test("past the date: a warning at the key's line naming the flag, its owner and how many days ago")
    func expired() throws {
        let text = Self.flag("      expires: 2027-01-31\n      owner: \"team-payments\"\n")
        try withFile(text) { (path: String) throws in
            let report = try FlagDirectory.validate(paths: [path], now: Self.now)
            #expect(report.diagnostics.count == 1, "\(report.diagnostics)")
            let d = try #require(report.diagnostics.first)
            #expect(d.severity == .warning)
            #expect(d.line == 7 && d.file.hasSuffix("prod/a.yaml"), "\(d)")
            #expect(d.message == #"flag "old-checkout" expired 11 days ago (expires: 2027-01-31; owner: team-payments)"#, "\(d.message)")
            #expect(report.passes(strict: false) && !report.passes(strict: true))
        }
    }

    @Test("on the day itself, and before, nothing; an RFC 3339 expiry counts from its instant")
    func notYet() throws {
        let lastDay = CivilTime.parseTimestamp("2027-01-31T23:59:59Z")!
        try withFile(Self.flag("      expires: 2027-01-31\n")) { (path: String) throws in
            #expect(try FlagDirectory.validate(paths: [path], now: lastDay).diagnostics.isEmpty)
            let next = try FlagDirectory.validate(paths: [path], now: lastDay + 1).diagnostics
            #expect(next.map(\.message) == [#"flag "old-checkout" expired today (expires: 2027-01-31; owner: none named)"#])
        }
        try withFile(Self.flag("      expires: \"2027-01-31T18:00:00+01:00\"\n")) { (path: String) throws in
            let instant = CivilTime.parseTimestamp("2027-01-31T17:00:00Z")!
            #expect(try FlagDirectory.validate(paths: [path], now: instant - 1).diagnostics.isEmpty)
            #expect(try FlagDirectory.validate(paths: [path], now: instant).diagnostics.count == 1)
        }
    }

    @Test(
        "an expiry that is not a date, or an empty owner, is an error at its line whatever the date",
        arguments: [
            ("      expires: 31.01.2027\n", 7, "metadata expires must be a date or an RFC 3339 time, not \"31.01.2027\""),
            ("      expires: 2027-02-30\n", 7, "metadata expires must be a date or an RFC 3339 time, not \"2027-02-30\""),
            ("      expires: 20270131\n", 7, "metadata expires must be a date or an RFC 3339 time, not 20270131"),
            ("      owner: \"\"\n", 7, "metadata owner must be a team or a person, not \"\""),
        ])
    func invalid(metadata: String, line: Int, message: String) throws {
        try withFile(Self.flag(metadata)) { (path: String) throws in
            for now in [nil, Self.now] {
                let report = try FlagDirectory.validate(paths: [path], now: now)
                let d = try #require(report.diagnostics.first)
                #expect(report.diagnostics.count == 1 && d.severity == .error && d.line == line, "\(report.diagnostics)")
                #expect(d.message == message)
                #expect(d.hint != nil)
            }
        }
    }

    @Test("flagctl validate --as-of checks another day; --strict fails on an expired flag")
    func command() throws {
        try withFile(Self.flag("      expires: 2027-01-31\n      owner: ann\n")) { (path: String) throws in
            func exitCode(_ arguments: [String]) -> Int32 {
                do {
                    var command = try Validate.parseAsRoot(arguments)
                    try command.run()
                    return 0
                } catch let code as ExitCode {
                    return code.rawValue
                } catch {
                    return -1
                }
            }
            #expect(exitCode(["--strict", "--as-of", "2027-01-31", path]) == 0)
            #expect(exitCode(["--as-of", "2027-02-12", path]) == 0)
            #expect(exitCode(["--strict", "--as-of", "2027-02-12", path]) == 1)
            #expect(throws: (any Error).self) { try Validate.parseAsRoot(["--as-of", "next week", path]) }
            let command = try #require(try Validate.parseAsRoot(["--as-of", "2027-02-12", path]) as? Validate)
            #expect(command.now == CivilTime.parseTimestamp("2027-02-12T00:00:00Z"))
        }
    }
}
