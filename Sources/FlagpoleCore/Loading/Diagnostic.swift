/// One problem found in a flag file or the project config, with where it is.
///
/// ``description`` prints `file:line:column: flag-key: message (hint: …)`; a warning reads
/// `file:line:column: flag-key: warning: message`, and the flag-key part is left out when the
/// problem is not inside a flag. ``jsonValue`` is the machine-readable form `flagctl validate --json`
/// prints.
package struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// How bad a problem is.
    package enum Severity: String, Sendable, Hashable, CaseIterable {
        /// flagd would reject the file, or it breaks one of Flagpole's own rules: the flag set
        /// must not be synced.
        case error
        /// flagd loads it, but it is almost certainly not what was meant (it evaluates to a
        /// default, an error code, or something surprising). Fails only under `--strict`.
        case warning
    }

    /// Error or warning.
    package var severity: Severity
    /// The file's path, as the caller gave it.
    package var file: String
    /// The 1-based line.
    package var line: Int
    /// The 1-based column, in Unicode scalars.
    package var column: Int
    /// The flag the problem belongs to, if it is inside one.
    package var flagKey: String?
    /// What is wrong, in one sentence without a trailing period.
    package var message: String
    /// How to fix it, when there is something useful to say.
    package var hint: String?

    /// Creates a diagnostic from its parts.
    package init(
        severity: Severity, file: String, line: Int, column: Int,
        flagKey: String? = nil, message: String, hint: String? = nil
    ) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.flagKey = flagKey
        self.message = message
        self.hint = hint
    }

    /// Creates a diagnostic at a location.
    package init(
        _ severity: Severity, at location: FileLocation, flagKey: String? = nil,
        message: String, hint: String? = nil
    ) {
        self.init(
            severity: severity, file: location.file, line: location.line, column: location.column,
            flagKey: flagKey, message: message, hint: hint)
    }

    /// Where the problem is.
    package var location: FileLocation { FileLocation(file: file, line: line, column: column) }

    /// Whether this is an ``Severity/error``.
    package var isError: Bool { severity == .error }

    /// `file:line:column: flag-key: message (hint: …)`, with `warning: ` before the message of a warning.
    package var description: String {
        var out = "\(file):\(line):\(column): "
        if let flagKey { out += "\(flagKey): " }
        if severity == .warning { out += "warning: " }
        out += message
        if let hint { out += " (hint: \(hint))" }
        return out
    }

    /// `{"severity", "file", "line", "column", "flag"?, "message", "hint"?}`.
    package var jsonValue: JSONValue {
        var o: [String: JSONValue] = [
            "severity": .string(severity.rawValue),
            "file": .string(file),
            "line": .int(Int64(line)),
            "column": .int(Int64(column)),
            "message": .string(message),
        ]
        if let flagKey { o["flag"] = .string(flagKey) }
        if let hint { o["hint"] = .string(hint) }
        return .object(o)
    }

    /// Sorts diagnostics by file, line and column, keeping the order of those at the same place.
    package static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            if a.element.location != b.element.location { return a.element.location < b.element.location }
            return a.offset < b.offset
        }.map(\.element)
    }
}
