import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the flags live in Redis.",
        discussion: """
            With --stale, lists only the flags that outlived their purpose, each with its \
            metadata.owner ("-" when none): flags past their metadata.expires ("expired 12 days \
            ago"), flags no client reported evaluating for more than --days days ("last evaluated \
            41 days ago"), and flags with no evaluation recorded at all. Clients report the flags \
            they evaluate with their heartbeat (flagpole:{ENV}:evaluated) from Flagpole 0.1.0 on: \
            after upgrading, wait --days days before trusting "no evaluation recorded". A stored \
            time that is not one a client could have written is shown as unreadable, never \
            trusted. A report: the exit status is 0 whether or not flags are listed.
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "List only expired flags and flags not evaluated for --days days, with their owners.") var stale = false
    @Option(help: ArgumentHelp("With --stale: how many days without an evaluation make a flag stale (1 to 3650; default: 30).", valueName: "n"))
    var days: Int64?
    @Option(help: ArgumentHelp("With --stale: judge as of this date or RFC 3339 time (default: now).", valueName: "date"))
    var asOf: String?

    /// The default of `--days`.
    static let defaultDays: Int64 = 30

    func validate() throws {
        if !stale, days != nil || asOf != nil { throw ValidationError("--days and --as-of go with --stale: flagctl list --stale --days 30") }
        if let days, !(1...3650).contains(days) { throw ValidationError("--days \(days) is out of range: give 1 to 3650 days (default 30)") }
        if let asOf, FlagLifecycle.parseExpiry(asOf) == nil {
            throw ValidationError("--as-of '\(asOf)' is not a date or an RFC 3339 time; write e.g. 2027-01-31 or 2027-01-31T09:00:00Z")
        }
    }

    /// The time the report is made as of: the start of the `--as-of` day (UTC) or its instant, else now.
    var now: Int64 {
        guard let asOf else { return Int64(Date().timeIntervalSince1970) }
        if let day = CivilTime.parseDate(asOf) { return day * 86_400 }
        return CivilTime.parseTimestamp(asOf) ?? Int64(Date().timeIntervalSince1970)
    }

    func run() async throws {
        let control = try global.control()
        if stale { return try await runStale(control) }
        let live = try await reportingErrors { try await control.store.read() }
        for p in live.problems { Output.error(p.message) }
        let keys = live.definitions.keys.sorted()
        if json {
            Output.json(
                .array(
                    keys.map { k in
                        let eff = live.effectiveDefinition(of: k) ?? .null
                        return [
                            "flag": .string(k), "state": eff["state"] ?? .null, "defaultVariant": eff["defaultVariant"] ?? .null,
                            "variants": .array((eff["variants"]?.objectValue ?? [:]).keys.sorted().map { .string($0) }),
                            "targeting": .bool(eff["targeting"].map { $0 != .object([:]) && !$0.isNull } ?? false),
                            "override": live.overrides[k]?.json ?? .null, "pin": live.pins[k]?.json ?? .null,
                        ]
                    }))
            return
        }
        if keys.isEmpty {
            print("\(control.environment): no flags (revision \(live.revision)); run flagctl sync --env \(control.environment)")
            return
        }
        Output.table(
            ["FLAG", "STATE", "DEFAULT", "TARGETING", "VARIANTS", "OVERRIDE"],
            keys.map { k in
                let eff = live.effectiveDefinition(of: k) ?? .null
                let targeting = eff["targeting"].map { $0 != .object([:]) && !$0.isNull } ?? false
                var override = live.overrides[k].map { "\($0.override.summary) by \($0.actor)" } ?? "-"
                if live.pins[k] != nil { override += " (pinned)" }
                return [
                    k, eff["state"]?.stringValue ?? "?", eff["defaultVariant"]?.stringValue ?? "(code default)", targeting ? "yes" : "no",
                    (eff["variants"]?.objectValue ?? [:]).keys.sorted().joined(separator: ","), override,
                ]
            })
        print("\(keys.count) flag(s), revision \(live.revision)")
    }

    /// `list --stale`: expired flags and flags not evaluated for `--days` days.
    private func runStale(_ control: EnvironmentControl) async throws {
        let (live, evaluated) = try await reportingErrors { (try await control.store.read(), try await control.store.evaluationTimes()) }
        for p in live.problems { Output.error(p.message) }
        let now = self.now
        let days = self.days ?? Self.defaultDays
        var definitions: [String: JSONValue] = [:]
        for key in live.definitions.keys { definitions[key] = live.effectiveDefinition(of: key) ?? .null }
        let rows = StaleFlags.rows(definitions: definitions, evaluated: evaluated, days: days, now: now)
        let recorded = definitions.keys.filter { evaluated[$0] != nil }.count
        if json {
            Output.json([
                "environment": .string(control.environment), "revision": .int(live.revision), "asOf": .int(now), "days": .int(days),
                "liveFlags": .int(Int64(definitions.count)), "flagsWithEvaluations": .int(Int64(recorded)), "flags": .array(rows.map(\.json)),
            ])
            return
        }
        if rows.isEmpty {
            print(
                "\(control.environment): no stale flags of \(definitions.count): none expired, each evaluated within \(days) days (as of \(Output.time(now)))"
            )
        } else {
            Output.table(
                ["FLAG", "OWNER", "EXPIRY", "LAST EVALUATED"],
                rows.map { [$0.flag, $0.owner ?? "-", $0.expiryText, $0.evaluationText] })
            print(
                "\(rows.count) of \(definitions.count) flag(s) in \(control.environment) expired or not evaluated for \(days) days, as of \(Output.time(now))"
            )
        }
        if recorded == 0 && !definitions.isEmpty {
            print(
                "note: no client has recorded an evaluation of any flag in \(control.environment) yet. Clients record evaluations from Flagpole 0.1.0 on, with their heartbeat; wait \(days) days after deploying them before trusting \"no evaluation recorded\"."
            )
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Show a flag: definition, override, and its value for a context.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The flag key.") var flag: String
    @Option(help: ArgumentHelp("An evaluation context as JSON, e.g. '{\"targetingKey\":\"u1\",\"email\":\"a@b.c\"}'.", valueName: "json"))
    var context: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let ctx: EvaluationContext
        do {
            ctx = EvaluationContext(try JSONParser.parse(context ?? "{}"))
        } catch {
            throw ValidationError("--context is not valid JSON: \(error)")
        }
        let control = try global.control()
        let live = try await reportingErrors { try await control.store.read() }
        guard let definition = live.definitions[flag], let effective = live.effectiveDefinition(of: flag),
            let result = live.evaluate(flag, context: ctx)
        else {
            Output.error("flag '\(flag)' is not in \(control.environment) (revision \(live.revision))")
            throw ExitCode.failure
        }
        let evaluation: JSONValue = [
            "value": result.value ?? .null, "variant": result.variant.map { .string($0) } ?? .null,
            "reason": .string(result.reason.rawValue), "errorCode": result.errorCode.map { .string($0.rawValue) } ?? .null,
        ]
        if json {
            Output.json([
                "flag": .string(flag), "environment": .string(control.environment), "revision": .int(live.revision),
                "definition": definition, "override": live.overrides[flag]?.json ?? .null, "pin": live.pins[flag]?.json ?? .null,
                "effective": effective, "evaluation": evaluation, "context": ctx.jsonValue,
            ])
            return
        }
        print("\(flag) in \(control.environment) (revision \(live.revision))")
        print("definition (from the files):")
        print(definition.prettyJSONString.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        if let o = live.overrides[flag] {
            print("override: \(o.override.summary), by \(o.actor) at \(Output.time(o.at))" + (o.reason.map { ": \($0)" } ?? ""))
        } else {
            print("override: none")
        }
        if let p = live.pins[flag] { print("pinned: by \(p.by) at \(Output.time(p.at)): \(p.reason)") }
        let value = result.value.map(\.jsonString) ?? "(the caller's code default)"
        print(
            "for context \(ctx.jsonValue.jsonString): \(value), variant \(result.variant ?? "-"), reason \(result.reason.rawValue)"
                + (result.errorCode.map { ", error \($0.rawValue)" } ?? ""))
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Revision, last sync and by whom, drift from the files, overrides and pins.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let control = try global.control()
        let live = try await reportingErrors { try await control.store.read() }
        let rollouts = try? await control.store.readRollouts()
        let nowMS = Int64(Date().timeIntervalSince1970 * 1000)
        let activeRollouts = (rollouts?.rollouts.values ?? [:].values).filter { $0.status.isActive }.sorted { $0.flag < $1.flag }
        let watcherLive = rollouts?.lease?.isLive(atMilliseconds: nowMS) ?? false
        // Drift: only when the files are there and readable.
        let load = try? control.directory.loadEnvironment(control.environment)
        let drift = load.map { LiveDiff.compare(load: $0, live: live).filter { $0.status != .same } }
        let m = live.meta
        if json {
            Output.json([
                "environment": .string(control.environment), "revision": .int(live.revision),
                "lastSync": [
                    "revision": m["syncRevision"].flatMap { Int64($0) }.map { .int($0) } ?? .null,
                    "by": m["syncedBy"].map { .string($0) } ?? .null, "at": m["syncedAt"].flatMap { Int64($0) }.map { .int($0) } ?? .null,
                    "gitCommit": m["gitCommit"].map { .string($0) } ?? .null, "gitDirty": m["gitDirty"].map { .bool($0 == "true") } ?? .null,
                    "contentHash": m["contentHash"].map { .string($0) } ?? .null,
                    "flagpoleVersion": m["flagpoleVersion"].map { .string($0) } ?? .null,
                ],
                "flags": .int(Int64(live.definitions.count)),
                "drift": drift.map { .array($0.map(\.json)) } ?? .null,
                "overrides": .object(live.overrides.mapValues(\.json)), "pins": .object(live.pins.mapValues(\.json)),
                "problems": .array(live.problems.map { .string($0.message) }),
                "rollouts": .array(activeRollouts.map(\.json)), "watcherLive": .bool(watcherLive),
            ])
            return
        }
        print("environment \(control.environment): revision \(live.revision), \(live.definitions.count) flag(s)")
        if let at = m["syncedAt"].flatMap({ Int64($0) }) {
            let commit =
                m["gitCommit"].map { $0.isEmpty ? "not a git tree" : String($0.prefix(12)) + (m["gitDirty"] == "true" ? " (dirty)" : "") } ?? "-"
            print(
                "last sync: revision \(m["syncRevision"] ?? "?") by \(m["syncedBy"] ?? "?") at \(Output.time(at)) (\(Output.ago(at))), commit \(commit), flagpole \(m["flagpoleVersion"] ?? "?")"
            )
        } else {
            print("last sync: never (run flagctl sync --env \(control.environment))")
        }
        if let drift {
            if drift.isEmpty {
                print("drift: none — Redis serves what the files say")
            } else {
                print("drift from \(global.flags)/\(control.environment):")
                for d in drift {
                    var line = "  \(d.flag): \(d.status.rawValue)"
                    if let o = d.override { line += " — \(o.override.summary) by \(o.actor)" + (o.reason.map { " (\($0))" } ?? "") }
                    // A revert's override already says why; the pin adds only who pinned it, unless it says more.
                    if d.status == .pinned, let p = d.pin, !(d.override?.reason ?? "").contains(p.reason) {
                        line += "; reverted and pinned by \(p.by): \(p.reason)"
                    }
                    print(line)
                    if let hint = d.reconcileHint { print("    to make the files agree: \(hint)") }
                }
            }
        } else {
            print("drift: unknown (no readable files at \(global.flags)/\(control.environment))")
        }
        for r in activeRollouts {
            print(
                "rollout: \(r.flag) → \(r.targetVariant), \(r.status.rawValue)\(r.dryRun ? " (dry run)" : ""), step \(r.stepIndex + 1) of \(r.steps.count) (\(r.percent)%) — flagctl rollout status \(r.flag)"
            )
        }
        if !activeRollouts.isEmpty && !watcherLive {
            print("warning: no live watcher: nothing is watching the rollouts; start one with flagctl daemon --env \(control.environment)")
        }
        for p in live.problems { print("problem: \(p.message)") }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "The audit trail, newest first.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Only entries touching this flag.") var flag: String?
    @Option(help: ArgumentHelp("Only entries newer than this, e.g. 30m, 2h, 7d.", valueName: "duration")) var since: String?
    @Option(help: "At most this many entries.") var limit = 50
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var sinceSeconds: Int64?
        if let since {
            guard let d = DurationText.parse(since) else { throw ValidationError("--since: '\(since)' is not a duration (e.g. 30m, 2h, 7d)") }
            sinceSeconds = Provenance.now - Int64(d.components.seconds)
        }
        let control = try global.control()
        let entries = try await reportingErrors { try await control.store.auditEntries(flag: flag, since: sinceSeconds, limit: limit) }
        if json {
            Output.json(
                .array(
                    entries.map { e in
                        [
                            "id": .string(e.id), "revision": .int(e.revision), "action": .string(e.action), "actor": .string(e.actor),
                            "reason": e.reason.map { .string($0) } ?? .null, "at": .int(e.at), "flags": .array(e.flags.map { .string($0) }),
                            "details": e.details,
                        ]
                    }))
            return
        }
        if entries.isEmpty {
            print("no audit entries" + (flag.map { " for \($0)" } ?? "") + " in \(control.environment)")
            return
        }
        Output.table(
            ["TIME", "REV", "ACTION", "ACTOR", "FLAGS", "REASON"],
            entries.map { e in
                [Output.time(e.at), String(e.revision), e.action, e.actor, Self.flagsCell(e.flags), e.reason ?? ""]
            })
    }
}

extension HistoryCommand {
    /// The flags an entry touched, short enough to keep the table readable: up to three by name,
    /// then how many more (`--json` lists them all).
    static func flagsCell(_ flags: [String]) -> String {
        guard !flags.isEmpty else { return "-" }
        guard flags.count > 3 else { return flags.joined(separator: ",") }
        return flags.prefix(2).joined(separator: ",") + " +\(flags.count - 2) more"
    }
}

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the flag files with what Redis serves, overrides included.",
        discussion: "With --exit-code: exit 0 when they match, 1 when they differ (as git diff --exit-code)."
    )
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Exit 1 when the files and Redis differ.") var exitCode = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let control = try global.control()
        let (load, live) = try await reportingErrors {
            (try control.directory.loadEnvironment(control.environment), try await control.store.read())
        }
        if load.hasErrors {
            for d in load.diagnostics where d.isError { print(d.description) }
            Output.error("the flag files of \(control.environment) are invalid; fix them first")
            throw ExitCode(2)
        }
        let rows = LiveDiff.compare(load: load, live: live).filter { $0.status != .same }
        if json {
            Output.json(["environment": .string(control.environment), "revision": .int(live.revision), "differences": .array(rows.map(\.json))])
        } else if rows.isEmpty {
            print("\(control.environment): the files and Redis (revision \(live.revision)) agree")
        } else {
            for row in rows {
                switch row.status {
                case .onlyInFiles: print("+ \(row.flag): only in the files (sync adds it)")
                case .onlyInRedis: print("- \(row.flag): only in Redis (sync --prune removes it)")
                case .definitionDiffers:
                    print("~ \(row.flag): definition differs (sync writes the files' version)")
                    printChangedFields(row)
                case .overridden, .pinned:
                    let o = row.override
                    print(
                        "! \(row.flag): \(row.status == .pinned ? "reverted and pinned" : "overridden") — \(o?.override.summary ?? "-") by \(o?.actor ?? "?")"
                            + (o?.reason.map { " (\($0))" } ?? ""))
                    if let hint = row.reconcileHint { print("    to make the files agree: \(hint)") }
                case .same: break
                }
            }
        }
        if exitCode && !rows.isEmpty { throw ExitCode.failure }
    }

    private func printChangedFields(_ row: FlagDiff) {
        let f = row.fileDefinition?.objectValue ?? [:], l = row.liveDefinition?.objectValue ?? [:]
        for key in Set(f.keys).union(l.keys).sorted() where f[key] != l[key] {
            print("    \(key): \(l[key]?.jsonString ?? "(none)") → \(f[key]?.jsonString ?? "(none)")")
        }
    }
}
