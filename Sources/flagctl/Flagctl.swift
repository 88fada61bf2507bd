import ArgumentParser
import Foundation

@main
struct Flagctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flagctl",
        abstract: "Feature flags in git, live in Redis, rolled out safely.",
        discussion: """
            Flags live in flags/<env>/*.yaml|*.json (the OpenFeature flagd format).
            flagctl checks them, evaluates them offline, syncs them into Redis,
            and changes them at runtime.

            Every command takes --redis URL, --flags DIR and --env NAME,
            before or after its name.

            Environment:
              FLAGPOLE_REDIS_URL  the Redis server; --redis overrides it.
                                  Default: redis://127.0.0.1:6379. Forms:
                                  redis://[user:password@]host:port[/db]
                                  unix:///path/redis.sock[?db=N]
                                  redis-sentinel://[user:pw@]h:p[,h:p…]/MASTER[?db=N]
                                  redis-cluster://[user:pw@]h:p[,h:p…]
              FLAGPOLE_ENV        the environment, when --env is not given.

            Exit status: 0 success, 1 failure (invalid files, Redis errors),
            2 usage error.
            """,
        subcommands: [
            DoctorCommand.self, Validate.self, EvalCommand.self, SyncCommand.self, DiffCommand.self, SetCommand.self, EnableCommand.self,
            DisableCommand.self,
            OverrideCommand.self, ListCommand.self, GetCommand.self, StatusCommand.self, HistoryCommand.self, RestoreCommand.self,
            ClientsCommand.self, RolloutCommand.self, DaemonCommand.self, AclCommand.self, ReconcileCommand.self,
            PromoteCommand.self, ReportCommand.self,
            FreezeCommand.self,
        ]
    )

    /// The options every command shares; given before the command's name they are moved after it,
    /// so `flagctl --redis URL sync --env prod` and `flagctl sync --env prod --redis URL` agree.
    static let sharedOptions: Set<String> = ["--redis", "--flags", "--env"]

    static func main() async {
        let arguments = hoistingSharedOptions(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // Usage errors exit 2, as validate, diff and grep do; everything else as ArgumentParser says.
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    static func hoistingSharedOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            let name = first.split(separator: "=", maxSplits: 1).first.map(String.init) ?? first
            guard sharedOptions.contains(name) else { break }
            leading.append(first)
            rest = rest.dropFirst()
            if !first.contains("="), let value = rest.first {
                leading.append(value)
                rest = rest.dropFirst()
            }
        }
        guard !leading.isEmpty else { return arguments }
        var out = Array(rest)
        if let terminator = out.firstIndex(of: "--") {
            out.insert(contentsOf: leading, at: terminator)
        } else {
            out.append(contentsOf: leading)
        }
        return out
    }
}
