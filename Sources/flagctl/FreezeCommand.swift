import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import Foundation

/// `flagctl freeze status`: the project config's freeze windows, which apply now, and when each
/// starts and ends next, in its own zone and in UTC. Offline: reads flags/flagpole.yaml only.
struct FreezeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freeze",
        abstract: "Show the freeze windows of the project config.",
        subcommands: [FreezeStatusCommand.self])
}

struct FreezeStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the freeze windows, which apply now, and when each starts and ends next.",
        discussion: """
            Reads the freezeWindows of the project config (flags/flagpole.yaml; no Redis). For each
            window: when it applies (weekly or daily in its time zone's local wall-clock time, or
            once), the environments it applies to, whether it is in force, and its current or next
            occurrence, in the window's zone and in UTC.

            With --env (or FLAGPOLE_ENV) only the windows that apply to that environment are shown,
            preceded by whether the environment is frozen now and until when. While it is frozen,
            `flagctl rollout start` is refused unless --force, and the watcher does not advance or
            complete a running rollout (it holds and says "frozen until ..."); reverts go on.

            --at TIME answers for another moment (RFC 3339, e.g. 2026-03-27T17:00:00+01:00):
            "may we roll out on Friday at five?".

            Exit status: 0 (frozen or not), 1 when the project config has errors, 2 usage error.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The moment to ask about (RFC 3339; default: now).", valueName: "time"))
    var at: String?

    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let at, CivilTime.parseTimestamp(at) == nil {
            throw ValidationError("--at '\(at)' is not an RFC 3339 time; write e.g. 2026-03-27T17:00:00+01:00 or 2026-03-27T16:00:00Z")
        }
    }

    func run() throws {
        let now = at.flatMap(CivilTime.parseTimestamp) ?? Int64(Date().timeIntervalSince1970)
        let environment = try? global.environment()
        let load = FlagDirectory(root: global.flags).loadConfig()
        if load.hasErrors {
            for d in load.diagnostics where d.severity == .error { Output.error(d.description) }
            Output.error("the project config has errors (flagctl validate); fix them to read the freeze windows")
            throw ExitCode.failure
        }
        let status = FreezeStatus(config: load.config, environment: environment, at: now)
        if json {
            Output.json(status.json)
        } else {
            print(status.text(configPath: load.path ?? global.flags + "/flagpole.yaml"))
        }
    }
}

/// What `flagctl freeze status` shows: the windows (of one environment, or all), each with its
/// current or next occurrence, and the freeze in force.
struct FreezeStatus {
    struct Row {
        var window: FreezeWindow
        var isActive: Bool
        /// The occurrence in force, else the next one.
        var current: (start: Int64, end: Int64)?
        /// The occurrence after ``current``.
        var next: (start: Int64, end: Int64)?
    }

    var environment: String?
    var at: Int64
    var freeze: FreezeHold?
    var rows: [Row]

    init(config: ProjectConfig, environment: String?, at: Int64) {
        self.environment = environment
        self.at = at
        let windows = config.freezeWindows.filter { w in environment.map { w.applies(toEnvironment: $0) } ?? true }
        freeze = environment.flatMap { config.freeze(environment: $0, unixTime: at) }
        rows = windows.map { w in
            let current = w.occurrence(endingAfter: at)
            let next = current.flatMap { w.occurrence(endingAfter: $0.end) }
            return Row(window: w, isActive: current.map { $0.start <= at } ?? false, current: current, next: next)
        }
    }

    /// `Fri 2026-03-27 16:00 CET (15:00 UTC)`.
    static func both(_ t: Int64, _ zone: ZoneRules) -> String {
        let local = zone.localText(t)
        guard zone.offset(at: t) != 0 || !zone.isFixed else { return local }
        let utc = ZoneRules.utc.localText(t)
        let sameDay = local.prefix(14) == utc.prefix(14)
        return "\(local) (\(sameDay ? String(utc.dropFirst(15)) : utc))"
    }

    func text(configPath: String) -> String {
        var lines: [String] = []
        let when = "at \(ZoneRules.utc.localText(at))"
        if let environment {
            if let freeze {
                lines.append("\(environment) is FROZEN \(when): \(freeze.description).")
                lines.append("  Until then rollouts do not start (unless --force) and running ones do not advance; reverts go on.")
            } else {
                lines.append("\(environment) is not frozen \(when).")
            }
            lines.append("")
        }
        if rows.isEmpty {
            lines.append(
                "No freeze windows\(environment.map { " apply to \($0)" } ?? "") in \(configPath)" + (environment == nil ? "." : "")
                    + " (add them under freezeWindows: docs/project-config.md).")
            return lines.joined(separator: "\n")
        }
        lines.append("Freeze windows in \(configPath)\(environment.map { " that apply to \($0)" } ?? ""), \(when):")
        for row in rows {
            let w = row.window
            lines.append("")
            lines.append("\(w.name): \(w.scheduleText)\(w.reason.map { " - \($0)" } ?? "")")
            lines.append("  environments: \(w.environments?.joined(separator: ", ") ?? "all")")
            let zone = w.zone
            if let c = row.current {
                if row.isActive {
                    lines.append("  IN FORCE since \(Self.both(c.start, zone)), until \(Self.both(c.end, zone))")
                } else {
                    lines.append("  next: \(Self.both(c.start, zone)) to \(Self.both(c.end, zone))")
                }
            } else {
                lines.append("  over: it does not occur again")
            }
            if let n = row.next { lines.append("  then: \(Self.both(n.start, zone)) to \(Self.both(n.end, zone))") }
        }
        return lines.joined(separator: "\n")
    }

    var json: JSONValue {
        func occurrence(_ o: (start: Int64, end: Int64)?, _ zone: ZoneRules) -> JSONValue {
            guard let o else { return .null }
            return [
                "start": .int(o.start), "end": .int(o.end), "startLocal": .string(zone.localText(o.start)),
                "endLocal": .string(zone.localText(o.end)), "startUTC": .string(ZoneRules.utc.localText(o.start)),
                "endUTC": .string(ZoneRules.utc.localText(o.end)),
            ]
        }
        let frozen: JSONValue =
            freeze.map {
                [
                    "window": .string($0.window), "windows": .array($0.windows.map { .string($0) }), "until": .int($0.until),
                    "untilLocal": .string($0.untilText), "untilUTC": .string(ZoneRules.utc.localText($0.until)),
                    "reason": $0.reason.map { .string($0) } ?? .null,
                ]
            } ?? .null
        return [
            "at": .int(at), "environment": environment.map { .string($0) } ?? .null, "frozen": frozen,
            "windows": .array(
                rows.map { row in
                    let w = row.window
                    return [
                        "name": .string(w.name), "schedule": .string(w.scheduleText), "timezone": .string(w.zone.name),
                        "environments": w.environments.map { .array($0.map { .string($0) }) } ?? .null,
                        "reason": w.reason.map { .string($0) } ?? .null, "active": .bool(row.isActive),
                        "current": occurrence(row.isActive ? row.current : nil, w.zone),
                        "next": occurrence(row.isActive ? row.next : row.current, w.zone),
                    ]
                }),
        ]
    }
}
