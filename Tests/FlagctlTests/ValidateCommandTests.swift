import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import Foundation
import Testing

@testable import flagctl

@Suite("flagctl validate")
struct ValidateCommandTests {
    /// A temporary folder with the given files (relative path → text), removed after `body`.
    func withFiles<T>(_ files: [String: String], _ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-validate-\(UUID().uuidString.prefix(8))")
        for (path, text) in files {
            let url = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(dir.path)
    }

    static let flag = "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1, b: 2}\n    defaultVariant: a\n"
    static let config = "environments:\n  prod: {}\n  test: {}\n"

    @Test("parses paths, --flags, --json and --strict")
    func parse() throws {
        let plain = try #require(try Validate.parseAsRoot([]) as? Validate)
        #expect(plain.targets == ["./flags"])
        #expect(!plain.json && !plain.strict)
        let options = try #require(try Validate.parseAsRoot(["--flags", "/tmp/f", "--json", "--strict"]) as? Validate)
        #expect(options.targets == ["/tmp/f"])
        #expect(options.json && options.strict)
        let paths = try #require(try Validate.parseAsRoot(["flags/prod", "x.yaml"]) as? Validate)
        #expect(paths.targets == ["flags/prod", "x.yaml"])
        #expect(throws: (any Error).self) { try Validate.parseAsRoot(["--bogus"]) }
    }

    @Test("is named validate")
    func name() {
        #expect(Validate.configuration.commandName == "validate")
    }

    @Test("a flags folder: the config, every environment, and whether they match")
    func root() throws {
        try withFiles([
            "flags/flagpole.yaml": "environments:\n  prod: {}\n  staging: {}\n",
            "flags/prod/a.yaml": Self.flag,
            "flags/prod/nested/b.json": #"{"flags": {"g": {"state": "ENABLED", "variants": {"x": true}}}}"#,
            "flags/test/a.yaml": Self.flag,
            "flags/stray.yaml": Self.flag,
            "flags/README.md": "not a flag file",
        ]) { dir in
            let report = try FlagDirectory.validate(paths: [dir + "/flags"])
            #expect(report.environments == ["prod", "test"])
            #expect(report.fileCount == 4)
            #expect(report.flagCount == 3)
            #expect(report.errorCount == 0)
            #expect(
                report.diagnostics.map(\.description) == [
                    "\(dir)/flags/flagpole.yaml:1:1: warning: the folder \(dir)/flags/test/ is not listed under environments (hint: add test to environments, or move the folder out of \(dir)/flags/)",
                    "\(dir)/flags/flagpole.yaml:3:3: warning: environment \"staging\" has no folder \(dir)/flags/staging/ (hint: create the folder, or remove the environment)",
                    "\(dir)/flags/stray.yaml:1:1: warning: this file is not inside an environment folder and is ignored (hint: move it to \(dir)/flags/<environment>/)",
                ])
            #expect(report.passes(strict: false))
            #expect(!report.passes(strict: true))
            #expect(report.summary(strict: false) == "valid: 2 environments (prod, test), 4 files, 3 flags; 0 errors, 3 warnings")
            #expect(report.summary(strict: true).hasPrefix("invalid (--strict: warnings fail)"))
        }
    }

    @Test("an environment folder merges its files; a flag in two files is an error naming both")
    func environment() throws {
        try withFiles(["prod/a.yaml": Self.flag, "prod/b.yaml": Self.flag]) { dir in
            let report = try FlagDirectory.validate(paths: [dir + "/prod"])
            #expect(report.environments == ["prod"])
            #expect(
                report.diagnostics.map(\.description) == [
                    "\(dir)/prod/b.yaml:2:3: f: flag \"f\" is defined twice in this environment: here and at \(dir)/prod/a.yaml:2:3 (hint: a flag key may appear once per environment; remove or rename one of them)"
                ])
            #expect(!report.passes(strict: false))
        }
    }

    @Test("single files are checked on their own; a config file is checked as the config")
    func files() throws {
        try withFiles(["a.yaml": Self.flag, "b.json": "{\"flags\": 1}", "flagpole.yaml": "fractionalAlgorithm: v9\n"]) { dir in
            let report = try FlagDirectory.validate(paths: [dir + "/a.yaml", dir + "/b.json", dir + "/flagpole.yaml"])
            #expect(
                report.diagnostics.map(\.brief) == [
                    "E 1:11 -: flags must be an object keyed by flag key, not number",
                    #"E 1:22 -: fractionalAlgorithm must be "v3" or "v2", not "v9""#,
                ])
            #expect(report.fileCount == 3)
            #expect(report.environments.isEmpty)
        }
    }

    @Test("a missing path throws; an unreadable file is a diagnostic")
    func missing() throws {
        #expect(throws: FlagDirectoryError.self) { try FlagDirectory.validate(paths: ["/nonexistent/flags"]) }
        try withFiles(["env/bad.yaml": "x"]) { dir in
            try Data([0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: dir + "/env/bad.yaml"))
            let report = try FlagDirectory.validate(paths: [dir + "/env"])
            #expect(report.diagnostics.map(\.message) == ["the file is not UTF-8 text"])
        }
    }

    @Test("the JSON report")
    func json() throws {
        try withFiles(["env/a.yaml": "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    defaultVariant: b\n"]) { dir in
            let report = try FlagDirectory.validate(paths: [dir + "/env"])
            let json = report.jsonValue(strict: false)
            #expect(json["valid"] == false)
            #expect(json["errors"] == 1)
            #expect(json["environments"] == ["env"])
            #expect(json["diagnostics"]?.arrayValue?.first?["line"] == 5)
            #expect(json["diagnostics"]?.arrayValue?.first?["flag"] == "f")
        }
    }

    @Test("run: exit 0 when valid, 1 when invalid or strict with warnings, 2 for a missing path")
    func exitCodes() throws {
        try withFiles([
            "ok/a.yaml": Self.flag,
            "warn/a.yaml": Self.flag + "    metadata: {rollout.watchh: 1h}\n",
            "bad/a.yaml": "flags:\n  f:\n    state: ON\n    variants: {a: 1}\n",
        ]) { dir in
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
            #expect(exitCode([dir + "/ok"]) == 0)
            #expect(exitCode([dir + "/warn"]) == 0)
            #expect(exitCode(["--strict", dir + "/warn"]) == 1)
            #expect(exitCode([dir + "/bad"]) == 1)
            #expect(exitCode(["--json", dir + "/bad"]) == 1)
            #expect(exitCode(["--flags", dir + "/nothing-here"]) == 2)
        }
    }

    @Test("the repository's flags/ folder validates clean, even with --strict")
    func repositoryFlags() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let report = try FlagDirectory.validate(paths: [root.appendingPathComponent("flags").path])
        #expect(report.diagnostics.isEmpty, "\(report.diagnostics.map(\.description))")
        #expect(report.environments == ["prod", "test"])
        #expect(report.passes(strict: true))
    }
}

extension Diagnostic {
    /// `E 3:5 flag: message`, the compact form the tests compare.
    fileprivate var brief: String { "\(severity == .error ? "E" : "W") \(line):\(column) \(flagKey ?? "-"): \(message)" }
}
