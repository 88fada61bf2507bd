/// The outcome of validating flag files and the project config: every diagnostic, what was
/// checked, and whether it passes.
package struct ValidationReport: Sendable {
    /// Every problem found, in the order the checked scopes were added (each scope sorted by place).
    package var diagnostics: [Diagnostic]
    /// The environments checked, by name, in the order added.
    package var environments: [String]
    /// How many files were read (flag files and the project config).
    package var fileCount: Int
    /// How many flags were found.
    package var flagCount: Int

    /// Creates an empty report.
    package init() {
        diagnostics = []
        environments = []
        fileCount = 0
        flagCount = 0
    }

    /// Adds one loaded flag set (an environment when `environment` is given, else loose files).
    package mutating func add(_ load: FlagSetLoad, environment: String? = nil) {
        diagnostics += load.diagnostics
        if let environment { environments.append(environment) }
        fileCount += load.files.count
        flagCount += load.flags.count
    }

    /// Adds diagnostics found outside any file's content (a missing folder, say).
    package mutating func add(_ extra: [Diagnostic]) {
        diagnostics += extra
    }

    /// How many diagnostics are errors.
    package var errorCount: Int { diagnostics.count { $0.severity == .error } }
    /// How many diagnostics are warnings.
    package var warningCount: Int { diagnostics.count { $0.severity == .warning } }

    /// Whether the files pass: no errors, and with `strict` no warnings either.
    package func passes(strict: Bool) -> Bool {
        errorCount == 0 && (!strict || warningCount == 0)
    }

    /// One line: `valid: 2 environments (prod, test), 7 files, 12 flags; 0 errors, 1 warning`.
    package func summary(strict: Bool) -> String {
        func count(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        var what: [String] = []
        if !environments.isEmpty {
            what.append(count(environments.count, "environment") + " (" + environments.joined(separator: ", ") + ")")
        }
        what.append(count(fileCount, "file"))
        what.append(count(flagCount, "flag"))
        let verdict = passes(strict: strict) ? "valid" : (errorCount == 0 ? "invalid (--strict: warnings fail)" : "invalid")
        return "\(verdict): \(what.joined(separator: ", ")); \(count(errorCount, "error")), \(count(warningCount, "warning"))"
    }

    /// Every diagnostic on its own line, then the summary.
    package func text(strict: Bool) -> String {
        (diagnostics.map(\.description) + [summary(strict: strict)]).joined(separator: "\n")
    }

    /// `{"valid", "strict", "errors", "warnings", "files", "flags", "environments", "diagnostics": [...]}`.
    package func jsonValue(strict: Bool) -> JSONValue {
        .object([
            "valid": .bool(passes(strict: strict)),
            "strict": .bool(strict),
            "errors": .int(Int64(errorCount)),
            "warnings": .int(Int64(warningCount)),
            "files": .int(Int64(fileCount)),
            "flags": .int(Int64(flagCount)),
            "environments": .array(environments.map { .string($0) }),
            "diagnostics": .array(diagnostics.map(\.jsonValue)),
        ])
    }
}
