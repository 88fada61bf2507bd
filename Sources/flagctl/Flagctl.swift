import ArgumentParser

@main
struct Flagctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flagctl",
        abstract: "Feature flags in git, live in Redis, rolled out safely.",
        discussion: """
            Flags live in flags/<env>/*.yaml|*.json (the OpenFeature flagd format). flagctl checks them,
            evaluates them offline, and talks to Redis.

            Environment:
              FLAGPOLE_REDIS_URL  the Redis server (default redis://127.0.0.1:6379); --redis overrides it.
                                  redis://[user:password@]host:port[/db] or unix:///path/redis.sock[?db=N]
              FLAGPOLE_ENV        the environment, when --env is not given.
            """,
        subcommands: [DoctorCommand.self]
    )
}
