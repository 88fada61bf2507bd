import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Foundation

/// `flagctl report --env prod --since 7d`: the sign-off sheet, from the audit.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The sign-off sheet of an environment: every change since a time, from the audit stream.",
        discussion: """
            Every change in the window with who made it, why, and before → after; every rollout with the verdicts acted on and their evidence; automatic reverts; and rollout starts forced through a freeze window or the promotion gate, highlighted. The watcher's sampled holds are counted per rollout, not listed.

            --format md (the default) is a Markdown sheet for a release manager to read and sign; --format json is stable (fields are only added; see docs/cli.md).

            --since takes a duration back from now (7d, 24h, 30m) or an RFC 3339 date (2026-01-31, midnight UTC) or date-time (2026-01-31T09:00:00Z, 2026-01-31T10:00:00+01:00).
            """)
    enum Format: String, ExpressibleByArgument, CaseIterable { case md, json }

    @OptionGroup var global: GlobalOptions
    @Option(help: ArgumentHelp("Where the window starts: a duration back from now or an RFC 3339 date.", valueName: "7d|date")) var since = "7d"
    @Option(help: ArgumentHelp("md or json.", valueName: "format")) var format: Format = .md
    @Option(help: ArgumentHelp("Read at most this many audit entries.", valueName: "n")) var limit = 10_000

    func validate() throws {
        guard limit >= 1 && limit <= 1_000_000 else { throw ValidationError("--limit must be between 1 and 1000000") }
        do { _ = try ReportWindow.since(since, now: Provenance.now) } catch { throw ValidationError(error.message) }
    }

    func run() async throws {
        let now = Provenance.now
        let from: Int64
        do { from = try ReportWindow.since(since, now: now) } catch { throw ValidationError(error.message) }
        let control = try global.control()
        let (entries, rollouts) = try await reportingErrors {
            (
                try await control.store.auditEntries(since: from, limit: limit),
                try await control.store.readRollouts(includeObservations: false).rollouts
            )
        }
        let report = ChangeReport.make(
            environment: control.environment, from: from, to: now, entries: entries, rollouts: rollouts, truncated: entries.count >= limit)
        switch format {
        case .md: print(report.markdown, terminator: "")
        case .json: Output.json(report.json)
        }
        if report.truncated {
            Output.error(
                "warning: the window holds more than \(limit) audit entries; the report covers the newest \(limit) (raise --limit or narrow --since)")
        }
    }
}
