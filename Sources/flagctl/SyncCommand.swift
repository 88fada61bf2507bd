import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleStore

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Write the flag files of an environment into Redis, atomically and audited.",
        discussion: """
            Validates first and writes nothing if anything is invalid. Computes the change against
            Redis and writes it in one atomic step guarded by the revision it read: of two syncs at
            once, one wins and the other fails with a conflict, writing nothing. Publishes one change
            event and appends one audit entry. A sync with no change writes nothing.

            Flags gone from the files are reported and kept unless --prune. Runtime overrides are never
            clobbered; an override on a pruned flag is dropped (the audit says so). A flag pinned by an
            automatic revert stays reverted; --unpin FLAG releases it deliberately.

            Exit status: 0 synced or nothing to do, 1 invalid files or a Redis/conflict error, 2 usage.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var change: ChangeOptions

    @Flag(help: "Sync every environment folder under --flags.")
    var all = false

    @Flag(help: "Delete flags that are gone from the files.")
    var prune = false

    @Option(name: .customLong("unpin"), help: ArgumentHelp("Release a flag pinned by an automatic revert (repeatable).", valueName: "flag"))
    var unpin: [String] = []

    @Flag(help: "Print the plan; write nothing.")
    var dryRun = false

    @Option(help: "How many synced flag sets Redis keeps for restore.")
    var historyLimit = 20

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if all && global.env != nil { throw ValidationError("give --env NAME or --all, not both") }
        if historyLimit < 1 { throw ValidationError("--history-limit must be at least 1") }
    }

    func run() async throws {
        let environments: [String]
        if all {
            environments = try await reportingErrors { try FlagDirectory(root: global.flags).environmentNames() }
            if environments.isEmpty { throw ValidationError("no environment folders under \(global.flags)") }
        } else {
            environments = [try global.environment()]
        }
        let client = try global.makeClient()
        var failed = false
        var results: [JSONValue] = []
        for env in environments {
            var options = EnvironmentControl.SyncOptions()
            options.prune = prune
            options.unpin = unpin
            options.dryRun = dryRun
            options.actor = change.resolvedActor
            options.reason = change.reason
            options.historyLimit = historyLimit
            let outcome = try await reportingErrors {
                let control = try EnvironmentControl(environment: env, client: client, directory: FlagDirectory(root: global.flags))
                return try await control.sync(options)
            }
            if json {
                results.append(Self.json(env, outcome))
            } else {
                Self.print(env, outcome, dryRun: dryRun)
            }
            if case .invalid = outcome { failed = true }
        }
        if json { Output.json(all ? .array(results) : results[0]) }
        if failed { throw ExitCode.failure }
    }

    static func print(_ env: String, _ outcome: EnvironmentControl.SyncOutcome, dryRun: Bool) {
        switch outcome {
        case .invalid(let diagnostics):
            for d in diagnostics { Swift.print(d.description) }
            Swift.print("\(env): \(diagnostics.count) error(s) in the flag files; nothing was written")
        case .noChange(let plan):
            Swift.print("\(env): no change (revision \(plan.baseRevision)); nothing written")
            printNotes(plan)
        case .planned(let plan):
            Swift.print("\(env): would sync revision \(plan.baseRevision) → \(plan.baseRevision + 1) (dry run, nothing written)")
            printPlan(plan)
        case .applied(let plan, let revision):
            Swift.print("\(env): synced revision \(plan.baseRevision) → \(revision)")
            printPlan(plan)
        }
    }

    static func printPlan(_ plan: SyncPlan) {
        func list(_ flags: [String], _ mark: String, _ verb: String, note: (String) -> String = { _ in "" }) {
            for f in flags.prefix(25) { Swift.print("  \(mark) \(f)" + note(f)) }
            if flags.count > 25 { Swift.print("  \(mark) … and \(flags.count - 25) more \(verb) (--json lists all)") }
        }
        list(plan.added, "+", "added")
        list(plan.changed, "~", "changed")
        list(plan.removed, "-", "removed") { plan.droppedOverrides.contains($0) ? " (its override is dropped)" : "" }
        for f in plan.unpinned { Swift.print("  unpinned \(f) (its revert override is removed)") }
        if plan.metadataChanged { Swift.print("  flag-set metadata changed") }
        printNotes(plan)
    }

    static func printNotes(_ plan: SyncPlan) {
        if !plan.kept.isEmpty {
            Swift.print("  kept (gone from the files; --prune deletes them): \(plan.kept.joined(separator: ", "))")
        }
        for (flag, pin) in plan.pinned.sorted(by: { $0.key < $1.key }) {
            Swift.print("  pinned: \(flag) stays reverted (\(pin.by) at \(Output.time(pin.at)): \(pin.reason)); --unpin \(flag) releases it")
        }
        if !plan.overridden.isEmpty {
            Swift.print("  overrides kept: \(plan.overridden.joined(separator: ", "))")
        }
    }

    static func json(_ env: String, _ outcome: EnvironmentControl.SyncOutcome) -> JSONValue {
        func planJSON(_ p: SyncPlan, _ status: String, _ revision: Int64?) -> JSONValue {
            [
                "environment": .string(env), "status": .string(status), "baseRevision": .int(p.baseRevision),
                "revision": revision.map { .int($0) } ?? .null,
                "added": .array(p.added.map { .string($0) }), "changed": .array(p.changed.map { .string($0) }),
                "removed": .array(p.removed.map { .string($0) }), "kept": .array(p.kept.map { .string($0) }),
                "droppedOverrides": .array(p.droppedOverrides.map { .string($0) }),
                "pinned": .array(p.pinned.keys.sorted().map { .string($0) }), "unpinned": .array(p.unpinned.map { .string($0) }),
                "metadataChanged": .bool(p.metadataChanged), "contentHash": .string(p.contentHash),
            ]
        }
        switch outcome {
        case .invalid(let d):
            return ["environment": .string(env), "status": "invalid", "diagnostics": .array(d.map(\.jsonValue))]
        case .noChange(let p): return planJSON(p, "unchanged", nil)
        case .planned(let p): return planJSON(p, "planned", nil)
        case .applied(let p, let r): return planJSON(p, "synced", r)
        }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Bring back the flag set an earlier sync wrote (audited).",
        discussion: "Flags not in that set are removed; overrides stay unless their flag goes. `flagctl history` lists revisions."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var change: ChangeOptions

    @Option(help: "The revision of an earlier sync.")
    var revision: Int64

    @Flag(help: "Print the plan; write nothing.")
    var dryRun = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let control = try global.control()
        let outcome = try await reportingErrors {
            try await control.restore(revision: revision, actor: change.resolvedActor, reason: change.reason, dryRun: dryRun)
        }
        if json {
            Output.json(SyncCommand.json(control.environment, outcome))
        } else {
            SyncCommand.print(control.environment, outcome, dryRun: dryRun)
        }
    }
}
