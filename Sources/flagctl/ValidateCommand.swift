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

            Exit status: 0 valid, 1 invalid (errors, or warnings with --strict), 2 usage error.
            """)

    @Argument(help: "Flags folders, environment folders or files to check (default: the --flags folder).")
    var paths: [String] = []

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(help: "Fail on warnings too.")
    var strict = false

    /// The paths to check: the arguments, or the flags folder.
    var targets: [String] { paths.isEmpty ? [global.flags] : paths }

    func run() throws {
        let report: ValidationReport
        do {
            report = try FlagDirectory.validate(paths: targets)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        print(json ? report.jsonValue(strict: strict).prettyJSONString : report.text(strict: strict))
        if !report.passes(strict: strict) { throw ExitCode(1) }
    }
}
