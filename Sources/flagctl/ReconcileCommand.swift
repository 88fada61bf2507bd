import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleStore

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Edit a flag's file so the files say what the flag serves (after a revert or an override).",
        discussion: """
            Compares what FLAG serves in Redis (its definition with the override
            applied: the frozen pre-rollout definition after an automatic revert, or a
            set/enable/disable) with its definition in its own file under flags/ENV/,
            and prints the smallest edit to that file that makes them agree, as a
            unified diff. With --write, applies it atomically and checks that the folder
            still validates and the flag now reads exactly as served (otherwise the file
            is put back). Then prints the git commands to commit the change and the
            command that lets the files rule again (flagctl sync --env ENV --unpin FLAG
            after a revert; flagctl sync and override clear after an override).

            Only the changed values are rewritten, where they stand: comments, key
            order, quoting and indentation of everything else stay byte for byte. An
            alias (*name) or a $ref to a shared evaluator whose value must change is
            replaced by the value written in place; the anchor or evaluator, which other
            flags may use, stays. A change inside an anchor (&name) that aliases
            elsewhere use is refused, with where they are.

            Exit status: 0 printed or written, or nothing to change; 1 the edit cannot
            be made (flag missing, rollout in progress, shared anchor, invalid files,
            Redis error); 2 usage.
            """
    )

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The flag key.") var flag: String
    @Flag(help: "Apply the edit to the file (atomically), then check it.") var write = false

    func run() async throws {
        let control = try global.control()
        let result: Reconciliation
        do {
            result = try await reportingErrors { try await control.reconcile(flag) }
        } catch let error as ReconcileError {
            Output.error(error.description)
            throw ExitCode.failure
        } catch let error as FlagDirectoryError {
            Output.error(error.description)
            throw ExitCode.failure
        }
        let env = control.environment
        let served = Self.describe(result)
        switch result.status {
        case .notOverridden:
            print("\(flag) in \(env): no override and no pin; Redis serves the definition last synced from the files")
            if result.fileDefinition != result.served {
                print("the files differ from it (\(result.file)); publish them with flagctl sync --env \(env) (see flagctl diff --env \(env))")
            } else {
                print("nothing to change")
            }
            return
        case .agrees:
            print("\(flag) in \(env): \(result.file) already says what is served (\(served)); nothing to change")
        case .edit:
            print("\(flag) in \(env) serves \(served); \(result.location) says otherwise")
            print(result.diff, terminator: "")
            if write {
                do {
                    try control.write(result)
                } catch let error as ReconcileError {
                    Output.error(error.description)
                    throw ExitCode.failure
                }
                print("wrote \(result.file); the folder validates and \(flag) now reads exactly as served")
            } else {
                print("(not written: run again with --write to apply it)")
            }
        }
        let commands = result.finishCommands
        if !commands.isEmpty {
            print(result.status == .edit ? "then, to finish:" : "to finish:")
            for c in commands { print("  " + c) }
        }
    }

    static func describe(_ r: Reconciliation) -> String {
        var words = r.override.map { "\($0.override.summary) by \($0.actor)" } ?? "its synced definition"
        if let pin = r.pin { words += ", pinned by \(pin.by)" + (pin.rollout.map { " (rollout \($0))" } ?? "") }
        return words
    }
}
