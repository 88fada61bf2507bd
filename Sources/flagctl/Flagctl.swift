import ArgumentParser

@main
struct Flagctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flagctl",
        abstract: "Feature flags in git, live in Redis, rolled out safely.",
        discussion: """
            Flags live in flags/<env>/*.yaml|*.json (the OpenFeature flagd format). flagctl checks them,
            evaluates them offline, syncs them into Redis, and changes them at runtime.

            Every command takes --redis URL, --flags DIR and --env NAME, before or after its name.

            Environment:
              FLAGPOLE_REDIS_URL  the Redis server (default redis://127.0.0.1:6379); --redis overrides it.
                                  redis://[user:password@]host:port[/db] or unix:///path/redis.sock[?db=N]
              FLAGPOLE_ENV        the environment, when --env is not given.
            """,
        subcommands: [
            DoctorCommand.self, Validate.self, SyncCommand.self, DiffCommand.self, SetCommand.self, EnableCommand.self, DisableCommand.self,
            OverrideCommand.self, ListCommand.self, GetCommand.self, StatusCommand.self, HistoryCommand.self, RestoreCommand.self,
        ]
    )

    /// The options every command shares; given before the command's name they are moved after it,
    /// so `flagctl --redis URL sync --env prod` and `flagctl sync --env prod --redis URL` agree.
    static let sharedOptions: Set<String> = ["--redis", "--flags", "--env"]

    static func main() async {
        await main(hoistingSharedOptions(Array(CommandLine.arguments.dropFirst())))
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
