import FlagpoleRollout
import Foundation
import Testing

@testable import FlagpoleCore

/// Paths and helpers shared by the loading and validation tests.
enum LoadingTestSupport {
    /// The package root, found from this file's path.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The flagd testbed copy next to the repository (`../shared/flagd-testbed`), or the
    /// `FLAGD_TESTBED` environment variable.
    static let testbed: URL = {
        if let path = ProcessInfo.processInfo.environment["FLAGD_TESTBED"] { return URL(fileURLWithPath: path) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/flagd-testbed")
    }()

    static var hasTestbed: Bool { FileManager.default.fileExists(atPath: testbed.path) }

    static func read(_ url: URL) throws -> String {
        try String(contentsOf: url, encoding: .utf8)
    }

    /// Loads one file of inline text as a flag set, as `flagctl validate` does (with the guard-policy rules).
    static func load(_ text: String, path: String = "flags/test/a.yaml", algorithm: FractionalAlgorithm = .v3) -> FlagSetLoad {
        FlagSetLoader.load(path: path, text: text, options: .checkingGuardPolicy(fractionalAlgorithm: algorithm))
    }

    /// `file:line:column: flag: …` prefixes of a load's diagnostics, for compact expectations.
    static func places(_ diagnostics: [Diagnostic]) -> [String] {
        diagnostics.map { d in
            "\(d.severity == .error ? "E" : "W") \(d.line):\(d.column) \(d.flagKey ?? "-")"
        }
    }
}
