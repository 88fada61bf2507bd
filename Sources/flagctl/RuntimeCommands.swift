import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleStore

/// Shared by set, enable, disable and override clear: apply, then print what happened.
private func applyRuntimeChange(
    _ change: EnvironmentControl.RuntimeChange, flag: String, global: GlobalOptions, options: ChangeOptions, json: Bool
) async throws {
    let control = try global.control()
    let outcome = try await reportingErrors {
        try await control.apply(change, flag: flag, actor: options.resolvedActor, reason: options.reason)
    }
    if json {
        Output.json([
            "environment": .string(control.environment), "flag": .string(flag), "revision": outcome.revision.map { .int($0) } ?? .null,
            "changed": .bool(outcome.revision != nil), "before": outcome.before?.json ?? .null, "after": outcome.after?.json ?? .null,
        ])
        return
    }
    guard let after = outcome.after else {
        // No override left: the flag serves its definition from the files.
        if let revision = outcome.revision {
            print("\(control.environment): \(flag) override cleared; it serves the files' definition (revision \(revision))")
        } else {
            print("\(control.environment): \(flag) has no override; it already serves the files' definition; nothing written")
        }
        return
    }
    if let revision = outcome.revision {
        print("\(control.environment): \(flag) is now \(after.override.summary) (revision \(revision))")
    } else {
        print("\(control.environment): \(flag) already is \(after.override.summary); nothing written")
    }
}

struct SetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Serve one variant of a flag to everyone, now (a runtime override).",
        discussion:
            "Atomic and audited; bumps the revision and notifies every client. A later sync keeps it; `flagctl override clear FLAG` removes it."
    )
    @OptionGroup var global: GlobalOptions
    @OptionGroup var change: ChangeOptions
    @Argument(help: "The flag key.") var flag: String
    @Argument(help: "The variant to serve.") var variant: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await applyRuntimeChange(.set(variant: variant), flag: flag, global: global, options: change, json: json)
    }
}

struct EnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable", abstract: "Turn a flag on at runtime (its targeting applies), whatever the files say.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var change: ChangeOptions
    @Argument(help: "The flag key.") var flag: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await applyRuntimeChange(.enable(true), flag: flag, global: global, options: change, json: json)
    }
}

struct DisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "The kill switch: turn a flag off at runtime; every client serves its code default.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var change: ChangeOptions
    @Argument(help: "The flag key.") var flag: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await applyRuntimeChange(.enable(false), flag: flag, global: global, options: change, json: json)
    }
}

struct OverrideCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "override", abstract: "Manage runtime overrides.", subcommands: [Clear.self])

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear", abstract: "Remove a flag's runtime override: the files' definition applies again.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var change: ChangeOptions
        @Argument(help: "The flag key.") var flag: String
        @Flag(help: "Also release a pin left by an automatic revert.") var unpin = false
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await applyRuntimeChange(.clear(unpin: unpin), flag: flag, global: global, options: change, json: json)
        }
    }
}
