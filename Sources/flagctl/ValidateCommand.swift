import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import Foundation

/// `flagctl validate [PATH…]`: checks flag files and the project config offline (no Redis).
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check flag files and the project config, offline.",
        discussion: """
            Each PATH may be the flags folder (every environment and the project config), one \
            environment folder (its files merged into one flag set), or single files (each checked \
            on its own). Without PATH, the --flags folder is checked (default: ./flags).

            Every problem prints as file:line:column: flag-key: message, warnings marked \
            "warning:", then a summary line. Errors are what flagd would refuse to load (and \
            Flagpole's own rules, such as a flag defined twice in one environment); warnings are \
            what flagd loads but evaluates to a default or an error code.

            Flags whose metadata.expires (a date, or an RFC 3339 time) has passed are warnings
            naming the flag, its metadata.owner and how many days ago it expired, so --strict in
            CI fails until the flag is removed or its expiry moved; an expires that is not a date
            is an error. --as-of DATE checks expiry as of another day (e.g. next month's).

            Exit status: 0 valid, 1 invalid (errors, or warnings with --strict), 2 usage error.
            """)

    @Argument(help: "Flags folders, environment folders or files to check (default: the --flags folder).")
    var paths: [String] = []

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(help: "Fail on warnings too (expired flags included).")
    var strict = false

    @Option(help: ArgumentHelp("Check flag expiry as of this date or RFC 3339 time (default: now).", valueName: "date"))
    var asOf: String?

    func validate() throws {
        if let asOf, FlagLifecycle.parseExpiry(asOf) == nil {
            throw ValidationError("--as-of '\(asOf)' is not a date or an RFC 3339 time; write e.g. 2027-01-31 or 2027-01-31T09:00:00Z")
        }
    }

    /// The time expiries are checked against: the start of the `--as-of` day (UTC) or its instant, else now.
    var now: Int64 {
        guard let asOf else { return Int64(Date().timeIntervalSince1970) }
        if let day = CivilTime.parseDate(asOf) { return day * 86_400 }
        return CivilTime.parseTimestamp(asOf) ?? Int64(Date().timeIntervalSince1970)
    }

    /// The paths to check: the arguments, or the flags folder.
    var targets: [String] { paths.isEmpty ? [global.flags] : paths }

    func run() throws {
        let report: ValidationReport
        do {
            report = try FlagDirectory.validate(paths: targets, now: now)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        print(json ? report.jsonValue(strict: strict).prettyJSONString : report.text(strict: strict))
        if !report.passes(strict: strict) { throw ExitCode(1) }
    }
}
